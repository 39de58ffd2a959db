"""Health endpoint for load balancers and people, Prometheus' metrics, and the favicon
browsers ask for."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops.metrics import NO_TOKEN_MESSAGE, bearer_token_matches, metrics_exposition
from ops.selectors import broker_check, database_check, heartbeats_by_queue


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker both answer, 503 otherwise, with the detail.

    Worker heartbeats are reported for people; they do not change the status, since a web
    replica is healthy even while every worker is busy training.
    """
    database = database_check()
    broker = broker_check()
    is_ok = database.is_ok and broker.is_ok
    body = {
        "status": "ok" if is_ok else "unavailable",
        "database": {"ok": database.is_ok, "detail": database.detail, "ms": database.milliseconds},
        "broker": {"ok": broker.is_ok, "detail": broker.detail, "ms": broker.milliseconds},
        "checked_at": timezone.now().isoformat(),
    }
    if database.is_ok:
        body["workers"] = {
            queue: {"last_seen": seen.isoformat()} for queue, seen in sorted(heartbeats_by_queue().items())
        }
    # Details of a failure name hosts and drivers: only staff see them. Reading the user
    # reads the session from the database, so only when it is up.
    is_staff = database.is_ok and request.user.is_authenticated and request.user.is_staff
    if not is_staff:
        for key in ("database", "broker"):
            body[key].pop("detail")
    return JsonResponse(body, status=200 if is_ok else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape (ops/metrics.py), only with `Authorization: Bearer $QUORUM_METRICS_TOKEN`.

    No token configured: the endpoint is off (404), as if it did not exist. A missing or
    wrong token: 401 with `WWW-Authenticate: Bearer`, so that a scrape with a bad
    credential reads as one in Prometheus' target list, not as a missing endpoint."""
    token = settings.QUORUM_METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: QUORUM_METRICS_TOKEN is not set.")
    if not bearer_token_matches(request.headers.get("Authorization"), token):
        response = HttpResponse(NO_TOKEN_MESSAGE, status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_exposition(accept=request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links to."""
    return redirect(static("quorum/favicon.svg"))
