"""Back to the annotators: uncertain uploads are kept, and a reviewer sends the served images
the models were least sure of (or the most drifted) to the front of the annotation queue."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from annotation.assignments import assignment_lease_next
from datasets.models import Image
from serving.drift import drift_report_compute
from serving.models import PredictionLog
from tests.serving.conftest import as_camera, as_reviewer
from tests.serving.test_predict import post_image, scene_jpeg
from tests.storage import media_files
from tests.tiny_model import IMGSZ

pytestmark = pytest.mark.django_db


def jpeg(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def uploads(trainable) -> list[bytes]:
    base = PILImage.open(io.BytesIO(scene_jpeg(trainable))).convert("RGB")
    return [jpeg(base.rotate(angle)) for angle in (3, 6, 9)]


def test_uncertain_uploads_are_kept_and_the_least_sure_go_first_in_the_queue(api_client, served, settings):
    trainable, _, _ = served
    settings.QUORUM_SERVING_KEEP_BELOW = 1.0  # a one-epoch model is unsure of everything
    as_camera(api_client, trainable)
    for data in uploads(trainable):
        assert post_image(api_client, data, project=trainable.project.pk, conf=0.01).status_code == 200
    rows = list(PredictionLog.objects.order_by("mean_confidence"))
    assert all(row.kept_file and default_storage.exists(row.kept_file) for row in rows)
    before = Image.objects.filter(project=trainable.project).count()
    as_reviewer(api_client, trainable)

    response = api_client.post(
        f"/api/v1/projects/{trainable.project.pk}/uncertain-images/", {"count": 2}, format="json"
    )

    assert response.status_code == 200 and response.json() == {"sent": 2, "added": 2, "moved_up": 0}
    new = Image.objects.filter(project=trainable.project).order_by("-pk")[:2]
    assert Image.objects.filter(project=trainable.project).count() == before + 2
    assert all(image.priority == 1 for image in new)
    sent = set(PredictionLog.objects.filter(sent_to_annotators_at__isnull=False).values_list("pk", flat=True))
    assert sent == {rows[0].pk, rows[1].pk}  # the two lowest mean confidences
    # each served image goes once; the third is what is left
    again = api_client.post(f"/api/v1/projects/{trainable.project.pk}/uncertain-images/", {"count": 5}, format="json")
    assert again.json()["sent"] == 1
    # and an annotator's next task is one of them
    lease = assignment_lease_next(project=trainable.project, user=trainable.annotator)
    assert Image.objects.get(pk=lease.image_id).priority == 1


def test_nothing_is_kept_when_the_threshold_is_off_and_stored_images_move_up(api_client, served, settings):
    trainable, _, _ = served
    settings.QUORUM_SERVING_KEEP_BELOW = 0
    as_camera(api_client, trainable)
    assert post_image(api_client, uploads(trainable)[0], project=trainable.project.pk).status_code == 200
    assert PredictionLog.objects.get().kept_file == ""
    complete, image = trainable.project.images.order_by("pk")[:2]
    Image.objects.filter(pk=image.pk).update(submitted_count=1)  # still needs annotators
    for stored in (complete, image):
        api_client.post("/api/v1/predict/", {"image_id": stored.pk}, format="json")
    as_reviewer(api_client, trainable)
    body = api_client.post(f"/api/v1/projects/{trainable.project.pk}/uncertain-images/", {}, format="json").json()
    assert body == {"sent": 1, "added": 0, "moved_up": 1}  # the complete image cannot go back to the queue
    complete.refresh_from_db()
    assert complete.priority == 0
    image.refresh_from_db()
    assert image.priority == 1


def test_the_most_drifted_go_first_by_drift(api_client, served, settings):
    trainable, champion, _ = served
    settings.QUORUM_SERVING_KEEP_BELOW = 1.0
    champion.reference_profile = {"brightness": [100.0, 110.0, 120.0, 130.0, 140.0], "width": [IMGSZ] * 5}
    champion.save(update_fields=["reference_profile"])
    base = PILImage.open(io.BytesIO(scene_jpeg(trainable))).convert("RGB")
    as_camera(api_client, trainable)
    for picture in (base, PILImage.eval(base, lambda v: v // 5), base.rotate(2)):
        post_image(api_client, jpeg(picture), project=trainable.project.pk)
    darkest = PredictionLog.objects.order_by("brightness").first()
    as_reviewer(api_client, trainable)
    body = api_client.post(
        f"/api/v1/projects/{trainable.project.pk}/uncertain-images/", {"count": 1, "by": "drift"}, format="json"
    ).json()
    assert body["sent"] == 1
    assert PredictionLog.objects.get(sent_to_annotators_at__isnull=False) == darkest


def test_people_trying_a_model_are_not_production_traffic(api_client, served, settings):
    """A reviewer's uploads (the try-it page, a personal token) are answered and logged, but
    not kept, not sent to the annotators and not read for drift: they are no camera."""
    trainable, champion, _ = served
    settings.QUORUM_SERVING_KEEP_BELOW = 1.0
    settings.QUORUM_DRIFT_MIN_PREDICTIONS = 2
    champion.reference_profile = {"brightness": [float(v) for v in range(100, 150)]}
    champion.save(update_fields=["reference_profile"])
    as_reviewer(api_client, trainable)
    for data in uploads(trainable):
        assert post_image(api_client, data, project=trainable.project.pk).status_code == 200
    assert PredictionLog.objects.filter(user=trainable.reviewer, kept_file="").count() == 3
    assert drift_report_compute(model=champion) is None  # no client answered: nothing to compare
    url = f"/api/v1/projects/{trainable.project.pk}/uncertain-images/"
    assert api_client.post(url, {"count": 5}, format="json").json() == {"sent": 0, "added": 0, "moved_up": 0}

    as_camera(api_client, trainable)
    for data in uploads(trainable):
        assert post_image(api_client, data, project=trainable.project.pk).status_code == 200
    report = drift_report_compute(model=champion)
    assert report is not None and report.predictions == 3  # the camera's three, not the reviewer's
    as_reviewer(api_client, trainable)
    assert api_client.post(url, {"count": 5}, format="json").json() == {"sent": 3, "added": 3, "moved_up": 0}


def test_annotators_cannot_send_and_bad_counts_are_refused(api_client, served):
    trainable, _, _ = served
    url = f"/api/v1/projects/{trainable.project.pk}/uncertain-images/"
    api_client.force_authenticate(trainable.annotator)
    assert api_client.post(url, {"count": 1}, format="json").status_code == 403
    api_client.force_authenticate(trainable.reviewer)
    assert api_client.post(url, {"count": 0}, format="json").status_code == 400
    assert api_client.post(url, {"by": "vibes"}, format="json").status_code == 400


def test_a_kept_upload_is_stored_by_the_log_writer_after_the_answer(api_client, served, settings, log_written_here):
    logbook = log_written_here  # the test plays the writer: flush()
    trainable, _, _ = served
    settings.QUORUM_SERVING_KEEP_BELOW = 1.0
    settings.QUORUM_PREDICTION_LOG_DEFERRED = True
    as_camera(api_client, trainable)
    data = scene_jpeg(trainable)
    response = post_image(api_client, data, project=trainable.project.pk)
    assert response.status_code == 200
    folder = f"served/{trainable.project.pk}"
    assert not [name for name in media_files() if name.startswith(f"{folder}/")]  # not before the answer

    assert logbook.flush() == 1

    row = PredictionLog.objects.get(request_id=response.json()["request_id"])
    with default_storage.open(row.kept_file, "rb") as kept:
        assert kept.read() == data
