"""Training in Django admin: read-only views of what the services make."""

from django.contrib import admin

from training.models import (
    BaseWeights,
    DataCurve,
    DatasetSnapshot,
    DeploymentTarget,
    ModelVersion,
    PromotionDecision,
    TargetBuild,
    TestSetLook,
    TrainingPolicy,
    TrainingRun,
)


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["project", "consensus_version", "short_hash", "images", "boxes", "masked_regions", "created_at"]
    list_filter = ["project", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in DatasetSnapshot._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="content hash")
    def short_hash(self, snapshot: DatasetSnapshot) -> str:
        return snapshot.content_hash[:12]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the services write: readable, not editable, here."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(BaseWeights)
class BaseWeightsAdmin(admin.ModelAdmin):
    """The registry of base weights (staff): files are added by `manage.py base_weights_add`
    (operator .pt) or uploaded as safetensors, never here; names and sharing may change."""

    list_display = ["name", "format", "architecture", "short_sha256", "size", "is_shared", "added_by", "created_at"]
    list_filter = ["format", "is_shared"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in BaseWeights._meta.fields if f.name not in ("name", "is_shared", "source")]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="sha256")
    def short_sha256(self, base: BaseWeights) -> str:
        return base.sha256[:12]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["project", "number", "state", "epoch", "epochs", "architecture", "imgsz", "attempts", "created_at"]
    list_filter = ["project", "state", "trigger", "architecture"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["project", "number", "stage", "architecture", "imgsz", "latency_ms", "created_at"]
    list_filter = ["project", "stage"]


@admin.register(PromotionDecision)
class PromotionDecisionAdmin(ReadOnlyAdmin):
    list_display = ["model", "is_accepted", "is_override", "decided_by", "decided_at"]
    list_filter = ["is_accepted", "is_override"]


@admin.register(TestSetLook)
class TestSetLookAdmin(ReadOnlyAdmin):
    list_display = ["model", "looked_by", "looked_at", "reason"]
    list_filter = ["looked_at"]


@admin.register(TrainingPolicy)
class TrainingPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "metric", "margin", "latency_budget_ms", "is_retrain_scheduled"]
    list_filter = ["metric", "is_retrain_scheduled"]


@admin.register(DeploymentTarget)
class DeploymentTargetAdmin(ReadOnlyAdmin):
    """Targets are added and changed on the project's deployment-targets page or the API,
    through the service that checks them; read here."""

    list_display = ["name", "project", "camera_width", "camera_height", "input_size", "threads", "precision",
                    "latency_budget_ms", "size_budget_mb", "is_required"]  # fmt: skip
    list_filter = ["project", "precision", "is_required"]


@admin.register(TargetBuild)
class TargetBuildAdmin(ReadOnlyAdmin):
    list_display = ["model", "target", "state", "passed", "latency_p95_ms", "size_bytes", "created_at"]
    list_filter = ["state", "passed"]


@admin.register(DataCurve)
class DataCurveAdmin(ReadOnlyAdmin):
    list_display = ["project", "number", "state", "fractions", "created_by", "created_at", "finished_at"]
    list_filter = ["project", "state"]
