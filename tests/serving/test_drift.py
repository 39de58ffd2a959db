"""Drift and monitoring: a window of low-resolution or darkened inputs raises the alert, a
window like the training data does not; the metrics API counts what the log holds."""

import io
import re
from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage

from serving.drift import drift_report_compute, drift_reports_compute, psi
from serving.models import DriftReport, PredictionLog
from tests.serving.conftest import as_camera, as_reviewer, register_model
from tests.serving.test_predict import post_image
from tests.training.conftest import trainable_project
from training.evaluation import detections_predict, split_images
from training.models import DeploymentTarget, ModelStage
from training.profile import reference_profile_build

pytestmark = pytest.mark.django_db


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    reference = rng.normal(100, 10, 2000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-9)
    assert psi(reference, rng.normal(100, 10, 500)) < 0.1
    assert psi(reference, rng.normal(130, 10, 500)) > 1.0
    # by hand: two bins at the median, half and half against 90% and 10%
    two = np.r_[np.zeros(50), np.ones(50)]
    window = np.r_[np.zeros(90), np.ones(10)]
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi(two, window) == pytest.approx(expected)


@pytest.fixture
def profiled(db, tiny_onnx, settings, tmp_path):
    """A 40-image project whose champion has the reference profile a real run would give it."""
    from serving.cache import cache_clear

    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    settings.QUORUM_DRIFT_MIN_PREDICTIONS = 30
    cache_clear()
    trainable = trainable_project(images=40, name="Drift")
    model = register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
    val = split_images(version=trainable.version, split="val")
    detections = detections_predict(onnx=tiny_onnx, image_ids=val, imgsz=model.imgsz)
    model.reference_profile = reference_profile_build(version=trainable.version, val_detections=detections)
    model.save(update_fields=["reference_profile"])
    yield trainable, model
    cache_clear()


def train_images(trainable) -> list[PILImage.Image]:
    images = []
    for image in trainable.project.images.filter(split="train").order_by("pk"):
        with default_storage.open(image.file.name, "rb") as stored:
            images.append(PILImage.open(io.BytesIO(stored.read())).convert("RGB"))
    return images


def serve(api_client, trainable, pictures) -> None:
    """`pictures` predicted for a camera (an API client), then the reviewer is back."""
    as_camera(api_client, trainable)
    for picture in pictures:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=92)
        assert post_image(api_client, buffer.getvalue(), project=trainable.project.pk).status_code == 200
    as_reviewer(api_client, trainable)


def test_a_window_like_the_training_data_raises_no_alert(api_client, profiled):
    trainable, model = profiled
    pictures = train_images(trainable)
    assert len(pictures) >= 30
    serve(api_client, trainable, pictures)
    report = drift_report_compute(model=model)
    assert report.predictions == len(pictures) and report.alerts == []
    assert set(report.psi) >= {"width", "height", "brightness", "contrast"}
    assert max(report.psi[name] for name in ("width", "height", "brightness", "contrast")) < 0.1


def test_a_low_resolution_camera_raises_the_resolution_alert(api_client, profiled):
    trainable, model = profiled
    pictures = [picture.resize((picture.width // 3, picture.height // 3)) for picture in train_images(trainable)]
    serve(api_client, trainable, pictures)
    report = drift_report_compute(model=model)
    codes = [alert["code"] for alert in report.alerts]
    assert codes[0] == "resolution_mismatch"
    message = report.alerts[0]["message"]
    assert "trained on images of about 160x128 px" in message and "sends images of about 53x42 px" in message
    assert "100% of its answers are under half the training pixels, typically 53x42" in message
    assert report.psi["width"] > 0.25 and report.psi["height"] > 0.25
    # the banner of the project's pages shows it to reviewers, and not to annotators
    page = Client()
    page.force_login(trainable.reviewer)
    for url in (f"/projects/{trainable.project.pk}/", f"/projects/{trainable.project.pk}/monitoring/"):
        assert "Resolution mismatch: model 1" in page.get(url).content.decode()
    page.force_login(trainable.annotator)
    assert "Resolution mismatch" not in page.get(f"/projects/{trainable.project.pk}/").content.decode()
    # a report older than the drift window (a model no longer served gets no new one) leaves the banner
    page.force_login(trainable.reviewer)
    older = timezone.now() - timedelta(hours=settings.QUORUM_DRIFT_WINDOW_HOURS, minutes=1)
    DriftReport.objects.filter(pk=report.pk).update(created_at=older)
    assert "Resolution mismatch" not in page.get(f"/projects/{trainable.project.pk}/").content.decode()


def test_darkened_inputs_raise_a_brightness_alert(api_client, profiled):
    trainable, model = profiled
    pictures = [PILImage.eval(picture, lambda v: v // 4) for picture in train_images(trainable)]
    serve(api_client, trainable, pictures)
    (report,) = drift_reports_compute()  # the hourly task's service
    assert report.model == model
    features = {alert["feature"] for alert in report.alerts}
    assert "brightness" in features and "resolution" not in features
    assert DriftReport.objects.count() == 1


def test_too_few_answers_make_no_report(api_client, profiled):
    trainable, model = profiled
    serve(api_client, trainable, train_images(trainable)[:5])
    assert drift_report_compute(model=model) is None


def test_the_metrics_api_counts_answers_errors_and_latency(api_client, profiled):
    trainable, model = profiled
    serve(api_client, trainable, train_images(trainable)[:4])
    assert post_image(api_client, b"not an image", project=trainable.project.pk).status_code == 415
    response = api_client.get(f"/api/v1/serving/metrics/?project={trainable.project.pk}&minutes=15")
    assert response.status_code == 200
    metrics = response.json()
    assert metrics["total"]["requests"] == 5 and metrics["total"]["errors"] == 1
    assert metrics["total"]["error_rate"] == pytest.approx(0.2)
    latencies = sorted(PredictionLog.objects.filter(status=200).values_list("latency_ms", flat=True))
    assert metrics["total"]["p50_ms"] == pytest.approx(np.percentile(latencies, 50))
    assert metrics["models"][f"model {model.number}"]["requests"] == 4
    assert sum(minute["requests"] for minute in metrics["series"]) == 5 and len(metrics["series"]) == 15
    assert api_client.get("/api/v1/serving/metrics/?minutes=15").status_code == 400
    # refusals before any project was named count only for the project's own clients
    from serving.services import api_client_create

    mine, _ = api_client_create(name="mine", projects=[trainable.project], user=None)
    elsewhere, _ = api_client_create(name="elsewhere", projects=[], user=None)
    for client in (mine, elsewhere, elsewhere):
        PredictionLog.objects.create(client=client, status=415, error="not_an_image", created_at=timezone.now())
    metrics = api_client.get(f"/api/v1/serving/metrics/?project={trainable.project.pk}&minutes=15").json()
    assert metrics["refused_before_a_project"] == 1
    api_client.force_authenticate(trainable.annotator)
    assert api_client.get(f"/api/v1/serving/metrics/?project={trainable.project.pk}").status_code == 403


def test_pages_for_reviewers_only(client, profiled):
    trainable, _ = profiled
    client.force_login(trainable.reviewer)
    for url in (f"/projects/{trainable.project.pk}/monitoring/", f"/projects/{trainable.project.pk}/try/"):
        assert client.get(url).status_code == 200
    assert client.get("/serving/samples/bus.jpg").status_code == 200
    assert client.get("/serving/samples/..%2Fsettings.py").status_code == 404
    client.force_login(trainable.annotator)
    assert client.get(f"/projects/{trainable.project.pk}/monitoring/").status_code == 403


def test_one_low_resolution_camera_among_hd_ones_is_named(api_client, profiled):
    trainable, model = profiled
    DeploymentTarget.objects.create(
        project=trainable.project, name="gate", camera_width=53, camera_height=42, input_size=160, threads=1,
        precision="int8", latency_budget_ms=50, size_budget_mb=5,
    )  # fmt: skip
    pictures = train_images(trainable)
    serve(api_client, trainable, pictures)  # an HD camera
    serve(api_client, trainable, pictures)  # another
    serve(api_client, trainable, [p.resize((p.width // 3, p.height // 3)) for p in pictures])  # the low one
    serve(api_client, trainable, pictures[:5])  # a camera with too few answers of its own
    report = drift_report_compute(model=model)
    low = PredictionLog.objects.filter(width=53).values_list("client__name", flat=True).first()
    resolution = [alert for alert in report.alerts if alert["code"] == "resolution_mismatch"]
    # the pooled median is HD: only the low camera's own report raises the alarm, naming it
    assert [alert["client"] for alert in resolution] == [low]
    assert resolution[0]["typical_size"] == "53x42" and resolution[0]["share_below_half_pixels"] == 1.0
    assert f"camera {low!r} sends images of about 53x42 px" in resolution[0]["message"]
    assert resolution[0]["target"]["name"] == "gate" and "'gate'" in resolution[0]["message"]
    assert {c["client"]: c["typical_size"] for c in report.clients}[low] == "53x42"
    assert len(report.clients) == 3 and [f["predictions"] for f in report.summary["pooled_only"]] == [5]
    # no message calls equal medians a drift, and the size alert says which sizes are new
    for alert in report.alerts:
        assert not re.search(r"median ([\d.]+) served against \1\b", alert["message"]), alert["message"]
    size = [alert for alert in report.alerts if alert["feature"] == "size"]
    assert size and all("are 53x42; none of the training images are under 80x64" in a["message"] for a in size)
    # the banner names the camera and links its target
    page = Client()
    page.force_login(trainable.reviewer)
    text = page.get(f"/projects/{trainable.project.pk}/monitoring/").content.decode()
    assert f"camera &#x27;{low}&#x27; sends" in text or f"camera '{low}' sends" in text
    assert f"/projects/{trainable.project.pk}/deployment-targets/" in text


def test_size_words_name_new_sizes_or_the_mix_that_moved():
    from serving.drift import _size_words

    profile = {"width": [1280.0] * 50 + [640.0] * 50, "height": [720.0] * 50 + [360.0] * 50}
    low = {"width": np.array([1280.0] * 60 + [320.0] * 40), "height": np.array([720.0] * 60 + [180.0] * 40)}
    message = _size_words(profile, low, 0.9, 0.25)
    assert "40% of served images are 320x180; none of the training images are under 480x270" in message
    # every served size is a training size: the message says whose share moved, not two equal medians
    three = {"width": [1280.0] * 40 + [640.0] * 40 + [960.0] * 20, "height": [720.0] * 40 + [360.0] * 40 + [540.0] * 20}
    mix = {"width": np.array([1280.0] * 90 + [640.0] * 10), "height": np.array([720.0] * 90 + [360.0] * 10)}
    message = _size_words(three, mix, 0.6, 0.25)
    assert "the mix of sizes changed; 1280x720 is 90% of served images against 40% of the training" in message
