"""Zip uploads: per-entry results, a conditions manifest, and the archives refused whole."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.models import Image
from tests import images
from tests.storage import media_files

pytestmark = pytest.mark.django_db


def make_zip(entries: dict[str, bytes], *, compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as bundle:
        for name, content in entries.items():
            bundle.writestr(zipfile.ZipInfo(name), content)
    return buffer.getvalue()


def post_zip(api_client, project, data: bytes, name="photos.zip", **fields):
    url = reverse("api-project-images-zip", kwargs={"project_id": project.pk})

    payload = {"archive": SimpleUploadedFile(name, data)}
    payload.update({key: json.dumps(value) for key, value in fields.items()})
    return api_client.post(url, payload, format="multipart")


def stored_files() -> list[str]:
    return sorted(media_files())


@pytest.fixture
def admin_client(api_client, people):
    api_client.force_login(people.project_admin)
    return api_client


def test_zip_with_folders_manifest_and_junk(admin_client, people, settings):
    archive = make_zip(
        {
            "day/a.jpg": images.image_bytes(seed=1),
            "night/b.png": images.image_bytes("PNG", seed=2),
            "conditions.csv": b"file,weather,setting\nnight/b.png,night,indoor\n",
            "__MACOSX/day/._a.jpg": b"resource fork",
            ".DS_Store": b"finder",
            "notes.txt": b"hello",
        }
    )
    response = post_zip(admin_client, people.project, archive, conditions={"weather": "sun"})
    assert response.status_code == 201, response.content
    results = {r["name"]: r for r in response.json()["results"]}
    assert set(results) == {"day/a.jpg", "night/b.png", "notes.txt"}
    assert results["notes.txt"]["status"] == "refused" and results["notes.txt"]["code"] == "not_an_image"
    assert Image.objects.get(original_name="day/a.jpg").conditions == {"weather": "sun"}
    assert Image.objects.get(original_name="night/b.png").conditions == {"weather": "night", "setting": "indoor"}
    assert len(stored_files()) == 2


def test_zip_slip_entries_are_refused_and_nothing_is_written_outside(admin_client, people, settings, tmp_path):
    archive = make_zip(
        {
            "../evil.jpg": images.image_bytes(seed=3),
            "/etc/abs.jpg": images.image_bytes(seed=4),
            "ok/../../up.jpg": images.image_bytes(seed=5),
            "fine.jpg": images.image_bytes(seed=6),
        }
    )
    response = post_zip(admin_client, people.project, archive)
    assert response.status_code == 201
    by_name = {r["name"]: r for r in response.json()["results"]}
    for name in ("../evil.jpg", "/etc/abs.jpg", "ok/../../up.jpg"):
        assert by_name[name]["status"] == "refused"
        assert by_name[name]["code"] == "unsafe_path"
    assert list(Image.objects.values_list("original_name", flat=True)) == ["fine.jpg"]
    assert not (tmp_path / "evil.jpg").exists() and not Path("/etc/abs.jpg").exists()
    assert len(stored_files()) == 1


def test_too_many_entries_refuses_the_whole_archive(admin_client, people, settings):
    settings.QUORUM_ZIP_MAX_ENTRIES = 3
    archive = make_zip({f"{i}.jpg": images.image_bytes(seed=i) for i in range(4)})
    response = post_zip(admin_client, people.project, archive)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "status": 413,
        "code": "too_many_entries",
        "message": "The archive has 4 entries; the limit is 3.",
    }
    assert Image.objects.count() == 0 and stored_files() == []


def test_zip_bomb_is_refused_by_its_uncompressed_size(admin_client, people, settings):
    # 200 MB of zeros deflate to about 200 KB
    settings.QUORUM_ZIP_MAX_TOTAL_BYTES = 100 * 2**20
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle,
        bundle.open("zeros.png", "w") as member,
    ):
        chunk = bytes(2**20)
        for _ in range(200):
            member.write(chunk)
    archive = buffer.getvalue()
    assert len(archive) < 2 * 2**20
    response = post_zip(admin_client, people.project, archive)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "would unpack to 0.20 GiB" in response.json()["error"]["message"]
    assert Image.objects.count() == 0 and stored_files() == []


def test_an_entry_over_the_image_limit_is_read_no_further(admin_client, people, settings):
    settings.QUORUM_MAX_IMAGE_BYTES = 10_000
    archive = make_zip(
        {"big.png": bytes(50_000), "small.jpg": images.image_bytes(seed=7)}, compression=zipfile.ZIP_DEFLATED
    )
    response = post_zip(admin_client, people.project, archive)
    by_name = {r["name"]: r for r in response.json()["results"]}
    assert by_name["big.png"]["code"] == "too_large"
    assert by_name["small.jpg"]["status"] == "stored"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"PK\x03\x04 not really a zip", 415, "not_a_zip"),
        (images.image_bytes(), 415, "not_a_zip"),
        (make_zip({}), 400, "no_images"),
    ],
)
def test_archives_that_are_not_zips_or_empty(admin_client, people, settings, data, status, code):
    response = post_zip(admin_client, people.project, data)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Image.objects.count() == 0 and stored_files() == []


def test_bad_manifest_refuses_the_archive(admin_client, people, settings):
    archive = make_zip({"a.jpg": images.image_bytes(), "conditions.csv": b"name,weather\na.jpg,rain\n"})
    response = post_zip(admin_client, people.project, archive)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "conditions.csv must start with a 'file' column."
    assert Image.objects.count() == 0
