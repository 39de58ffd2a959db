"""Media on an S3 server (tests/s3server.py: moto, behind a gate that checks presigned URLs
as S3 does), whatever storage the rest of the suite uses: upload, thumbnails, export, the
training snapshot, a real training run's artifacts and serving's model load all go through
it; images reach the browser through short-lived presigned URLs, issued only to who may
see the image."""

import hashlib
import io
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from annotation.models import Assignment
from config.media import storage_put
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from datasets.storage import image_orphans_delete, image_thumbnail_make
from serving.cache import cache_clear
from tests import images
from tests.conftest import errors_collected, sign_in
from tests.factories import MembershipFactory
from tests.s3server import client as s3_client
from tests.storage import media_files
from tests.training.conftest import make_model, trainable_project
from training.models import DeploymentTarget, ModelStage, RunState, TargetBuild
from training.runner import training_run_execute
from training.services import training_run_create
from training.targets import target_settings

pytestmark = pytest.mark.django_db


def bucket_objects(options: dict) -> dict[str, bytes]:
    """This test's objects, read with boto3 straight from the S3 server (not through Quorum)."""
    s3 = s3_client(options["endpoint_url"])
    prefix = options["location"] + "/"
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=options["bucket_name"], Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=options["bucket_name"], Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) :]] = body
    return found


def local_media() -> list[Path]:
    root = Path(django_settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def upload(api_client, project, count: int, seed: int) -> list[int]:
    files = [
        io.BytesIO(images.image_bytes(size=(160, 128), seed=seed + index)) for index in range(count)
    ]  # fmt: skip
    for index, file in enumerate(files):
        file.name = f"street-{seed + index}.jpg"
    response = api_client.post(
        reverse("api-project-images", kwargs={"project_id": project.pk}), {"files": files}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return [result["image_id"] for result in response.json()["results"]]


def test_every_media_path_goes_through_the_s3_server(s3_media, settings, tmp_path, api_client):
    settings.QUORUM_TRAINING_DIR = tmp_path / "training"
    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    settings.QUORUM_TRAINING_HEARTBEAT_SECONDS = 3600  # the heartbeat's connection cannot see this test's rows
    trainable = trainable_project(images=12, name="Bucket")  # ingest of 12 synthetic scenes
    api_client.force_authenticate(trainable.admin)

    # upload through the API, then the thumbnail task's service
    image_ids = upload(api_client, trainable.project, 2, seed=700)
    for image in Image.objects.filter(pk__in=image_ids):
        image_thumbnail_make(image=image)
    stored = bucket_objects(s3_media)
    for image in Image.objects.filter(project=trainable.project):
        assert image.file.name in stored
    thumbnails = [Image.objects.get(pk=pk).thumbnail.name for pk in image_ids]
    assert all(name.startswith("thumbnails/") and name in stored for name in thumbnails)

    # a real training run: its snapshot written to the bucket, copied to the worker, its
    # weights and ONNX export stored back
    run = training_run_create(
        project=trainable.project, user=trainable.admin, architecture="yolo26n.yaml", imgsz=64, epochs=1, batch=4,
        device="cpu",
    )  # fmt: skip
    done = training_run_execute(run_id=run.pk, worker="pytest@s3")
    assert done.state == RunState.SUCCEEDED, done.error
    model = done.model_version
    stored = bucket_objects(s3_media)
    snapshot_files = [name for name in stored if name.startswith(f"{run.snapshot.storage_prefix}/")]
    assert f"{run.snapshot.storage_prefix}/data.yaml" in stored and len(snapshot_files) > 12
    assert model.weights in stored and model.onnx in stored

    # serving loads the model from the bucket into its cache, and answers
    model.stage = ModelStage.CHAMPION
    model.save(update_fields=["stage"])
    cache_clear()
    upload_file = io.BytesIO(images.image_bytes(size=(160, 128), seed=9))
    upload_file.name = "street.jpg"
    response = api_client.post(
        reverse("api-predict"), {"image": upload_file, "project": trainable.project.pk}, format="multipart"
    )
    assert response.status_code == 200, response.content
    cached = list(Path(settings.QUORUM_MODEL_CACHE_DIR).rglob("*.onnx"))
    assert [path.read_bytes() for path in cached] == [stored[model.onnx]]

    # the export's images are the bucket's bytes
    response = api_client.get(
        reverse("api-project-export", kwargs={"project_id": trainable.project.pk}),
        {"format": "yolo", "version": trainable.version.number},
    )
    assert response.status_code == 200, response.content
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    exported = [archive.read(name) for name in archive.namelist() if name.endswith(".jpg")]
    assert exported and all(data in stored.values() for data in exported)

    # and nothing of it went to a local media folder
    assert local_media() == []
    cache_clear()


@pytest.fixture
def two_projects(people, s3_media):
    for project, seed in ((people.project, 800), (people.other_project, 900)):
        data = [images.image_bytes(size=(96, 64), seed=seed + index) for index in range(2)]
        uploads = [IncomingImage(name=f"{index}.jpg", file=io.BytesIO(d), size=len(d)) for index, d in enumerate(data)]
        image_ingest(project=project, uploads=uploads, user=None)
    MembershipFactory(project=people.other_project, user=people.reviewer, role="annotator")
    return people


def test_a_presigned_url_is_issued_only_to_who_may_see_the_image(api_client, two_projects, s3_media):
    people = two_projects
    mine = Image.objects.filter(project=people.project).first()
    foreign = Image.objects.filter(project=people.other_project).first()
    api_client.force_authenticate(people.reviewer)

    response = api_client.get(reverse("api-image-file", args=[mine.pk]))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == s3_media["endpoint_url"]
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == [str(django_settings.QUORUM_S3_URL_SECONDS)]
    assert mine.sha256 not in response["Location"]  # the key does not name the content
    answer = requests.get(response["Location"], timeout=30)
    assert answer.status_code == 200 and answer.content == mine.file.open("rb").read()
    assert answer.headers["Content-Type"] == "image/jpeg"

    # another project's image (where rita only annotates), one that does not exist, and
    # a task that is someone else's: no URL, the same 404 or 403 as before
    for url, status in (
        (reverse("api-image-file", args=[foreign.pk]), 403),
        (reverse("api-image-thumbnail", args=[foreign.pk]), 403),
        (reverse("api-image-file", args=[999_999]), 404),
    ):
        refused = api_client.get(url)
        assert refused.status_code in (status, 404) and "Location" not in refused, url
    api_client.force_authenticate(people.outsider)
    for image in (mine, foreign):
        refused = api_client.get(reverse("api-image-file", args=[image.pk]))
        assert refused.status_code in (403, 404) and "Location" not in refused
    task = Assignment.objects.create(
        image=mine, annotator=people.annotator, leased_at="2026-01-01T00:00Z", lease_expires_at="2999-01-01T00:00Z"
    )
    refused = api_client.get(reverse("api-assignment-image", args=[task.pk]))
    assert refused.status_code == 404 and "Location" not in refused
    api_client.force_authenticate(people.annotator)
    given = api_client.get(reverse("api-assignment-image", args=[task.pk]))
    assert given.status_code == 302 and mine.sha256 not in given["Location"]
    answer = requests.get(given["Location"], timeout=30)
    assert answer.headers["Content-Disposition"] == f'inline; filename="task-{task.pk}.jpg"'


def test_an_expired_or_altered_url_is_refused(api_client, two_projects, settings):
    people = two_projects
    settings.QUORUM_S3_URL_SECONDS = 5  # X-Amz-Date is in whole seconds: 4 to 5 s of life
    image = Image.objects.filter(project=people.project).first()
    api_client.force_authenticate(people.reviewer)
    url = api_client.get(reverse("api-image-file", args=[image.pk]))["Location"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["5"]
    assert requests.get(url, timeout=30).status_code == 200
    longer = url.replace("X-Amz-Expires=5", "X-Amz-Expires=3600")
    refused = requests.get(longer, timeout=30)
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    time.sleep(6.1)
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 403 and b"Request has expired" in refused.content
    # a new request to Quorum gives a new URL, which works
    again = api_client.get(reverse("api-image-file", args=[image.pk]))["Location"]
    assert again != url and requests.get(again, timeout=30).status_code == 200


def target_build_stored(name: str, *, target_name: str = "gate", trainable=None) -> tuple:
    """A measured build (its artifact a few KB of bytes in the storage) of a model of a new
    project `name` (or of `trainable`'s) on a new target: (trainable, build, the artifact's bytes)."""
    trainable = trainable or trainable_project(images=6, name=name)
    model = make_model(trainable, ap50=0.5)
    target = DeploymentTarget.objects.create(
        project=trainable.project, name=target_name, camera_width=320, camera_height=180, input_size=320, threads=1,
        precision="int8", latency_budget_ms=50, size_budget_mb=5,
    )  # fmt: skip
    onnx = f"an int8 model for {target_name}, ".encode() * 1000
    stored = storage_put(f"targets/{model.pk}/{target.pk}-int8.onnx", onnx)
    build = TargetBuild.objects.create(
        model=model, target=target, state=TargetBuild.State.DONE, settings=target_settings(target),
        artifact=stored, artifact_sha256=hashlib.sha256(onnx).hexdigest(), passed=True,
    )  # fmt: skip
    return trainable, build, onnx


def test_a_target_build_s_artifact_is_downloaded_from_the_bucket(api_client, s3_media):
    trainable, build, onnx = target_build_stored("Gate")
    model = build.model
    url = reverse("api-target-artifact", kwargs={"build_id": build.pk})
    api_client.force_authenticate(trainable.reviewer)
    response = api_client.get(url)
    # the bytes go from the bucket to the client, not through the web process
    assert response.status_code == 302 and not response.streaming
    assert response["Location"].startswith(s3_media["endpoint_url"] + "/")
    answer = requests.get(response["Location"], timeout=30)
    assert answer.status_code == 200 and answer.content == onnx
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Content-Disposition"] == f'attachment; filename="model-{model.number}-gate-int8.onnx"'
    # a name beyond ASCII reaches the browser as RFC 6266 spells it (as Django's own downloads)
    _, beyond, _ = target_build_stored("", target_name="Tür 2", trainable=trainable)
    answer = requests.get(api_client.get(reverse("api-target-artifact", args=[beyond.pk]))["Location"], timeout=30)
    assert answer.headers["Content-Disposition"] == (
        f"attachment; filename*=utf-8''model-{beyond.model.number}-T%C3%BCr%202-int8.onnx"
    )
    # who is not a reviewer of the project gets no URL
    for user in (trainable.annotator, trainable.outsider):
        api_client.force_authenticate(user)
        refused = api_client.get(url)
        assert refused.status_code in (403, 404) and "Location" not in refused, user


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_reviewer_downloads_a_target_artifact_from_the_model_page_out_of_the_bucket(s3_media, browser, live_server):
    trainable, build, onnx = target_build_stored("Kiosk")
    page = browser.new_context(accept_downloads=True).new_page()
    errors = errors_collected(page)
    sign_in(page, live_server.url, trainable.reviewer.username)
    page.goto(f"{live_server.url}{reverse('model', args=[build.model.pk])}")
    with page.expect_download() as started:
        page.click(f"#target-builds tr[data-build='{build.pk}'] a:text-is('artifact')")
    download = started.value
    assert download.url.startswith(s3_media["endpoint_url"] + "/") and "X-Amz-Signature=" in download.url
    assert download.suggested_filename == f"model-{build.model.number}-gate-int8.onnx"
    assert Path(download.path()).read_bytes() == onnx
    assert errors == []


def test_a_file_below_the_multipart_threshold_is_one_put_and_a_larger_one_goes_in_parts(s3_media):
    calls = []
    events = default_storage.connection.meta.client.meta.events
    handler = events.register("before-call.s3", lambda model, **_: calls.append((model.name, threading.get_ident())))
    try:
        small = storage_put("models/small.onnx", b"x" * 1000)
        assert calls == [("PutObject", threading.get_ident())]  # on this thread: no transfer pool started
        threshold = default_storage.transfer_config.multipart_threshold
        calls.clear()
        large = storage_put("models/large.onnx", b"y" * threshold)
        assert calls[0][0] == "CreateMultipartUpload" and calls[-1][0] == "CompleteMultipartUpload"
    finally:
        events.unregister("before-call.s3", handler)
    stored = bucket_objects(s3_media)
    assert stored[small] == b"x" * 1000 and stored[large] == b"y" * threshold
    # with the metadata django-storages gives (the content type guessed from the name)
    head = s3_client(s3_media["endpoint_url"]).head_object(
        Bucket=s3_media["bucket_name"], Key=f"{s3_media['location']}/{small}"
    )
    assert head["ContentType"] == "application/octet-stream" and head["ContentLength"] == 1000


def test_orphan_files_are_swept_from_the_bucket(people, s3_media):
    data = images.image_bytes(size=(96, 64), seed=5)
    image_ingest(
        project=people.project, uploads=[IncomingImage(name="a.jpg", file=io.BytesIO(data), size=len(data))], user=None
    )
    kept = Image.objects.get()
    orphan = default_storage.save(f"images/{people.project.pk}/ab/{'ab' * 32}.jpg", ContentFile(b"left by a crash"))
    assert image_orphans_delete(older_than=timedelta(hours=1)) == []  # too new to go
    time.sleep(1.1)
    assert image_orphans_delete(older_than=timedelta(seconds=1)) == [orphan]
    assert sorted(media_files()) == [kept.file.name]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_canvas_draws_an_image_fetched_from_the_bucket(s3_media, browser, live_server, people):
    data = [images.image_bytes("PNG", size=(400, 300), seed=310 + index) for index in range(2)]
    uploads = [IncomingImage(name=f"{index}.png", file=io.BytesIO(d), size=len(d)) for index, d in enumerate(data)]
    image_ingest(project=people.project, uploads=uploads, user=None)
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    errors = errors_collected(page)
    fetched = []
    page.on("response", lambda answer: fetched.append((answer.url, answer.status)))
    sign_in(page, live_server.url, "anna")
    page.goto(f"{live_server.url}/projects/{people.project.pk}/annotate/")
    page.wait_for_selector("#annotator[data-ready='1']")
    page.wait_for_selector("#annotator[data-ahead]")  # the next task's image, decoded ahead
    from_bucket = [url for url, status in fetched if url.startswith(s3_media["endpoint_url"]) and status == 200]
    assert len(from_bucket) == 2 and all("X-Amz-Signature=" in url for url in from_bucket)
    # Quorum answered with redirects only: no image bytes went through the web process
    redirects = [status for url, status in fetched if "/image/" in url and url.startswith(live_server.url)]
    assert redirects and set(redirects) == {302}
    assert errors == []  # the page's policy allows the bucket's origin
