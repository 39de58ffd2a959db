"""API clients sign their requests with `Authorization: Bearer <token>`; their rate limit
counts images over the last 60 seconds (DRF's sliding-window throttle, weighted by images)
in the shared cache."""

import time
from contextlib import contextmanager
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

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


class ApiClientRateThrottle(SimpleRateThrottle):
    """At most the client's `rate_limit_per_minute` images in any 60 seconds (DRF's sliding
    window: no double burst at a clock minute's edge). A prediction counts one image, a
    batch one per image; a refusal (429) says in Retry-After when enough of the window has
    passed for this request, and takes nothing from the limit. A batch larger than the
    whole limit could never pass: 400, saying so. The window's history (time, images) is
    read and written under a short lock in the cache, so concurrent requests of one client
    never pass together over its limit."""

    scope = "api_client"
    cache_format = "quorum:throttle:%(scope)s:%(ident)s"
    duration = 60
    LOCK_SECONDS = 2

    def __init__(self):  # the rate is the client's, read per request (not from settings)
        self.images = 1
        self.wait_seconds = 0.0

    def timer(self) -> float:
        return _clock()

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ClientScope):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.client.token_sha256[:16]}

    def allow_request(self, request, view) -> bool:
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        client = request.auth.client
        self.num_requests = client.rate_limit_per_minute
        self.images = images_asked(request, view)
        if self.images > self.num_requests:
            message = (
                f"This client may send {self.num_requests} images a minute; a batch of {self.images} "
                "could never pass. Send smaller batches."
            )
            raise ValidationFailed(message, fields={"image_ids": [message]}, code="over_rate_limit")
        with _cache_lock(f"{self.key}:lock", seconds=self.LOCK_SECONDS):
            self.now = self.timer()
            self.history = [entry for entry in self.cache.get(self.key, []) if entry[0] > self.now - self.duration]
            used = sum(images for _, images in self.history)
            if used + self.images > self.num_requests:
                self.wait_seconds = self._until_room(used)
                return False
            self.history.insert(0, (self.now, self.images))
            self.cache.set(self.key, self.history, self.duration)
        return True

    def _until_room(self, used: int) -> float:
        """Seconds until enough of the window's images have aged out for this request."""
        for stamp, images in reversed(self.history):  # oldest first
            used -= images
            if used + self.images <= self.num_requests:
                return max(stamp + self.duration - self.now, 0.001)
        return float(self.duration)

    def wait(self) -> float:
        return self.wait_seconds


@contextmanager
def _cache_lock(key: str, *, seconds: float):
    """A lock held in the shared cache for at most `seconds` (cache.add is atomic there);
    waits up to that long for it, then goes ahead (a stale lock from a killed process)."""
    deadline = time.monotonic() + seconds
    while not cache.add(key, 1, timeout=seconds) and time.monotonic() < deadline:
        time.sleep(0.002)
    try:
        yield
    finally:
        cache.delete(key)
