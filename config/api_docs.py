"""Swagger UI for the API, served from drf-spectacular's sidecar files (no CDN)."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView


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
