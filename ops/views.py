"""Health endpoint for load balancers and people, and the favicon browsers ask for."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links to."""
    return redirect(static("quorum/favicon.svg"))
