"""POST /api/v1/predict/: a round trip by file and by image id, boxes in the upright image's
pixels, the one preprocessing path, API clients and their scopes, the rate limit, and the
log of every answer."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from datasets.imaging import decode_upright_rgb
from serving.cache import detector_for
from serving.models import PredictionLog
from serving.services import api_client_create
from tests.tiny_model import IMGSZ

pytestmark = pytest.mark.django_db

LOW_CONF = 0.01  # a one-epoch model is unsure of everything; this keeps some boxes to compare


def scene_jpeg(trainable) -> bytes:
    image = trainable.project.images.order_by("pk").first()
    with default_storage.open(image.file.name, "rb") as stored:
        return stored.read()


def post_image(client, data: bytes, name: str = "street.jpg", **fields):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/api/v1/predict/", {"image": upload, "conf": LOW_CONF, **fields}, format="multipart")


def test_a_reviewer_gets_the_champions_boxes_for_an_upload(api_client, served):
    trainable, champion, _ = served
    api_client.force_authenticate(trainable.reviewer)
    data = scene_jpeg(trainable)

    response = post_image(api_client, data, project=trainable.project.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    # the runtime says what answered: ONNX Runtime on the CPU here (CUDA with onnxruntime-gpu and a GPU)
    assert body["model"] == {"id": champion.pk, "number": 1, "project": trainable.project.pk,
                             "architecture": "yolo26n.yaml", "imgsz": IMGSZ,
                             "runtime": "onnxruntime CPUExecutionProvider"}  # fmt: skip
    assert body["chosen_by"] == "champion" and body["rule"] is None and body["latency_ms"] > 0
    width, height = PILImage.open(io.BytesIO(data)).size
    assert body["image"] == {"width": width, "height": height}
    expected = detector_for(champion).predict(np.asarray(decode_upright_rgb(io.BytesIO(data), max_pixels=10**8).image),
                                              conf=LOW_CONF)  # fmt: skip
    assert len(body["boxes"]) == len(expected) > 0
    got = np.array([[b["x1"], b["y1"], b["x2"], b["y2"], b["score"]] for b in body["boxes"]])
    np.testing.assert_allclose(got, expected[:, :5], atol=0.01)
    assert {b["label"] for b in body["boxes"]} == {"pedestrian"}
    (row,) = PredictionLog.objects.all()
    assert (row.status, row.model, row.user, row.boxes, row.width, row.height) == (
        200, champion, trainable.reviewer, len(expected), width, height
    )  # fmt: skip
    assert row.latency_ms > 0 and 0 < row.brightness < 255 and row.contrast > 0
    assert row.min_confidence == pytest.approx(expected[:, 4].min(), abs=1e-6)


def test_a_stored_image_by_id_and_an_explicit_model(api_client, served):
    trainable, _, candidate = served
    image = trainable.project.images.order_by("pk").first()
    api_client.force_authenticate(trainable.admin)
    response = api_client.post(
        "/api/v1/predict/", {"image_id": image.pk, "model": candidate.pk, "conf": LOW_CONF}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"]["id"] == candidate.pk and body["chosen_by"] == "request"
    assert body["image"] == {"width": image.width, "height": image.height}
    assert PredictionLog.objects.get().image == image


def test_boxes_of_an_exif_rotated_upload_are_in_the_upright_images_pixels(api_client, served_detector):
    trainable, champion = served_detector
    # given the scene stored sideways (pixels turned a quarter) with EXIF orientation 6
    upright = PILImage.open(io.BytesIO(scene_jpeg(trainable)))
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the stored pixels are the view turned counter-clockwise
    sideways = io.BytesIO()
    upright.transpose(PILImage.Transpose.ROTATE_90).save(sideways, format="JPEG", quality=98, exif=exif.tobytes())
    api_client.force_authenticate(trainable.reviewer)

    body = post_image(api_client, sideways.getvalue(), project=trainable.project.pk).json()

    # then the answer describes the upright image, as the EXIF tag says it is viewed
    assert body["image"] == {"width": upright.width, "height": upright.height}
    boxes = np.array([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in body["boxes"]]).reshape(-1, 4)
    assert (boxes[:, [0, 2]] <= upright.width + 0.01).all() and (boxes[:, [1, 3]] <= upright.height + 0.01).all()
    # and equals what the model sees of the upright picture (up to JPEG noise: same boxes, close scores)
    direct = detector_for(champion).predict(np.asarray(upright.convert("RGB")), conf=LOW_CONF)
    # the boxes the model is sure of (it starts from the starter checkpoint: it finds
    # pedestrians), each found again in the answer; there must be some to compare. The upload
    # went through a second JPEG encoding, so a box moves by a pixel or two (IoU about 0.8 on
    # a small figure); in the sideways frame the same box would overlap nothing.
    strong = direct[direct[:, 4] > 0.25]
    assert len(strong) >= 1, direct[:10, 4]
    for box in strong[:, :4]:
        overlap = _iou(box, boxes)
        assert overlap.max() > 0.7, overlap.max()


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def test_serving_sees_an_image_exactly_as_ultralytics_and_the_evaluation_do(served, tiny_onnx):
    from ultralytics import YOLO

    from training.evaluation import detections_predict

    trainable, champion, _ = served
    image = trainable.project.images.order_by("pk").first()
    with default_storage.open(image.file.name, "rb") as stored:
        rgb = np.asarray(decode_upright_rgb(stored, max_pixels=10**8).image)
    ours = detector_for(champion).predict(rgb, conf=LOW_CONF)
    # ultralytics' own predictor on the same ONNX file (it takes BGR arrays)
    (theirs,) = YOLO(str(tiny_onnx), task="detect").predict(rgb[:, :, ::-1], imgsz=IMGSZ, conf=LOW_CONF, verbose=False)
    theirs = np.hstack([theirs.boxes.xyxy.numpy(), theirs.boxes.conf.numpy()[:, None]])
    assert len(ours) > 0
    np.testing.assert_allclose(canonical(ours[:, :5]), canonical(theirs), atol=1e-3)
    # the evaluation's predictions of the stored image are the served ones
    (evaluated,) = detections_predict(onnx=tiny_onnx, image_ids=[image.pk], imgsz=IMGSZ)
    np.testing.assert_allclose(canonical(evaluated[evaluated[:, 4] >= LOW_CONF]), canonical(ours[:, :5]), atol=1e-6)


def canonical(rows: np.ndarray) -> np.ndarray:
    """Rows in one order whatever the order of equal scores: by score (to 1e-4), then x1, y1."""
    rows = np.asarray(rows, dtype=float).reshape(-1, 5)
    return rows[np.lexsort((rows[:, 1].round(1), rows[:, 0].round(1), -rows[:, 4].round(4)))]


# --- API clients ------------------------------------------------------------------------------


def test_an_api_client_predicts_within_its_projects_and_models(api_client, served):
    trainable, champion, candidate = served
    client, token = api_client_create(name="car", projects=[trainable.project], user=None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # one project: no need to name it
    response = post_image(api_client, scene_jpeg(trainable))
    assert response.status_code == 200 and response.json()["model"]["id"] == champion.pk
    assert PredictionLog.objects.get().client == client

    client.allowed_models.set([champion])
    refused = post_image(api_client, scene_jpeg(trainable), model=candidate.pk)
    assert refused.status_code == 403 and "may not use model 2" in refused.json()["error"]["message"]

    api_client.credentials(HTTP_AUTHORIZATION="Bearer qk_not-a-token")
    assert post_image(api_client, scene_jpeg(trainable)).status_code == 401


def test_a_client_without_the_project_gets_404(api_client, served):
    trainable, champion, _ = served
    _, token = api_client_create(name="elsewhere", projects=[], user=None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    image = trainable.project.images.first()
    assert api_client.post("/api/v1/predict/", {"image_id": image.pk}, format="json").status_code == 404
    assert post_image(api_client, scene_jpeg(trainable), model=champion.pk).status_code == 404
    assert not PredictionLog.objects.filter(status=200).exists()


def test_the_rate_limit_answers_429(api_client, served):
    trainable, _, _ = served
    _, token = api_client_create(name="burst", projects=[trainable.project], user=None, rate_limit_per_minute=2)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    image = trainable.project.images.first()
    statuses = [api_client.post("/api/v1/predict/", {"image_id": image.pk}, format="json").status_code
                for _ in range(3)]  # fmt: skip
    assert statuses == [200, 200, 429]
    assert PredictionLog.objects.filter(status=200).count() == 2
    assert PredictionLog.objects.filter(status=429).count() == 1


def test_annotators_may_not_predict(api_client, served):
    trainable, _, _ = served
    api_client.force_authenticate(trainable.annotator)
    response = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk)
    assert response.status_code == 403
    assert not PredictionLog.objects.filter(status=200).exists()


def test_a_model_without_an_onnx_export_answers_by_its_pytorch_weights(api_client, served, tiny_onnx):
    from django.core.files.base import ContentFile

    from serving.cache import detector_for
    from training.runtime import TorchDetector, file_sha256

    trainable, _, candidate = served
    weights = tiny_onnx.with_suffix(".pt")
    candidate.weights = default_storage.save("models/fallback.pt", ContentFile(weights.read_bytes()))
    candidate.weights_sha256, candidate.onnx, candidate.onnx_sha256 = file_sha256(weights), "", ""
    candidate.save()
    assert isinstance(detector_for(candidate), TorchDetector)
    api_client.force_authenticate(trainable.reviewer)
    response = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk, model=candidate.pk)
    assert response.status_code == 200 and response.json()["boxes"]


def test_a_model_file_that_does_not_match_its_sha256_is_never_loaded(api_client, served):
    from serving.cache import cache_clear

    trainable, champion, _ = served
    cache_clear()
    champion.onnx_sha256 = "f" * 64
    champion.save(update_fields=["onnx_sha256"])
    api_client.force_authenticate(trainable.reviewer)
    response = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk)
    assert response.status_code == 503 and "failed its integrity check" in response.json()["error"]["message"]
    assert not PredictionLog.objects.filter(status=200).exists()


def test_an_admin_makes_a_client_in_django_admin_and_sees_its_token_once(client, served):
    from django.contrib.messages import get_messages

    from serving.models import ApiClient
    from tests.factories import UserFactory

    trainable, _, _ = served
    client.force_login(UserFactory(username="root-admin", is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/serving/apiclient/add/",
        {"name": "dashcam", "projects": [trainable.project.pk], "rate_limit_per_minute": 60, "is_active": "on"},
    )
    assert response.status_code == 302, response.content[:2000]
    (message,) = [str(m) for m in get_messages(response.wsgi_request) if str(m).startswith("The token of dashcam")]
    token = message.rsplit(": ", 1)[1]
    made = ApiClient.objects.get(name="dashcam")
    assert token.startswith("qk_") and made.token_prefix == token[:10] and token not in made.token_sha256
    from serving.services import api_client_scope_for_token

    assert api_client_scope_for_token(token).client == made


def test_an_admin_replaces_a_clients_token_and_the_old_one_stops_at_once(client, api_client, served):
    from django.contrib.messages import get_messages

    from tests.factories import UserFactory

    trainable, _, _ = served
    camera, old = api_client_create(name="gate cam", projects=[trainable.project], user=None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {old}")
    stored = trainable.project.images.order_by("pk").first()
    assert api_client.post("/api/v1/predict/", {"image_id": stored.pk}, format="json").status_code == 200

    client.force_login(UserFactory(username="root-rotate", is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/serving/apiclient/", {"action": "rotate_tokens", "_selected_action": [camera.pk]}, follow=True
    )
    assert response.status_code == 200
    (message,) = [str(m) for m in get_messages(response.wsgi_request) if "The new token of gate cam" in str(m)]
    new = message.rsplit(": ", 1)[1]
    assert new.startswith("qk_") and new != old

    assert api_client.post("/api/v1/predict/", {"image_id": stored.pk}, format="json").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert api_client.post("/api/v1/predict/", {"image_id": stored.pk}, format="json").status_code == 200
