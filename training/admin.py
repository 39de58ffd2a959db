"""Training in Django admin: read-only views of what the services make."""

from django.contrib import admin

from training.models import DatasetSnapshot


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
