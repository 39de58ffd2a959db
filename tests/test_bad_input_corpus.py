"""The bad-input corpus (tests/corpus/make.py) through every endpoint that takes each kind
of input: a clear 4xx in the error shape, and nothing left behind (no row, no stored file,
no task, no draft change, no prediction logged as answered). The odd inputs that are fine
(EXIF-rotated, CMYK, 16-bit) are accepted."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Assignment
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.models import Adjudication, Annotation, Box
from serving.models import PredictionJob, PredictionLog
from tests import images
from tests.corpus.make import OVERSIZE_BYTES, boxes_cases, image_cases, import_cases
from tests.storage import media_files

pytestmark = pytest.mark.django_db

IMAGE_CASES = image_cases()
BOXES_CASES = boxes_cases()
IMPORT_CASES = import_cases(["street_0.jpg"], width=64, height=48)


@pytest.fixture
def world(people, settings, tmp_path, api_client):
    settings.QUORUM_MAX_IMAGE_BYTES = OVERSIZE_BYTES - 20_000
    settings.QUORUM_PREDICT_MAX_BYTES = OVERSIZE_BYTES - 20_000
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    uploads = [
        IncomingImage(name=f"street_{index}.jpg", file=io.BytesIO(data), size=len(data))
        for index, data in enumerate(images.image_bytes("JPEG", size=(64, 48), seed=seed) for seed in (1, 2))
    ]
    image_ingest(project=people.project, uploads=uploads, user=None)
    first, second = Image.objects.filter(project=people.project).order_by("pk")
    assignment = Assignment.objects.create(
        image=first, annotator=people.annotator, leased_at="2026-01-01T00:00Z", lease_expires_at="2999-01-01T00:00Z"
    )
    return people, assignment, second


def footprint(settings) -> tuple:
    files = sorted(media_files())
    return (
        Image.objects.count(), Annotation.objects.count(), Box.objects.count(), Adjudication.objects.count(),
        PredictionJob.objects.count(), PredictionLog.objects.filter(status=200).count(),
        list(Assignment.objects.values_list("version", "draft")), files,
    )  # fmt: skip


def assert_refused_and_nothing_left(response, before, settings, capture, label: str):
    assert 400 <= response.status_code < 500, f"{label}: {response.status_code} {response.content[:300]!r}"
    error = response.json()["error"]
    assert error["status"] == response.status_code and error["message"], label
    assert footprint(settings) == before, f"{label} left something behind"
    assert capture == [], f"{label} queued a task"


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(f"photos/{name}", data)
    return buffer.getvalue()


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[case.name for case in IMAGE_CASES])
def test_images_through_upload_zip_predict_and_the_upload_page(
    world, api_client, settings, case, django_capture_on_commit_callbacks
):
    people, _, _ = world
    project = people.project
    calls = {
        "upload": (people.project_admin, reverse("api-project-images", args=[project.pk]),
                   {"files": [SimpleUploadedFile(case.file_name, case.data)]}),
        "zip": (people.project_admin, reverse("api-project-images-zip", args=[project.pk]),
                {"archive": SimpleUploadedFile("photos.zip", zipped(case.file_name, case.data))}),
        "predict": (people.reviewer, reverse("api-predict"),
                    {"image": SimpleUploadedFile(case.file_name, case.data), "project": project.pk}),
        "upload page": (people.project_admin, reverse("project-image-upload", args=[project.pk]),
                        {"files": [SimpleUploadedFile(case.file_name, case.data)]}),
    }  # fmt: skip
    for endpoint, (user, url, payload) in calls.items():
        api_client.force_authenticate(user)
        before = footprint(settings)
        with django_capture_on_commit_callbacks() as callbacks:
            if endpoint.endswith("page"):
                api_client.force_login(user)
            response = api_client.post(url, payload, format="multipart")
        label = f"{case.name} through {endpoint}"
        if endpoint.endswith("page"):  # an HTML page: its status, the reason shown, nothing left
            if case.is_accepted:
                html = response.content.decode()  # the API stored it a moment ago: a duplicate now
                assert response.status_code == 200 and "0 stored, 1 duplicates" in html, label
            else:
                assert 400 <= response.status_code < 500 and "0 stored, 0 duplicates, 1 refused." in (
                    response.content.decode()
                ), label
                assert footprint(settings) == before and callbacks == [], f"{label} left something behind"
            continue
        if not case.is_accepted:
            assert_refused_and_nothing_left(response, before, settings, callbacks, label)
        elif endpoint == "predict":  # decoded; the project has no model to answer yet
            assert response.status_code == 409 and response.json()["error"]["code"] == "no_champion", label
        elif endpoint == "upload":
            assert response.status_code == 201, f"{label}: {response.content[:300]!r}"
        else:  # the same image again, from the archive: a duplicate, not a new row
            assert response.status_code in (200, 201) and footprint(settings)[0] == before[0], label


@pytest.mark.parametrize("case", BOXES_CASES, ids=[case.name for case in BOXES_CASES])
def test_boxes_through_draft_submit_adjudication_and_gold(
    world, api_client, settings, case, django_capture_on_commit_callbacks
):
    people, assignment, other = world
    calls = {
        "draft": (
            people.annotator, "put", reverse("api-assignment-draft", args=[assignment.pk]), {"HTTP_IF_MATCH": "1"}
        ),
        "submit": (people.annotator, "post", reverse("api-assignment-submit", args=[assignment.pk]), {}),
        "adjudication": (people.reviewer, "post", reverse("api-adjudication", args=[other.pk]), {}),
        "gold": (people.reviewer, "post", reverse("api-gold", args=[other.pk]), {}),
    }  # fmt: skip
    for endpoint, (user, method, url, headers) in calls.items():
        api_client.force_authenticate(user)
        before = footprint(settings)
        with django_capture_on_commit_callbacks() as callbacks:
            response = getattr(api_client, method)(url, case.data, content_type="application/json", **headers)
        assert_refused_and_nothing_left(response, before, settings, callbacks, f"{case.name} through {endpoint}")


@pytest.mark.parametrize("case", IMPORT_CASES, ids=[case.name for case in IMPORT_CASES])
def test_imports(world, api_client, settings, case, django_capture_on_commit_callbacks):
    people, _, _ = world
    api_client.force_authenticate(people.project_admin)
    before = footprint(settings)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client.post(
            reverse("api-project-import", args=[people.project.pk]),
            {"file": SimpleUploadedFile(case.file_name, case.data), "format": case.format, "target": "gold"},
            format="multipart",
        )
    assert_refused_and_nothing_left(response, before, settings, callbacks, case.name)
