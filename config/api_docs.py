"""The API's documentation: Swagger UI served from drf-spectacular's sidecar files (no
CDN), the error shape documented on every operation, and paginated list answers."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                # a field's messages; nested for lists and objects ({"3": [...]} for the fourth item)
                "fields": {"type": "object"},
            },
        }
    },
}


# The query parameters of every paginated list (config.pagination.Pagination).
PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Items per page: 100 unless given, at most 500 (more gives 500)."),
    OpenApiParameter("offset", int, description="Items to skip, at most 2^63 - 1."),
]


def paginated(serializer: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The schema of a limit/offset page of `serializer`'s items."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": serializer(many=True),
        },
    )


def error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular hook: every operation may answer 4XX with config.errors' shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {
        "description": "Refused: the error's status, code, message and, for input errors, the fields at fault.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("4XX", error)
    return result


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI; its initialiser is a separate script, so the page keeps the script policy.

    Swagger UI sets inline styles (its page template has a <style> block), so this page
    alone allows inline style; inline script stays forbidden.
    """

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'"
        )
        return response
