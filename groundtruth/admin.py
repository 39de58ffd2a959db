"""Ground truth in Django admin: read-only views of what the services compute."""

from django import forms
from django.contrib import admin

from datasets.admin import ImageAdmin
from datasets.models import Image
from groundtruth.models import (
    Adjudication,
    AgreementReport,
    Annotation,
    AnnotationKind,
    Box,
    ConsensusChunk,
    ConsensusVersion,
    GroundTruthBox,
    ImageConsensus,
)


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


@admin.register(ConsensusChunk)
class ConsensusChunkAdmin(ReadOnlyAdmin):
    list_display = ["version", "index", "state", "attempts", "worker", "peak_rss_mb", "started_at", "finished_at"]
    list_filter = ["state", "version__project"]
    list_select_related = ["version__project"]
    exclude = ["counts", "image_ids"]

    def get_readonly_fields(self, request, obj=None):
        return [field for field in super().get_readonly_fields(request, obj) if field not in self.exclude]


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


class ImageAdminForm(forms.ModelForm):
    """An image is made a gold task here only when it has reference boxes (kept from before)."""

    def clean_is_gold(self) -> bool:
        is_gold = self.cleaned_data["is_gold"]
        has_reference = Annotation.objects.filter(
            image=self.instance, kind=AnnotationKind.GOLD, is_current=True
        ).exists()
        if is_gold and not self.instance.is_gold and not has_reference:
            raise forms.ValidationError(
                "A gold task needs reference boxes: use Save as gold on the review page, or "
                "POST /api/v1/images/{id}/gold/ with the boxes. Here a gold task can only be taken out."
            )
        return is_gold


class BoxInline(admin.TabularInline):
    model = Box
    extra = 0
    fields = ["label", "x1", "y1", "x2", "y2", "is_occluded", "is_truncated", "is_ignored"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    """Submitted annotations are immutable: the admin shows them, it does not edit them."""

    list_display = ["image", "annotator", "kind", "source", "revision", "is_current", "submitted_at"]
    list_filter = ["kind", "source", "is_current", "image__project"]
    search_fields = ["annotator__username", "image__original_name"]
    list_select_related = ["image", "annotator"]
    readonly_fields = [field.name for field in Annotation._meta.fields]
    inlines = [BoxInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Box)
class BoxAdmin(admin.ModelAdmin):
    list_display = ["annotation", "label", "x1", "y1", "x2", "y2", "is_occluded", "is_truncated", "is_ignored"]
    list_filter = ["label", "is_occluded", "is_truncated", "is_ignored"]
    list_select_related = ["annotation__image", "annotation__annotator"]
    readonly_fields = [field.name for field in Box._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


# The images' admin lives with the images (datasets); its gold flag is checked here, where gold
# references are known.
admin.site.unregister(Image)


@admin.register(Image)
class GoldCheckedImageAdmin(ImageAdmin):
    form = ImageAdminForm
