"""Serving in Django admin: API clients (the token is shown once, when made or replaced),
routing rules, and the prediction log (read-only)."""

from django.contrib import admin, messages

from serving.models import ApiClient, DriftReport, PredictionJob, PredictionLog, RoutingRule
from serving.services import api_client_new_token, api_client_token_rotate
from training.admin import ReadOnlyAdmin


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "token_prefix", "rate_limit_per_minute", "is_active", "last_used_at", "created_at"]
    list_filter = ["is_active", "projects"]
    filter_horizontal = ["projects", "allowed_models"]
    readonly_fields = ["token_prefix", "created_by", "created_at", "last_used_at"]
    exclude = ["token_sha256"]
    actions = ["rotate_tokens"]

    @admin.action(description="Replace the token of the selected clients (the old ones stop working)")
    def rotate_tokens(self, request, queryset) -> None:
        for client in queryset.order_by("name"):
            token = api_client_token_rotate(client=client)
            messages.warning(request, f"The new token of {client.name} (shown once, keep it now): {token}")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            token = api_client_new_token(obj)
            obj.created_by = request.user
            messages.warning(request, f"The token of {obj.name} (shown once, keep it now): {token}")
        super().save_model(request, obj, form, change)


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["project", "order", "name", "is_active", "client", "max_width", "max_height", "model", "canary",
                    "canary_share", "shadow"]  # fmt: skip
    list_filter = ["project", "is_active"]
    list_editable = ["order", "is_active"]


@admin.register(PredictionLog)
class PredictionLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "project", "client", "model", "rule", "status", "latency_ms", "boxes", "is_shadow"]
    list_filter = ["project", "status", "is_shadow", "is_canary"]


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "project", "model", "predictions", "alert_count"]
    list_filter = ["project", "created_at"]

    @admin.display(description="alerts")
    def alert_count(self, report: DriftReport) -> int:
        return len(report.alerts)


@admin.register(PredictionJob)
class PredictionJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "state", "client", "user", "done", "created_at", "finished_at"]
    list_filter = ["state", "created_at"]
