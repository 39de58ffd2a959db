from django.contrib import admin

from annotation.models import Assignment, Suggestion


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
