"""REST API of training runs, the model registry, deployment targets and data curves.

Roles (DESIGN.md): reviewers and admins read runs and models and promote; admins start
and cancel runs; annotators see none of it (403 in their own project, 404 elsewhere).
"""

import json

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import Conflict, ValidationFailed
from config.media import download_response
from projects.permissions import IsProjectAdmin, IsProjectReviewer, ProjectApiMixin
from training.architectures import architectures
from training.base_weights import base_weights_for, base_weights_upload, may_upload_base_weights
from training.data_curves import DEFAULT_FRACTIONS, data_curve_cancel, data_curve_csv, data_curve_progress
from training.launch import data_curve_start, model_promote, target_builds_start, test_look_start, training_run_start
from training.models import (
    BaseWeights,
    DataCurve,
    DeploymentTarget,
    ModelVersion,
    PromotionDecision,
    TargetBuild,
    TestSetLook,
    TrainingPolicy,
    TrainingRun,
)
from training.selectors import (
    champion_history,
    data_curve_get,
    data_curves,
    deployment_target_get,
    deployment_targets,
    marginal_gain,
    model_target_builds,
    model_version_get,
    model_versions,
    target_build_get,
    training_run_get,
    training_runs,
)
from training.services import (
    BATCH_RANGE,
    EPOCHS_RANGE,
    IMGSZ_RANGE,
    PATIENCE_RANGE,
    SEED_RANGE,
    training_policy_get,
    training_policy_update,
    training_run_cancel,
)
from training.targets import build_manifest, target_create, target_delete, target_update


def _bounded(default: int, bounds: tuple[int, int], **kwargs) -> serializers.IntegerField:
    """An integer setting within `bounds`, refused with the service's own words."""
    low, high = bounds
    message = f"Between {low} and {high}."
    return serializers.IntegerField(
        default=default, min_value=low, max_value=high, error_messages={"min_value": message, "max_value": message},
        **kwargs,
    )  # fmt: skip


class TrainingRunInputSerializer(serializers.Serializer):
    architecture = serializers.CharField(
        default="yolo26n.yaml", max_length=100, help_text="A detection .yaml of ultralytics."
    )
    imgsz = _bounded(640, IMGSZ_RANGE, help_text="Pixels, a multiple of 32.")
    epochs = _bounded(50, EPOCHS_RANGE)
    batch = _bounded(16, BATCH_RANGE)
    patience = _bounded(20, PATIENCE_RANGE)
    seed = _bounded(0, SEED_RANGE)
    init = serializers.ChoiceField(choices=TrainingRun.Init.choices, default=TrainingRun.Init.SCRATCH)
    base_weights = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="With init=base: an id from GET /base-weights/."
    )
    device = serializers.CharField(default="auto", max_length=32)


class BaseWeightsSerializer(serializers.ModelSerializer):
    added_by = serializers.CharField(source="added_by.username", default=None, read_only=True)

    class Meta:
        model = BaseWeights
        fields = [
            "id", "name", "format", "architecture", "classes", "sha256", "size", "source", "is_shared", "added_by",
            "created_at",
        ]  # fmt: skip


class BaseWeightsUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A safetensors state dict (.pt files are never accepted here).")
    name = serializers.CharField(max_length=100)
    architecture = serializers.CharField(max_length=100, help_text="The ultralytics .yaml it belongs to.")
    classes = serializers.CharField(max_length=100_000, help_text="Its class names, comma-separated, in head order.")


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    base_weights_name = serializers.CharField(source="base_weights.name", default=None, read_only=True)
    consensus_version = serializers.IntegerField(source="snapshot.consensus_version.number", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "project", "number", "snapshot", "consensus_version", "architecture", "imgsz", "epochs", "batch",
            "patience", "seed", "init", "parent_model", "base_weights", "base_weights_name", "base_weights_sha256",
            "base_start",
            "device", "trigger", "state", "error", "attempts",
            "cancel_requested_at", "epoch", "eta_seconds", "train_images", "train_seconds", "images_per_second",
            "device_name", "peak_gpu_memory_mb",
            "created_at", "started_at", "finished_at", "model_version",
        ]  # fmt: skip

    def get_model_version(self, run: TrainingRun) -> int | None:
        """Id of the model the run produced, once it succeeded."""
        model = getattr(run, "model_version", None)
        return model.pk if model else None


class TrainingRunDetailSerializer(TrainingRunSerializer):
    marginal_gain = serializers.SerializerMethodField()

    class Meta(TrainingRunSerializer.Meta):
        fields = [
            *TrainingRunSerializer.Meta.fields,
            "history", "log_tail", "ultralytics_metrics", "evaluation", "marginal_gain",
        ]  # fmt: skip

    def get_marginal_gain(self, run: TrainingRun) -> dict | None:
        """Val mAP50 gained per extra training hour over the last quarter of the epochs."""
        return marginal_gain(run.history)


class ModelVersionSerializer(serializers.ModelSerializer):
    test_looks = serializers.IntegerField(source="test_look_count", read_only=True)
    run_number = serializers.IntegerField(source="run.number", read_only=True)
    consensus_version_number = serializers.IntegerField(source="consensus_version.number", read_only=True)
    parent_number = serializers.IntegerField(source="parent.number", read_only=True, default=None)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "project", "number", "run", "run_number", "snapshot", "consensus_version", "consensus_version_number",
            "parent", "parent_number", "architecture", "imgsz", "weights_sha256", "onnx_sha256", "latency_ms", "stage",
            "promoted_by", "promoted_at", "created_at", "test_looks", "evaluation", "test_evaluation",
        ]  # fmt: skip


class PromotionDecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True)
    model_number = serializers.IntegerField(source="model.number", read_only=True)
    previous_champion_number = serializers.IntegerField(source="previous_champion.number", default=None, read_only=True)

    class Meta:
        model = PromotionDecision
        fields = [
            "id", "model", "model_number", "previous_champion", "previous_champion_number", "is_accepted",
            "is_override", "reason", "figures", "decided_by", "decided_at",
        ]  # fmt: skip


class TestSetLookSerializer(serializers.ModelSerializer):
    looked_by = serializers.CharField(source="looked_by.username", default=None, read_only=True)

    class Meta:
        model = TestSetLook
        fields = ["id", "model", "reason", "looked_by", "looked_at", "figures"]


class TrainingPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingPolicy
        fields = ["metric", "margin", "latency_budget_ms", "retrain_min_new_images", "is_retrain_scheduled"]
        extra_kwargs = {"margin": {"min_value": 0.0}, "latency_budget_ms": {"min_value": 0.0}}


class PromoteInputSerializer(serializers.Serializer):
    override_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Promote against the rule, saying why."
    )


class TestLookInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the test split is consulted; logged.")


class ProjectTrainingRunsApi(ProjectApiMixin, APIView):
    """A project's training runs (reviewers); POST starts one (admins)."""

    def get_permissions(self):
        return [IsAuthenticated(), IsProjectAdmin() if self.request.method == "POST" else IsProjectReviewer()]

    @extend_schema(responses=TrainingRunSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(TrainingRunSerializer(training_runs(project=project), many=True).data)

    @extend_schema(request=TrainingRunInputSerializer, responses={202: TrainingRunSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        data = TrainingRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = training_run_start(project=project, user=request.user, **data.validated_data)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunApi(APIView):
    """One run: settings, state, progress epoch by epoch, log tail, evaluation."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=TrainingRunDetailSerializer)
    def get(self, request: Request, run_id: int) -> Response:
        run = training_run_get(run_id=run_id, user=request.user)
        self.check_object_permissions(request, run.project)
        return Response(TrainingRunDetailSerializer(run).data)


class TrainingRunCancelApi(APIView):
    """Cancel a queued or running run (admins); a running one stops within one epoch."""

    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    def post(self, request: Request, run_id: int) -> Response:
        run = training_run_get(run_id=run_id, user=request.user)
        self.check_object_permissions(request, run.project)
        run = training_run_cancel(run=run, user=request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class BaseWeightsListApi(APIView):
    """The base weights the caller may start runs from; POST uploads a safetensors file
    (project admins and staff), checked tensor by tensor against its architecture."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]

    @extend_schema(responses={200: BaseWeightsSerializer(many=True)})
    def get(self, request: Request) -> Response:
        if not may_upload_base_weights(request.user):
            raise PermissionDenied("Base weights are for project admins and staff.")
        return Response(BaseWeightsSerializer(base_weights_for(request.user), many=True).data)

    @extend_schema(request={"multipart/form-data": BaseWeightsUploadSerializer}, responses={201: BaseWeightsSerializer})
    def post(self, request: Request) -> Response:
        if not may_upload_base_weights(request.user):
            raise PermissionDenied("Only project admins and staff add base weights.")
        data = BaseWeightsUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        base = base_weights_upload(
            user=request.user,
            file=upload,
            size=upload.size,
            name=data.validated_data["name"],
            architecture=data.validated_data["architecture"],
            classes=data.validated_data["classes"],
        )
        return Response(BaseWeightsSerializer(base).data, status=status.HTTP_201_CREATED)


class BaseWeightsApi(APIView):
    """One base weights entry; DELETE removes it from the registry (staff)."""

    permission_classes = [IsAuthenticated]

    def _get(self, request: Request, base_id: int) -> BaseWeights:
        if not may_upload_base_weights(request.user):
            raise PermissionDenied("Base weights are for project admins and staff.")
        base = base_weights_for(request.user).filter(pk=base_id).first()
        if base is None:
            raise Http404("No such base weights.")
        return base

    @extend_schema(responses={200: BaseWeightsSerializer})
    def get(self, request: Request, base_id: int) -> Response:
        return Response(BaseWeightsSerializer(self._get(request, base_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, base_id: int) -> Response:
        base = self._get(request, base_id)
        if not request.user.is_staff:
            raise PermissionDenied("Staff manage the base weights registry.")
        base.delete()  # runs keep the name's sha256; the file stays for their record
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArchitecturesApi(APIView):
    """The detection model configs a run may start from."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"architectures": list(architectures()), "default": "yolo26n.yaml"})


class ProjectModelsApi(ProjectApiMixin, APIView):
    """A project's model versions, newest first, and the history of its champions."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(
            {
                "models": ModelVersionSerializer(model_versions(project=project), many=True).data,
                "champions": PromotionDecisionSerializer(champion_history(project=project), many=True).data,
            }
        )


class ModelVersionApi(APIView):
    """One model: weights and ONNX sha256s, evaluation, lineage, stage, test-set looks."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request: Request, model_id: int) -> Response:
        model = model_version_get(model_id=model_id, user=request.user)
        self.check_object_permissions(request, model.project)
        data = ModelVersionSerializer(model).data
        data["decisions"] = PromotionDecisionSerializer(model.decisions.all(), many=True).data
        data["looks"] = TestSetLookSerializer(model.test_looks.all(), many=True).data
        return Response(data)


class ModelPromoteApi(APIView):
    """Make the model the champion (reviewers). 200 with the decision when the rule passes
    (or an override reason is given); 409 with the rule's reason when it is refused."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(request=PromoteInputSerializer, responses={200: PromotionDecisionSerializer})
    def post(self, request: Request, model_id: int) -> Response:
        model = model_version_get(model_id=model_id, user=request.user)
        self.check_object_permissions(request, model.project)
        data = PromoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data.get("override_reason")
        decision = model_promote(model=model, user=request.user, override_reason=reason if reason else None)
        body = PromotionDecisionSerializer(decision).data
        if decision.is_accepted:
            return Response(body)
        return Response(
            {"error": {"status": 409, "code": "promotion_refused", "message": decision.reason}, "decision": body},
            status=status.HTTP_409_CONFLICT,
        )


class ModelTestLookApi(APIView):
    """Score the model on the test split (reviewers), with a reason; every look is logged."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(request=TestLookInputSerializer, responses={202: TestSetLookSerializer})
    def post(self, request: Request, model_id: int) -> Response:
        model = model_version_get(model_id=model_id, user=request.user)
        self.check_object_permissions(request, model.project)
        data = TestLookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        look = test_look_start(model=model, user=request.user, reason=data.validated_data["reason"])
        return Response(TestSetLookSerializer(look).data, status=status.HTTP_202_ACCEPTED)


class TrainingPolicyApi(ProjectApiMixin, APIView):
    """The project's promotion rule and retraining schedule (read: reviewers; change: admins)."""

    def get_permissions(self):
        return [IsAuthenticated(), IsProjectAdmin() if self.request.method == "PATCH" else IsProjectReviewer()]

    @extend_schema(responses=TrainingPolicySerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(TrainingPolicySerializer(training_policy_get(project=project)).data)

    @extend_schema(request=TrainingPolicySerializer, responses=TrainingPolicySerializer)
    def patch(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        data = TrainingPolicySerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy = training_policy_update(project=project, **data.validated_data)
        return Response(TrainingPolicySerializer(policy).data)


class DeploymentTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeploymentTarget
        fields = [
            "id", "project", "name", "camera_width", "camera_height", "input_size", "threads", "precision",
            "latency_budget_ms", "size_budget_mb", "is_required", "created_at",
        ]  # fmt: skip


class DeploymentTargetInputSerializer(serializers.Serializer):
    """Types only; the rules (multiples of 32, budgets above 0, ...) are the service's."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=False)
    camera_width = serializers.IntegerField(required=False)
    camera_height = serializers.IntegerField(required=False)
    input_size = serializers.IntegerField(required=False, help_text="Pixels, a multiple of 32.")
    threads = serializers.IntegerField(required=False)
    precision = serializers.CharField(required=False, help_text="fp32 or int8.")
    latency_budget_ms = serializers.FloatField(required=False, help_text="p95, one image at a time.")
    size_budget_mb = serializers.FloatField(required=False)
    is_required = serializers.BooleanField(required=False, help_text="Passing it is required for promotion.")


class TargetBuildSerializer(serializers.ModelSerializer):
    target_name = serializers.CharField(source="target.name", read_only=True)
    model_number = serializers.IntegerField(source="model.number", read_only=True)

    class Meta:
        model = TargetBuild
        fields = [
            "id", "model", "model_number", "target", "target_name", "state", "settings", "artifact_sha256",
            "size_bytes", "calibration_images", "evaluation", "latency_p50_ms", "latency_p95_ms", "passed", "reasons",
            "error", "created_at", "finished_at",
        ]  # fmt: skip


class TargetBuildRequestSerializer(serializers.Serializer):
    target_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Default: every target of the project."
    )


class ProjectDeploymentTargetsApi(ProjectApiMixin, APIView):
    """A project's deployment targets (read: reviewers); POST adds one (admins)."""

    def get_permissions(self):
        return [IsAuthenticated(), IsProjectAdmin() if self.request.method == "POST" else IsProjectReviewer()]

    @extend_schema(responses=DeploymentTargetSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(DeploymentTargetSerializer(deployment_targets(project=project), many=True).data)

    @extend_schema(request=DeploymentTargetInputSerializer, responses={201: DeploymentTargetSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        data = DeploymentTargetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = target_create(project=project, **data.validated_data)
        return Response(DeploymentTargetSerializer(target).data, status=status.HTTP_201_CREATED)


class DeploymentTargetApi(APIView):
    """One deployment target (read: reviewers; change or delete: admins)."""

    def get_permissions(self):
        return [IsAuthenticated(), IsProjectReviewer() if self.request.method == "GET" else IsProjectAdmin()]

    def _target(self, request: Request, target_id: int) -> DeploymentTarget:
        target = deployment_target_get(target_id=target_id, user=request.user)
        self.check_object_permissions(request, target.project)
        return target

    @extend_schema(responses=DeploymentTargetSerializer)
    def get(self, request: Request, target_id: int) -> Response:
        return Response(DeploymentTargetSerializer(self._target(request, target_id)).data)

    @extend_schema(request=DeploymentTargetInputSerializer, responses=DeploymentTargetSerializer)
    def patch(self, request: Request, target_id: int) -> Response:
        target = self._target(request, target_id)
        data = DeploymentTargetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(DeploymentTargetSerializer(target_update(target=target, **data.validated_data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, target_id: int) -> Response:
        target_delete(target=self._target(request, target_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelTargetsApi(APIView):
    """The model's builds on the deployment targets, newest first (reviewers); POST measures
    it again on some or all of them (reviewers), on a worker."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=TargetBuildSerializer(many=True))
    def get(self, request: Request, model_id: int) -> Response:
        model = model_version_get(model_id=model_id, user=request.user)
        self.check_object_permissions(request, model.project)
        return Response(TargetBuildSerializer(model_target_builds(model=model), many=True).data)

    @extend_schema(request=TargetBuildRequestSerializer, responses={202: TargetBuildSerializer(many=True)})
    def post(self, request: Request, model_id: int) -> Response:
        model = model_version_get(model_id=model_id, user=request.user)
        self.check_object_permissions(request, model.project)
        data = TargetBuildRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        targets = deployment_targets(project=model.project)
        wanted = data.validated_data.get("target_ids")
        if wanted is not None:
            unknown = sorted(set(wanted) - set(targets.values_list("pk", flat=True)))
            if unknown:
                message = f"No deployment target of this project has id {unknown[0]}."
                raise ValidationFailed(message, fields={"target_ids": [message]})
            targets = targets.filter(pk__in=wanted)
        if not targets.exists():
            message = "The project has no deployment target to measure on; add one first."
            raise ValidationFailed(message, fields={"target_ids": [message]})
        builds = target_builds_start(model=model, targets=list(targets))
        return Response(TargetBuildSerializer(builds, many=True).data, status=status.HTTP_202_ACCEPTED)


class TargetBuildManifestApi(APIView):
    """The manifest of a build's artifact: what the device must do to run it as measured."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    def get(self, request: Request, build_id: int) -> Response:
        build = target_build_get(build_id=build_id, user=request.user)
        self.check_object_permissions(request, build.model.project)
        if build.state != TargetBuild.State.DONE:
            raise Conflict(f"Build {build.pk} is {build.state}; its artifact is not measured yet.", code="not_built")
        return Response(build_manifest(build))


class TargetBuildArtifactApi(APIView):
    """The build's ONNX artifact, the bytes whose sha256 the manifest gives."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): bytes,
            302: OpenApiResponse(description="With media on S3: a redirect to a presigned URL of the bytes"),
        }
    )
    def get(self, request: Request, build_id: int) -> HttpResponse:
        build = target_build_get(build_id=build_id, user=request.user)
        self.check_object_permissions(request, build.model.project)
        if build.state != TargetBuild.State.DONE:
            raise Conflict(f"Build {build.pk} is {build.state}; it has no artifact yet.", code="not_built")
        filename = build_manifest(build)["artifact"]["file"]
        return download_response(build.artifact, filename=filename)


class DataCurveInputSerializer(TrainingRunInputSerializer):
    """A run's settings (those of `run` when given) and the fractions of the train split."""

    run = serializers.IntegerField(required=False, help_text="Copy this run's settings.")
    fractions = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="Default [0.125, 0.25, 0.5, 1]."
    )


class DataCurveSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    runs = serializers.SerializerMethodField()

    class Meta:
        model = DataCurve
        fields = ["id", "project", "number", "snapshot", "run_settings", "fractions", "state", "progress", "runs",
                  "result", "error", "created_at", "finished_at"]  # fmt: skip

    def get_progress(self, curve: DataCurve) -> dict:
        return data_curve_progress(curve)

    def get_runs(self, curve: DataCurve) -> list[dict]:
        return [
            {"id": run.pk, "number": run.number, "fraction": run.train_fraction, "state": run.state,
             "epoch": run.epoch, "epochs": run.epochs, "train_images": run.train_images}
            for run in curve.runs.order_by("train_fraction")
        ]  # fmt: skip


class ProjectDataCurvesApi(ProjectApiMixin, APIView):
    """A project's data curves (reviewers); POST starts one (admins): the same settings
    trained on nested, stratified fractions of the train split."""

    def get_permissions(self):
        return [IsAuthenticated(), IsProjectAdmin() if self.request.method == "POST" else IsProjectReviewer()]

    @extend_schema(responses=DataCurveSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        return Response(DataCurveSerializer(data_curves(project=project), many=True).data)

    @extend_schema(request=DataCurveInputSerializer, responses={202: DataCurveSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project_for(request, project_id)
        data = DataCurveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        fields = {"fractions": values.pop("fractions", DEFAULT_FRACTIONS)}
        run_id = values.pop("run", None)
        if run_id is not None:
            run = training_runs(project=project).filter(pk=run_id).first()
            if run is None:
                message = "No run of this project has that id."
                raise ValidationFailed(message, fields={"run": [message]})
            # the run's settings, and only what the request named over them
            named = {name: values[name] for name in request.data if name in values}
            fields |= {"from_run": run, **named}
        else:
            fields |= values
        curve = data_curve_start(project=project, user=request.user, **fields)
        return Response(DataCurveSerializer(curve).data, status=status.HTTP_202_ACCEPTED)


class DataCurveApi(APIView):
    """One data curve: its runs and progress, then its points, fits, backtest, expected gains,
    the images needed to reach the panel, and the conditions ranked (reviewers)."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(responses=DataCurveSerializer)
    def get(self, request: Request, curve_id: int) -> Response:
        curve = data_curve_get(curve_id=curve_id, user=request.user)
        self.check_object_permissions(request, curve.project)
        return Response(DataCurveSerializer(curve).data)


class DataCurveDownloadApi(APIView):
    """The curve's result as a file: `?format=json` (default) or `csv`."""

    permission_classes = [IsAuthenticated, IsProjectReviewer]

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={(200, "application/json"): dict, (200, "text/csv"): str},
    )
    def get(self, request: Request, curve_id: int) -> HttpResponse:
        curve = data_curve_get(curve_id=curve_id, user=request.user)
        self.check_object_permissions(request, curve.project)
        kind = request.query_params.get("format", "json")
        if kind not in ("json", "csv"):
            raise ValidationFailed("format is json or csv.", fields={"format": ["json or csv."]})
        name = f"data-curve-{curve.project_id}-{curve.number}.{kind}"
        if kind == "csv":
            body, content_type = data_curve_csv(curve), "text/csv"
        else:
            body, content_type = json.dumps(DataCurveSerializer(curve).data, default=str, indent=1), "application/json"
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class DataCurveCancelApi(APIView):
    """Cancel a running curve and its runs (admins)."""

    permission_classes = [IsAuthenticated, IsProjectAdmin]

    @extend_schema(request=None, responses={202: DataCurveSerializer})
    def post(self, request: Request, curve_id: int) -> Response:
        curve = data_curve_get(curve_id=curve_id, user=request.user)
        self.check_object_permissions(request, curve.project)
        curve = data_curve_cancel(curve=curve, user=request.user)
        return Response(DataCurveSerializer(curve).data, status=status.HTTP_202_ACCEPTED)
