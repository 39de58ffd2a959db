"""API clients sign their requests with `Authorization: Bearer <token>`; their rate limit
counts images per clock minute in the shared cache."""

import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from config.errors import ValidationFailed
from serving.models import ApiClient
from serving.services import api_client_scope_for_token
from serving.state import ClientScope


class ApiClientAuthentication(BaseAuthentication):
    """`request.user` is the ApiClient of a valid, active token and `request.auth` its
    scope (serving.state.ClientScope: its projects and granted models)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send 'Authorization: Bearer <token>'.")
        scope = api_client_scope_for_token(parts[1].decode("latin-1"))
        if scope is None:
            raise AuthenticationFailed("Unknown or disabled client token.")
        client = scope.client
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > timedelta(minutes=1):
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)  # at most once a minute
            client.last_used_at = now  # a process keeps its clients (serving/state.py)
        return client, scope

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="quorum"'


def _clock() -> float:
    return time.time()


class ApiClientMayPredict(BasePermission):
    """An API client whose limit is 0 images a minute may never predict: 403, not a 429 whose
    Retry-After no wait would satisfy."""

    message = "This client may not make predictions: its limit is 0 images a minute."

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.auth, ClientScope) or request.auth.client.rate_limit_per_minute > 0


def images_asked(request, view) -> int:
    """How many images a prediction request asks for: one, or for a view that names its list
    of image ids (`rate_counts_field`, a batch's JSON body) their number, counted before the
    body is validated (an invalid body counts one and is refused by the view). A single
    prediction's body (an upload) is not read here: its size limit comes first, in the view."""
    field = getattr(view, "rate_counts_field", None)
    if field is None:
        return 1
    try:
        ids = request.data.get(field) if hasattr(request.data, "get") else None
    except APIException:  # an unreadable body is the view's to refuse
        return 1
    return len(ids) if isinstance(ids, list) and ids else 1


class ApiClientRateThrottle(BaseThrottle):
    """At most the client's `rate_limit_per_minute` images in each clock minute: a prediction
    counts one, a batch one per image (429 after, with the seconds to the next minute). A
    batch larger than the whole limit could never pass: 400, saying so. Refused requests
    take nothing from the limit."""

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ClientScope):
            return True
        client = request.auth.client
        images = images_asked(request, view)
        if images > client.rate_limit_per_minute:
            message = (
                f"This client may send {client.rate_limit_per_minute} images a minute; a batch of {images} "
                "could never pass. Send smaller batches."
            )
            raise ValidationFailed(message, fields={"image_ids": [message]}, code="over_rate_limit")
        now = _clock()
        key = f"quorum:rate:{client.token_sha256[:16]}:{int(now // 60)}"
        count = images if cache.add(key, images, timeout=90) else cache.incr(key, images)
        self.wait_seconds = 60 - now % 60
        if count > client.rate_limit_per_minute:
            cache.decr(key, images)
            return False
        return True

    def wait(self) -> float:
        return self.wait_seconds
