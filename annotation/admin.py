from django import forms
from django.contrib import admin
from django.db.models import Count

from annotation.models import (
    Annotation,
    AnnotationKind,
    ApiToken,
    Assignment,
    Box,
    Image,
    Membership,
    Project,
    SplitTally,
    Suggestion,
    SyntheticTruth,
)
from annotation.splits import split_tallies_rebuild


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap_k", "split_percentages", "member_count", "created_by", "created_at"]
    search_fields = ["name", "description"]
    list_filter = ["overlap_k", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [MembershipInline]
    # The split settings decide each image's split as it arrives; once images are in, a change
    # would split later arrivals differently and could move the test set's share.
    SPLIT_FIELDS = ["train_percent", "val_percent", "test_percent", "split_seed"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.images.exists():
            return [*self.readonly_fields, *self.SPLIT_FIELDS]
        return self.readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, project: Project) -> int:
        return project.member_total

    @admin.display(description="train / val / test")
    def split_percentages(self, project: Project) -> str:
        return f"{project.train_percent} / {project.val_percent} / {project.test_percent}"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """People's API tokens: staff see whose, since when and the first characters, never the
    key (only its hash is stored); they can revoke one by deleting it."""

    list_display = ["user", "prefix", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["user__username", "prefix"]
    fields = ["user", "prefix", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


class ImageAdminForm(forms.ModelForm):
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


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    form = ImageAdminForm
    list_display = [
        "original_name",
        "project",
        "split",
        "width",
        "height",
        "format",
        "stratum",
        "is_gold",
        "created_at",
    ]
    list_filter = ["project", "split", "format", "is_gold", "is_synthetic"]
    search_fields = ["original_name", "sha256"]
    list_select_related = ["project"]
    readonly_fields = [field.name for field in Image._meta.fields if field.name not in ("is_gold",)]

    def has_add_permission(self, request) -> bool:
        # Images arrive through ingestion, which checks, decodes and splits them.
        return False

    def delete_model(self, request, obj) -> None:
        project = obj.project
        super().delete_model(request, obj)
        split_tallies_rebuild(project=project)

    def delete_queryset(self, request, queryset) -> None:
        projects = list(Project.objects.filter(images__in=queryset).distinct())
        super().delete_queryset(request, queryset)
        for project in projects:
            split_tallies_rebuild(project=project)


@admin.register(SyntheticTruth)
class SyntheticTruthAdmin(admin.ModelAdmin):
    list_display = ["image", "generator", "seed", "pedestrian_count"]
    list_filter = ["generator", "image__project"]
    list_select_related = ["image"]
    readonly_fields = ["image", "generator", "seed", "boxes", "visible", "ignore"]

    def has_add_permission(self, request) -> bool:
        return False


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


@admin.register(SplitTally)
class SplitTallyAdmin(admin.ModelAdmin):
    list_display = ["project", "group", "split", "count"]
    list_filter = ["project", "split"]
    search_fields = ["group"]
    readonly_fields = ["project", "group", "split", "count"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["image", "annotator", "state", "version", "active_seconds", "lease_expires_at", "finished_at"]
    list_filter = ["state", "image__project"]
    search_fields = ["annotator__username", "image__original_name"]
    list_select_related = ["image", "annotator"]
    readonly_fields = [field.name for field in Assignment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    list_display = ["image", "source", "created_at"]
    list_filter = ["source", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Suggestion._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
