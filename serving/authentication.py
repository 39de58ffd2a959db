"""API clients sign their requests with `Authorization: Bearer <token>`; their rate limit
is counted per minute in the shared cache."""

import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.throttling import BaseThrottle

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


class ApiClientRateThrottle(BaseThrottle):
    """At most the client's `rate_limit_per_minute` requests in each clock minute (429 after)."""

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ClientScope):
            return True
        client = request.auth.client
        now = time.time()
        key = f"quorum:rate:{client.token_sha256[:16]}:{int(now // 60)}"
        count = 1 if cache.add(key, 1, timeout=90) else cache.incr(key)
        self.wait_seconds = 60 - now % 60
        return count <= client.rate_limit_per_minute

    def wait(self) -> float:
        return self.wait_seconds
