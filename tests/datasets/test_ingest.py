"""Image ingestion through the API: what is stored, and that refused files leave nothing."""

import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from datasets import ingest
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image, SplitTally
from datasets.splits import split_assign, splits_assign
from datasets.storage import image_orphans_delete, image_thumbnail_make
from tests import images
from tests.factories import ProjectFactory
from tests.storage import media_files, served

pytestmark = pytest.mark.django_db


def upload(api_client, project, files, **fields):
    data = {"files": [SimpleUploadedFile(name, content) for name, content in files]}
    data.update({key: json.dumps(value) for key, value in fields.items()})
    return api_client.post(reverse("api-project-images", kwargs={"project_id": project.pk}), data, format="multipart")


def stored_files(settings) -> list[str]:
    return sorted(media_files())


def stored_bytes(field) -> bytes:
    with field.storage.open(field.name, "rb") as stored:
        return stored.read()


@pytest.fixture
def admin_client(api_client, people):
    api_client.force_login(people.project_admin)
    return api_client


def test_jpeg_png_webp_are_stored_upright_rgb_with_their_facts(admin_client, people, settings):
    files = [
        ("street.jpg", images.image_bytes("JPEG", size=(64, 48), seed=1)),
        ("night.png", images.image_bytes("PNG", size=(50, 40), seed=2)),
        ("rain.webp", images.image_bytes("WEBP", size=(30, 20), seed=3)),
    ]
    response = upload(admin_client, people.project, files, conditions={"weather": "rain", "setting": "street"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["stored"], body["duplicates"], body["refused"]) == (3, 0, 0)
    for (name, content), result in zip(files, body["results"], strict=True):
        image = Image.objects.get(pk=result["image_id"])
        assert result["status"] == "stored" and result["name"] == name
        assert image.original_name == name
        assert image.sha256 == hashlib.sha256(content).hexdigest()
        assert image.conditions == {"weather": "rain", "setting": "street"}
        assert image.stratum == "setting=street|weather=rain"
        assert image.split in {"train", "val", "test"}
        assert image.uploaded_by == people.project_admin
        with PILImage.open(io.BytesIO(stored_bytes(image.file))) as stored:
            original = PILImage.open(io.BytesIO(content))
            assert stored.format == original.format
            assert (stored.width, stored.height) == (image.width, image.height) == original.size
            assert stored.mode == "RGB"
    assert [image.format for image in Image.objects.order_by("pk")] == ["jpeg", "png", "webp"]
    assert len(stored_files(settings)) == 3


def test_exif_orientation_is_applied_once_and_exif_dropped(admin_client, people):
    # given a 40x20 JPEG whose EXIF says "rotate 90° clockwise to display"
    response = upload(admin_client, people.project, [("phone.jpg", images.exif_rotated_jpeg(orientation=6))])
    image = Image.objects.get(pk=response.json()["results"][0]["image_id"])
    # then it is stored upright, 20x40, with the white quarter now top-right, and no EXIF
    assert (image.width, image.height) == (20, 40)
    with PILImage.open(io.BytesIO(stored_bytes(image.file))) as stored:
        assert stored.size == (20, 40)
        assert not stored.getexif()
        assert "exif" not in stored.info
        array = np.asarray(stored.convert("L"), dtype=float)
    assert array[:20, 10:].mean() > 200
    assert array[:20, :10].mean() < 50


def test_duplicate_is_reported_with_the_existing_id_and_not_stored_twice(admin_client, people, settings):
    content = images.image_bytes("PNG", seed=9)
    first = upload(admin_client, people.project, [("a.png", content)]).json()["results"][0]
    response = upload(admin_client, people.project, [("copy-of-a.png", content)])
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["status"] == "duplicate"
    assert result["image_id"] == first["image_id"]
    assert result["message"] == f"This project already has this image (id {first['image_id']})."
    assert Image.objects.count() == 1
    assert len(stored_files(settings)) == 1
    # the same content in another project is that project's own image
    other_admin = people.project_admin
    people.other_project.memberships.create(user=other_admin, role="admin")
    assert upload(admin_client, people.other_project, [("a.png", content)]).status_code == 201


BAD_INPUTS = [
    ("truncated.jpg", images.truncated_jpeg, 400, "corrupt", "could not be decoded"),
    ("notes.jpg", lambda: b"just some text, not an image", 415, "not_an_image", "not a JPEG, PNG or WebP"),
    ("page.jpg", lambda: images.HTML_AS_JPG, 415, "not_an_image", "not a JPEG, PNG or WebP"),
    ("vector.jpg", lambda: images.SVG_AS_JPG, 415, "not_an_image", "not a JPEG, PNG or WebP"),
    ("empty.jpg", lambda: b"", 400, "empty", "The file is empty."),
    ("bomb.png", images.png_bomb, 413, "too_many_pixels", "60.0 megapixels; the limit is 50.0"),
    ("anim.gif", lambda: images.image_bytes("GIF"), 415, "unsupported_format", "GIF images are not accepted"),
    ("anim.webp", images.animated_webp, 415, "animated", "Animated images are not accepted."),
    ("scan.bmp", lambda: images.image_bytes("BMP"), 415, "unsupported_format", "BMP images are not accepted"),
]


@pytest.mark.parametrize(("name", "make", "status", "code", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_image_is_refused_with_its_reason_and_leaves_nothing(
    admin_client, people, settings, name, make, status, code, message
):
    response = upload(admin_client, people.project, [(name, make())])
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert message in body["error"]["message"]
    assert body["results"] == [
        {
            "name": name,
            "status": "refused",
            "image_id": None,
            "split": None,
            "code": code,
            "message": body["results"][0]["message"],
        }
    ]
    assert Image.objects.count() == 0
    assert stored_files(settings) == []


def test_image_over_the_byte_limit_is_a_413(admin_client, people, settings):
    settings.QUORUM_MAX_IMAGE_BYTES = 1000
    response = upload(admin_client, people.project, [("big.png", images.image_bytes("PNG", size=(300, 300), seed=4))])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "the limit is 0.0 MiB" in response.json()["error"]["message"]
    assert Image.objects.count() == 0 and stored_files(settings) == []


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"weather": "snow"}, "Unknown value 'snow' for 'weather'; allowed: sun, overcast, rain, night."),
        (
            {"camera": "dash"},
            "Unknown condition 'camera'; this project's conditions are: resolution, setting, weather.",
        ),
    ],
)
def test_unknown_conditions_are_refused(admin_client, people, settings, conditions, message):
    response = upload(admin_client, people.project, [("a.jpg", images.image_bytes())], conditions=conditions)
    assert response.status_code == 400
    assert response.json()["results"][0]["message"] == message
    assert Image.objects.count() == 0 and stored_files(settings) == []


def test_malformed_conditions_json_is_a_400_for_the_request(admin_client, people, settings):
    url = reverse("api-project-images", kwargs={"project_id": people.project.pk})
    data = {"files": [SimpleUploadedFile("a.jpg", images.image_bytes())], "conditions": "{not json"}
    response = admin_client.post(url, data, format="multipart")
    assert response.status_code == 400
    assert "conditions" in response.json()["error"]["fields"]
    assert Image.objects.count() == 0 and stored_files(settings) == []


def test_a_mixed_batch_answers_per_file_and_keeps_only_the_good(admin_client, people, settings):
    files = [
        ("good.jpg", images.image_bytes(seed=11)),
        ("bad.jpg", images.truncated_jpeg()),
        ("rainy.png", images.image_bytes("PNG", seed=12)),
    ]
    response = upload(admin_client, people.project, files, file_conditions={"rainy.png": {"weather": "rain"}})
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "refused", "stored"]
    assert results[1]["code"] == "corrupt"
    assert Image.objects.get(pk=results[2]["image_id"]).conditions == {"weather": "rain"}
    assert Image.objects.get(pk=results[0]["image_id"]).conditions == {}
    assert len(stored_files(settings)) == 2


def test_cmyk_and_16_bit_images_become_rgb(admin_client, people):
    files = [("print.jpg", images.image_bytes("JPEG", mode="CMYK")), ("depth.png", images.sixteen_bit_png())]
    results = upload(admin_client, people.project, files).json()["results"]
    for result in results:
        with PILImage.open(io.BytesIO(stored_bytes(Image.objects.get(pk=result["image_id"]).file))) as stored:
            assert stored.mode == "RGB"
    with PILImage.open(io.BytesIO(stored_bytes(Image.objects.get(pk=results[1]["image_id"]).file))) as stored:
        grey = np.asarray(stored)[..., 0]
    # the 16-bit ramp keeps its order in 8 bits
    assert grey[0, 0] < grey[-1, -1]


def test_a_crash_while_writing_the_rows_leaves_no_file(people, settings, monkeypatch):
    # given one ingest thread (groups of four files) and a database failure while the
    # second group's rows are written
    settings.QUORUM_INGEST_THREADS = 1
    calls = {"n": 0}
    real = ingest.splits_assign

    def failing_splits_assign(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(ingest, "splits_assign", failing_splits_assign)
    uploads = [
        IncomingImage(name=f"{i}.png", file=io.BytesIO(data), size=len(data))
        for i, data in enumerate([images.image_bytes("PNG", seed=21 + i) for i in range(6)])
    ]
    # when the batch runs, the crash propagates
    with pytest.raises(RuntimeError):
        image_ingest(project=people.project, uploads=uploads, user=None)
    # then the first group is stored whole, and the second left neither row nor file
    stored = Image.objects.order_by("pk")
    assert [image.original_name for image in stored] == ["0.png", "1.png", "2.png", "3.png"]
    assert stored_files(settings) == sorted(image.file.name for image in stored)


def test_a_group_s_splits_are_those_drawn_one_at_a_time(people):
    # given arrivals of mixed conditions, drawn together in one group and one by one
    arrivals = [({"weather": w}, f"{i:064x}") for i, w in enumerate(["sun", "rain", "sun", "night", "sun"] * 6)]
    other = ProjectFactory(name="one at a time", split_seed=people.project.split_seed)
    together = splits_assign(project=people.project, arrivals=arrivals)
    one_by_one = [split_assign(project=other, conditions=c, sha256=s) for c, s in arrivals]
    # then the splits and the tallies agree
    assert together == one_by_one
    tallies = {
        p: set(SplitTally.objects.filter(project=p).values_list("group", "split", "count"))
        for p in (people.project, other)
    }
    assert tallies[people.project] == tallies[other]
    assert ("all", "train", together.count("train")) in tallies[other]


def test_the_same_new_file_twice_in_a_batch_is_stored_once(admin_client, people, settings):
    data = images.image_bytes(seed=41)
    results = upload(admin_client, people.project, [("a.jpg", data), ("b.jpg", data)]).json()["results"]
    image = Image.objects.get()
    assert [r["status"] for r in results] == ["stored", "duplicate"]
    assert results[1]["image_id"] == image.pk
    assert stored_files(settings) == [image.file.name]


def test_orphan_files_older_than_an_hour_are_swept(filesystem_media, admin_client, people, settings):
    upload(admin_client, people.project, [("kept.jpg", images.image_bytes(seed=31))])
    kept = Image.objects.get()
    root = Path(settings.MEDIA_ROOT)
    old_orphan = root / "images" / str(people.project.pk) / "ab" / ("ab" + "0" * 62 + ".jpg")
    new_orphan = root / "images" / str(people.project.pk) / "cd" / ("cd" + "0" * 62 + ".jpg")
    for orphan in (old_orphan, new_orphan):
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"left by a crash")
    two_hours_ago = time.time() - 7200
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))
    os.utime(kept.file.path, (two_hours_ago, two_hours_ago))

    deleted = image_orphans_delete()

    assert deleted == [f"images/{people.project.pk}/ab/{old_orphan.name}"]
    assert not old_orphan.exists()
    assert new_orphan.exists()
    assert Path(kept.file.path).exists()


def test_thumbnail_is_enqueued_after_commit_and_made_by_the_task(
    admin_client, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(admin_client, people.project, [("big.jpg", images.image_bytes(size=(640, 320), seed=41))])
    assert len(callbacks) == 1
    image = Image.objects.get(pk=response.json()["results"][0]["image_id"])
    assert not image.thumbnail
    name = image_thumbnail_make(image=image)
    image.refresh_from_db()
    assert image.thumbnail.name == name
    with PILImage.open(io.BytesIO(stored_bytes(image.thumbnail))) as thumbnail:
        assert thumbnail.size == (256, 128)
    status, headers, body = served(admin_client.get(reverse("api-image-thumbnail", kwargs={"image_id": image.pk})))
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body == stored_bytes(image.thumbnail)


def test_files_and_lists_are_for_reviewers_and_admins(api_client, people):
    api_client.force_login(people.project_admin)
    image_id = upload(api_client, people.project, [("a.jpg", images.image_bytes(seed=51))]).json()["results"][0][
        "image_id"
    ]
    file_url = reverse("api-image-file", kwargs={"image_id": image_id})
    list_url = reverse("api-project-images", kwargs={"project_id": people.project.pk})
    expected = {"reviewer": 200, "project_admin": 200, "staff": 200, "annotator": 403, "outsider": 404}
    for role, status in expected.items():
        api_client.force_login(getattr(people, role))
        assert served(api_client.get(file_url))[0] == status, role
        assert api_client.get(list_url).status_code == status, role
    api_client.force_login(people.reviewer)
    assert served(api_client.get(file_url))[2] == stored_bytes(Image.objects.get(pk=image_id).file)
    assert upload(api_client, people.project, [("b.jpg", images.image_bytes(seed=52))]).status_code == 403
    listed = api_client.get(list_url, {"split": Image.objects.get(pk=image_id).split}).json()
    assert [item["id"] for item in listed["results"]] == [image_id]


def test_refusals_are_the_same_after_ultralytics_patched_pillow(admin_client, people, settings):
    # ultralytics replaces PIL.Image.open process-wide when imported (serving and training
    # workers import it); a file that is not an image must still be a clean 415
    import ultralytics.utils.patches  # noqa: F401
    from PIL import Image as PILImageModule

    assert PILImageModule.open.__module__ != "PIL.Image"
    response = upload(admin_client, people.project, [("notes.jpg", b"not an image at all")])
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "not_an_image"
    assert upload(admin_client, people.project, [("ok.jpg", images.image_bytes(seed=77))]).status_code == 201


def test_clean_files_are_kept_byte_for_byte_and_metadata_forces_a_clean_copy(admin_client, people):
    clean = images.image_bytes("JPEG", size=(64, 48), seed=61)
    with_comment = images.image_bytes("JPEG", size=(64, 48), seed=62, comment=b"shot by someone")
    with_icc = images.image_bytes("PNG", size=(64, 48), seed=63, icc_profile=b"\0" * 128)
    results = upload(
        admin_client, people.project, [("a.jpg", clean), ("b.jpg", with_comment), ("c.png", with_icc)]
    ).json()
    stored = [Image.objects.get(pk=r["image_id"]) for r in results["results"]]
    # a clean upload is stored as sent: no generation loss
    assert stored_bytes(stored[0].file) == clean
    # metadata is dropped by a clean re-encode
    for image in stored[1:]:
        with PILImage.open(io.BytesIO(stored_bytes(image.file))) as reopened:
            assert "comment" not in reopened.info and "icc_profile" not in reopened.info
        assert stored_bytes(image.file) not in (with_comment, with_icc)


def test_one_thumbnail_task_per_group_makes_every_thumbnail(admin_client, people, django_capture_on_commit_callbacks):
    from datasets.tasks import image_thumbnails_task

    files = [(f"{i}.jpg", images.image_bytes(size=(300, 200), seed=80 + i)) for i in range(5)]
    with django_capture_on_commit_callbacks() as callbacks:
        results = upload(admin_client, people.project, files).json()["results"]
    assert len(callbacks) == 1
    ids = [r["image_id"] for r in results]
    # the task, run in this process as the worker would run it, makes all five
    assert image_thumbnails_task(ids) == 5
    assert all(Image.objects.get(pk=i).thumbnail for i in ids)


def test_the_same_broken_file_twice_in_a_batch_is_refused_twice(admin_client, people, settings):
    broken = images.image_bytes(seed=42)[:300]
    body = upload(admin_client, people.project, [("a.jpg", broken), ("b.jpg", broken)]).json()
    assert [(r["name"], r["status"], r["code"]) for r in body["results"]] == [
        ("a.jpg", "refused", "corrupt"),
        ("b.jpg", "refused", "corrupt"),
    ]
    assert not Image.objects.exists()
    assert stored_files(settings) == []


def test_a_new_file_sent_again_in_a_later_group_is_its_duplicate(people, settings):
    # given groups of four files, the first file's content again as the sixth
    settings.QUORUM_INGEST_THREADS = 1
    contents = [images.image_bytes("PNG", seed=51 + i) for i in range(5)]
    contents.append(contents[0])
    uploads = [IncomingImage(name=f"{i}.png", file=io.BytesIO(c), size=len(c)) for i, c in enumerate(contents)]
    results = image_ingest(project=people.project, uploads=uploads, user=None)
    assert [r.status for r in results] == ["stored"] * 5 + ["duplicate"]
    assert results[5].image_id == results[0].image_id
    assert Image.objects.count() == 5
    assert len(stored_files(settings)) == 5
