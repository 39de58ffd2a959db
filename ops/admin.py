from django.contrib import admin

from ops.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "queue", "pid", "sent_at", "seen_at", "latency_seconds"]
    list_filter = ["queue", "hostname"]
    date_hierarchy = "seen_at"
    readonly_fields = ["hostname", "queue", "pid", "sent_at", "seen_at"]

    def has_add_permission(self, request) -> bool:
        # Heartbeats are written by workers only.
        return False
