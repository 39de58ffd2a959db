"""Ground truth in Django admin: read-only views of what the services compute."""

from django.contrib import admin

from groundtruth.models import Adjudication, AgreementReport, ConsensusVersion, GroundTruthBox, ImageConsensus


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the groundtruth services only; admin shows them."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ConsensusVersion)
class ConsensusVersionAdmin(ReadOnlyAdmin):
    list_display = ["project", "number", "state", "is_current", "iou_threshold", "quorum", "alpha", "created_at"]
    list_filter = ["state", "is_current", "fuse", "reliability_weighted", "project"]
    search_fields = ["project__name"]


@admin.register(ImageConsensus)
class ImageConsensusAdmin(ReadOnlyAdmin):
    list_display = ["image", "version", "state", "annotators", "f1", "uncertain", "computed_at"]
    list_filter = ["state", "version__project"]
    list_select_related = ["version", "image"]


@admin.register(GroundTruthBox)
class GroundTruthBoxAdmin(ReadOnlyAdmin):
    list_display = ["image_consensus", "x1", "y1", "x2", "y2", "support", "is_ignore", "is_uncertain", "source"]
    list_filter = ["source", "is_ignore", "is_uncertain"]
    list_select_related = ["image_consensus__version"]


@admin.register(AgreementReport)
class AgreementReportAdmin(ReadOnlyAdmin):
    list_display = ["version", "created_at"]
    list_filter = ["version__project"]


@admin.register(Adjudication)
class AdjudicationAdmin(ReadOnlyAdmin):
    list_display = ["image", "reviewer", "is_active", "created_at"]
    list_filter = ["is_active", "image__project"]
    list_select_related = ["image", "reviewer"]
