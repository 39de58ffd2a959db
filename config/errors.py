"""Domain errors raised by services, and the one JSON error shape every API answer uses.

Every error answer of the API has the form
``{"error": {"status": 404, "code": "not_found", "message": "...", "fields": {...}}}``;
``fields`` appears only for input errors and maps a field (or ``non_field_errors``) to its
messages.
"""

import sys

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A service refused to act; the API layer answers with `status_code` and the message."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, fields: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields
        if code:
            self.code = code


class ValidationFailed(DomainError):
    pass


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class PreconditionFailed(DomainError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    code = "stale_version"


def error_body(*, status_code: int, code: str, message: str, fields: dict | None = None) -> dict:
    error = {"status": status_code, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def api_exception_handler(exc, context):
    """DRF exception handler: DRF's own handling, then the Quorum error shape."""
    if isinstance(exc, DomainError):
        return Response(
            error_body(status_code=exc.status_code, code=exc.code, message=exc.message, fields=exc.fields),
            status=exc.status_code,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = f"Invalid input: {_first_message(exc.detail)}"
        response.data = error_body(status_code=response.status_code, code="invalid", message=message, fields=fields)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = detail.code if hasattr(detail, "code") else getattr(exc, "default_code", "error")
        response.data = error_body(status_code=response.status_code, code=code, message=str(detail))
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _page(template: str, status_code: int, context: dict, request: HttpRequest | None = None) -> HttpResponse:
    return HttpResponse(loader.render_to_string(template, context, request), status=status_code)


def bad_request(
    request: HttpRequest, exception: Exception | None = None, *, field: str | None = None, message: str | None = None
) -> HttpResponse:
    """400 handler (and the answer to an out-of-range id): the JSON error shape under /api/,
    Quorum's own page elsewhere. Rendered without the request's context, as Django's own is:
    the request may be what is wrong (an unknown host, say)."""
    message = message or "The request could not be understood."
    if _is_api(request):
        fields = {field: [message]} if field else None
        return JsonResponse(error_body(status_code=400, code="invalid", message=message, fields=fields), status=400)
    return _page("400.html", 400, {"message": message})


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 handler: the JSON error shape under /api/, Quorum's own page elsewhere."""
    message = "You may not do this."
    if _is_api(request):
        return JsonResponse(error_body(status_code=403, code="permission_denied", message=message), status=403)
    return _page("403.html", 403, {"message": message}, request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form posted without its token (a stale page, or another site)."""
    message = "This form has expired or did not come from Quorum. Reload the page and send it again."
    if _is_api(request):
        return JsonResponse(error_body(status_code=403, code="csrf_failed", message=message), status=403)
    return _page("403.html", 403, {"message": message})


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 handler: the JSON error shape under /api/, the HTML page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body(status_code=404, code="not_found", message="No such API endpoint."), status=404)
    return defaults.page_not_found(request, exception)


DATABASE_RETRY_SECONDS = 5


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the database could not be reached (restarting, say). The next
    request connects afresh, so the process recovers once the database is back."""
    if _is_api(request):
        response = JsonResponse(
            error_body(
                status_code=503, code="database_unavailable",
                message=f"The database cannot be reached just now. Try again in {DATABASE_RETRY_SECONDS} seconds.",
            ),
            status=503,
        )  # fmt: skip
    else:
        response = HttpResponse(loader.render_to_string("503.html", {"retry": DATABASE_RETRY_SECONDS}), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """500 handler: the JSON error shape under /api/, the HTML page elsewhere; a database
    that cannot be reached answers 503 (`database_unavailable`). Django calls this inside the
    `except` that caught the error, so `sys.exc_info()` holds it."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return database_unavailable(request)
    if _is_api(request):
        return JsonResponse(
            error_body(status_code=500, code="server_error", message="Internal server error."), status=500
        )
    return defaults.server_error(request)


def too_many_requests(request: HttpRequest, *, retry_after: int, message: str) -> HttpResponse:
    """429 with a `Retry-After` that holds: the JSON error shape under /api/, a page elsewhere."""
    if _is_api(request):
        response = JsonResponse(error_body(status_code=429, code="throttled", message=message), status=429)
    else:
        response = _page("429.html", 429, {"message": message, "retry": retry_after}, request)
    response["Retry-After"] = str(retry_after)
    return response
