from django.contrib import admin

from datasets.models import Image, SplitTally
from datasets.splits import split_tallies_rebuild
from projects.models import Project


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
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


@admin.register(SplitTally)
class SplitTallyAdmin(admin.ModelAdmin):
    list_display = ["project", "group", "split", "count"]
    list_filter = ["project", "split"]
    search_fields = ["group"]
    readonly_fields = ["project", "group", "split", "count"]

    def has_add_permission(self, request) -> bool:
        return False
