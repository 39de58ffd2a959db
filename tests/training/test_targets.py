"""Deployment targets: their rules, the API, the promotion gate, and real builds of a model
on them (the artifact, accuracy at the camera's resolution, latency, size, the manifest)."""

import hashlib

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from serving.cache import cache_clear
from tests.serving.conftest import register_model
from tests.storage import served
from tests.training.conftest import make_model, trainable_project
from training.evaluation import detections_predict, model_evaluate, split_images
from training.models import DeploymentTarget, ModelStage, TargetBuild
from training.runner import verified_onnx_path
from training.target_builds import camera_view, target_build_execute
from training.targets import latest_builds, target_builds_request, target_gate, target_settings

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "dashcam", "camera_width": 320, "camera_height": 180, "input_size": 320, "threads": 1,
    "precision": "int8", "latency_budget_ms": 50, "size_budget_mb": 5, "is_required": True,
}  # fmt: skip


@pytest.fixture
def admin_api(api_client, trainable):
    api_client.force_authenticate(trainable.admin)
    return api_client


def targets_url(project) -> str:
    return reverse("api-deployment-targets", kwargs={"project_id": project.pk})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_size", 100),
        ("input_size", 0),
        ("threads", 0),
        ("latency_budget_ms", -5),
        ("size_budget_mb", 0),
        ("precision", "fp16"),
        ("camera_width", 16),
        ("camera_height", 31),
        ("name", "  "),
        ("input_size", "big"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(admin_api, trainable, field, value):
    response = admin_api.post(targets_url(trainable.project), {**GOOD, field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not DeploymentTarget.objects.exists()


def test_a_target_without_its_budgets_is_refused(admin_api, trainable):
    body = {key: value for key, value in GOOD.items() if key != "size_budget_mb"}
    response = admin_api.post(targets_url(trainable.project), body, format="json")
    assert response.status_code == 400
    assert "size_budget_mb" in response.json()["error"]["fields"]
    assert not DeploymentTarget.objects.exists()


def test_targets_are_created_listed_changed_and_deleted(admin_api, trainable):
    created = admin_api.post(targets_url(trainable.project), GOOD, format="json")
    assert created.status_code == 201, created.content
    target_id = created.json()["id"]
    assert [t["name"] for t in admin_api.get(targets_url(trainable.project)).json()] == ["dashcam"]
    again = admin_api.post(targets_url(trainable.project), GOOD, format="json")
    assert again.status_code == 400 and "name" in again.json()["error"]["fields"]
    url = reverse("api-deployment-target", kwargs={"target_id": target_id})
    changed = admin_api.patch(url, {"input_size": 416, "precision": "fp32"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["input_size"], changed.json()["precision"]) == (416, "fp32")
    refused = admin_api.patch(url, {"input_size": 417}, format="json")
    assert refused.status_code == 400 and "input_size" in refused.json()["error"]["fields"]
    assert DeploymentTarget.objects.get().input_size == 416
    assert admin_api.delete(url).status_code == 204
    assert not DeploymentTarget.objects.exists()


def test_a_reviewer_reads_targets_but_may_not_add_one(api_client, trainable):
    api_client.force_authenticate(trainable.reviewer)
    assert api_client.get(targets_url(trainable.project)).status_code == 200
    assert api_client.post(targets_url(trainable.project), GOOD, format="json").status_code == 403
    assert not DeploymentTarget.objects.exists()


def _done_build(model, target, *, passed: bool, reasons=()) -> TargetBuild:
    (build,) = target_builds_request(model=model, targets=[target])
    build.state, build.passed, build.reasons = TargetBuild.State.DONE, passed, list(reasons)
    build.save()
    return build


def test_a_required_target_a_model_fails_blocks_its_promotion_with_409(api_client, trainable):
    target = DeploymentTarget.objects.create(project=trainable.project, **GOOD)
    model = make_model(trainable, ap50=0.6)
    _done_build(model, target, passed=False, reasons=["p95 latency 80.0 ms is over the budget of 50 ms"])
    api_client.force_authenticate(trainable.reviewer)
    url = reverse("api-model-promote", kwargs={"model_id": model.pk})
    refused = api_client.post(url, {}, format="json")
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert "dashcam" in message and "p95 latency 80.0 ms" in message
    model.refresh_from_db()
    assert model.stage == ModelStage.CANDIDATE
    # an override with a written reason promotes anyway, as for any refusal
    accepted = api_client.post(url, {"override_reason": "the camera gets a faster board next week"}, format="json")
    assert accepted.status_code == 200


def test_a_changed_budget_judges_builds_again_and_a_changed_camera_needs_new_ones(admin_api, trainable):
    target = DeploymentTarget.objects.create(project=trainable.project, **GOOD)
    model = make_model(trainable, ap50=0.6)
    build = _done_build(model, target, passed=False, reasons=["p95 latency 80.0 ms is over the budget of 50 ms"])
    TargetBuild.objects.filter(pk=build.pk).update(latency_p95_ms=80.0, size_bytes=3_000_000)
    url = reverse("api-deployment-target", kwargs={"target_id": target.pk})
    # a looser latency budget: the same measures now pass, and the gate opens
    assert admin_api.patch(url, {"latency_budget_ms": 100}, format="json").status_code == 200
    build.refresh_from_db()
    assert build.passed is True and build.reasons == [] and build.settings["latency_budget_ms"] == 100
    assert target_gate(model=model) == (None, [])
    # a tighter size budget: it fails again, with the size as the reason
    assert admin_api.patch(url, {"size_budget_mb": 2}, format="json").status_code == 200
    build.refresh_from_db()
    assert build.passed is False and build.reasons == ["size 3.00 MB is over the budget of 2 MB"]
    # another camera: what was measured no longer counts; the model is unmeasured there
    assert admin_api.patch(url, {"camera_width": 640, "camera_height": 360}, format="json").status_code == 200
    assert latest_builds(model=model) == {}
    reason, unmeasured = target_gate(model=model)
    assert unmeasured == [target.pk] and "not yet measured on required target 'dashcam'" in reason
    (rebuilt,) = target_builds_request(model=model, only_unmeasured=True)
    assert rebuilt.settings["camera_width"] == 640


def test_a_passed_required_target_lets_the_model_through(api_client, trainable):
    target = DeploymentTarget.objects.create(project=trainable.project, **GOOD)
    model = make_model(trainable, ap50=0.6)
    _done_build(model, target, passed=True)
    api_client.force_authenticate(trainable.reviewer)
    response = api_client.post(reverse("api-model-promote", kwargs={"model_id": model.pk}), {}, format="json")
    assert response.status_code == 200, response.content


def test_an_unmeasured_required_target_blocks_and_starts_a_build(
    api_client, trainable, django_capture_on_commit_callbacks
):
    DeploymentTarget.objects.create(project=trainable.project, **GOOD)
    optional = DeploymentTarget.objects.create(
        project=trainable.project, **{**GOOD, "name": "lab", "is_required": False}
    )
    model = make_model(trainable, ap50=0.6)
    api_client.force_authenticate(trainable.reviewer)
    with django_capture_on_commit_callbacks():
        response = api_client.post(reverse("api-model-promote", kwargs={"model_id": model.pk}), {}, format="json")
    assert response.status_code == 409
    assert "not yet measured on required target 'dashcam'" in response.json()["error"]["message"]
    assert {b.target.name for b in TargetBuild.objects.filter(model=model)} == {"dashcam", optional.name}


# --- real builds ------------------------------------------------------------------------


@pytest.fixture
def detector_project(db, starter_onnx, settings, tmp_path):
    """A project of 160x128 scenes with small pedestrians, and a model that finds them."""
    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    cache_clear()
    trainable = trainable_project(images=30, name="Targets")
    yield trainable, register_model(trainable, starter_onnx, stage=ModelStage.CANDIDATE)
    cache_clear()


def _build(model, **fields) -> TargetBuild:
    spec = {**GOOD, "name": fields.pop("name", "t"), "is_required": False, **fields}
    target = DeploymentTarget.objects.create(project=model.project, **spec)
    (build,) = target_builds_request(model=model, targets=[target])
    target_build_execute(build_id=build.pk)
    build.refresh_from_db()
    assert build.state == TargetBuild.State.DONE, build.error
    return build


def _recall(build) -> float:
    return build.evaluation["human"]["model_mean"]["recall_at_precision"]


def test_int8_is_smaller_than_fp32_and_both_are_scored(detector_project):
    _, model = detector_project
    camera = {"camera_width": 160, "camera_height": 128, "input_size": 160}
    fp32 = _build(model, name="fp32", precision="fp32", **camera)
    int8 = _build(model, name="int8", precision="int8", **camera)
    assert int8.size_bytes < fp32.size_bytes
    assert int8.artifact_sha256 != fp32.artifact_sha256 == model.onnx_sha256
    assert int8.calibration_images > 0
    for build in (fp32, int8):
        assert build.evaluation["coco"]["ap50"] is not None
        assert build.latency_p50_ms > 0 and build.latency_p95_ms >= build.latency_p50_ms
    assert fp32.evaluation["coco"]["ap50"] > 0.05


def test_int8_is_calibrated_on_train_images_only_and_on_at_least_100(detector_project, monkeypatch, settings):
    _, model = detector_project
    settings.QUORUM_TARGET_CALIBRATION_IMAGES = 5  # set too low: the floor of 100 holds
    from training import target_builds

    seen = []
    real = target_builds._camera_images

    def spy(image_ids, camera):
        seen.append(list(image_ids))
        return real(image_ids, camera)

    monkeypatch.setattr(target_builds, "_camera_images", spy)
    _build(model, precision="int8", camera_width=160, camera_height=128, input_size=160)
    train = set(split_images(version=model.snapshot.consensus_version, split="train"))
    assert seen[0] and set(seen[0]) <= train
    assert len(seen[0]) == min(100, len(train)) > 5  # every train image this small project has


def test_a_camera_at_a_quarter_of_the_resolution_lowers_recall(detector_project):
    _, model = detector_project
    full = _build(model, name="full", precision="fp32", camera_width=160, camera_height=128, input_size=160)
    quarter = _build(model, name="quarter", precision="fp32", camera_width=40, camera_height=32, input_size=160)
    assert _recall(quarter) < _recall(full)
    assert quarter.evaluation["coco"]["ap50"] < full.evaluation["coco"]["ap50"]


def test_impossible_budgets_fail_with_their_reasons(detector_project):
    _, model = detector_project
    build = _build(
        model, precision="fp32", camera_width=160, camera_height=128, input_size=160,
        latency_budget_ms=0.001, size_budget_mb=0.001,
    )  # fmt: skip
    assert build.passed is False
    assert any(reason.startswith("p95 latency") and "0.001 ms" in reason for reason in build.reasons)
    assert any(reason.startswith("size") and "0.001 MB" in reason for reason in build.reasons)


def test_the_manifest_threshold_is_the_model_page_operating_point(detector_project, api_client, tmp_path):
    trainable, model = detector_project
    # the model page's evaluation, as the runner makes it
    val_ids = split_images(version=model.consensus_version, split="val")
    detections = detections_predict(onnx=verified_onnx_path(model, tmp_path), image_ids=val_ids, imgsz=model.imgsz)
    page = model_evaluate(version=model.consensus_version, image_ids=val_ids, detections=detections, bootstrap=200)
    build = _build(model, precision="fp32", camera_width=160, camera_height=128, input_size=model.imgsz)
    api_client.force_authenticate(trainable.reviewer)
    manifest = api_client.get(reverse("api-target-manifest", kwargs={"build_id": build.pk})).json()
    assert manifest["score_threshold"] == pytest.approx(page["operating_score"])
    assert manifest["artifact"]["sha256"] == model.onnx_sha256
    assert manifest["input"]["size"] == model.imgsz
    # the artifact: the bytes (from the bucket, through a presigned URL, when media is on S3)
    status, headers, body = served(api_client.get(reverse("api-target-artifact", kwargs={"build_id": build.pk})))
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == manifest["artifact"]["sha256"]
    assert headers["Content-Disposition"] == f'attachment; filename="{manifest["artifact"]["file"]}"'


def test_camera_view_fits_the_frame_and_never_enlarges():
    rgb = np.zeros((720, 1280, 3), dtype=np.uint8)
    seen, scale = camera_view(rgb, (320, 180))
    assert seen.shape == (180, 320, 3) and scale == pytest.approx(0.25)
    same, one = camera_view(rgb, (1920, 1080))
    assert same is rgb and one == 1.0
    portrait, _ = camera_view(rgb, (320, 320))
    assert portrait.shape == (180, 320, 3)


def test_target_settings_are_kept_with_the_build(trainable):
    target = DeploymentTarget.objects.create(project=trainable.project, **GOOD)
    model = make_model(trainable, ap50=0.5)
    (build,) = target_builds_request(model=model, targets=[target])
    target.input_size = 640
    target.save()
    build.refresh_from_db()
    assert build.settings == {**target_settings(target), "input_size": 320}


def test_the_page_adds_a_target_and_refuses_bad_input_naming_the_field(client, trainable):
    client.force_login(trainable.admin)
    url = reverse("project-deployment-targets", kwargs={"project_id": trainable.project.pk})
    form = {**GOOD, "is_required": "on"}
    bad = client.post(url, {**form, "input_size": "300"})
    assert bad.status_code == 400
    assert b'data-field="input_size"' in bad.content and not DeploymentTarget.objects.exists()
    assert client.post(url, form).status_code == 302
    target = DeploymentTarget.objects.get()
    assert (target.name, target.input_size, target.precision, target.is_required) == ("dashcam", 320, "int8", True)


def test_the_pages_show_a_model_s_builds(client, trainable):
    target = DeploymentTarget.objects.create(project=trainable.project, **GOOD)
    model = make_model(trainable, ap50=0.6)
    build = _done_build(model, target, passed=False, reasons=["size 12.00 MB is over the budget of 5 MB"])
    build.evaluation = {"coco": {"ap50": 0.41}, "mr2": 0.5, "human": None}
    build.save()
    client.force_login(trainable.reviewer)
    for url in (
        reverse("project-deployment-targets", kwargs={"project_id": trainable.project.pk}),
        reverse("model", kwargs={"model_id": model.pk}),
    ):
        page = client.get(url)
        assert page.status_code == 200
        text = page.content.decode()
        assert f'data-build="{build.pk}"' in text and "size 12.00 MB is over the budget of 5 MB" in text
        assert "0.410" in text
    # a reviewer sees no form to add a target, and may not post one
    page = client.get(reverse("project-deployment-targets", kwargs={"project_id": trainable.project.pk}))
    assert b'id="add-target"' not in page.content


def test_a_routing_rule_serves_the_target_s_artifact_and_the_log_records_it(detector_project, api_client, settings):
    from serving.models import PredictionLog, RoutingRule
    from serving.services import api_client_create
    from tests.serving.test_predict import post_image

    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    trainable, model = detector_project
    model.stage = ModelStage.CHAMPION
    model.save(update_fields=["stage"])
    build = _build(model, name="gate", precision="int8", camera_width=160, camera_height=128, input_size=160)
    gate, gate_token = api_client_create(name="gate camera", projects=[trainable.project], user=None)
    _, other_token = api_client_create(name="street camera", projects=[trainable.project], user=None)
    RoutingRule.objects.create(project=trainable.project, name="gate gets int8", client=gate, target=build.target)
    jpeg = val_jpeg(trainable)
    cache_clear()
    for token in (gate_token, other_token):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = post_image(api_client, jpeg, project=trainable.project.pk)
        assert response.status_code == 200, response.content
        body = response.json()
        if token == gate_token:
            assert body["artifact"] == {
                "sha256": build.artifact_sha256, "target": "gate", "build": build.pk, "precision": "int8",
                "input_size": 160,
            }  # fmt: skip
        else:
            assert body["artifact"]["target"] is None and body["artifact"]["sha256"] == model.onnx_sha256
    logs = {row.client.name: row for row in PredictionLog.objects.select_related("client")}
    assert logs["gate camera"].target_build_id == build.pk
    assert logs["gate camera"].artifact_sha256 == build.artifact_sha256
    assert logs["street camera"].target_build_id is None
    assert logs["street camera"].artifact_sha256 == model.onnx_sha256


def val_jpeg(trainable) -> bytes:
    """The bytes of one stored val image of the project."""
    image = trainable.project.images.filter(split="val").order_by("pk").first()
    with default_storage.open(image.file.name, "rb") as stored:
        return stored.read()
