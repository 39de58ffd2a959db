"""Throttling of sign-ins (the sign-in page, Django admin's and the API token endpoint).

Attempts are counted per username and per client address in the cache, in one-minute
buckets over a sliding window (`WINDOW_MINUTES`). An attempt takes a place first (an atomic
increment, so parallel guesses cannot slip past the count together); one that signs in gives
it back, so only failures add up. Past `USERNAME_ATTEMPTS` for a username or
`ADDRESS_ATTEMPTS` for an address, attempts are refused with 429 and a `Retry-After` that
holds: the seconds until enough of the window's old attempts have aged out. Nothing locks
an account for good: the real user can sign in again once the window has passed.

With several web processes the cache must be shared (`QUORUM_CACHE_URL`); a per-process
cache counts per process.
"""

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from config.errors import too_many_requests

WINDOW_MINUTES = 15
USERNAME_ATTEMPTS = 10
ADDRESS_ATTEMPTS = 30


@dataclass(frozen=True)
class _Counter:
    key: str
    limit: int


def _clock() -> float:
    return time.time()


def client_address(request: HttpRequest) -> str:
    """The caller's address: behind a TLS proxy (`DJANGO_BEHIND_TLS_PROXY`), the last entry
    of X-Forwarded-For, the one the proxy appended; the socket's peer otherwise."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def _counters(username: str, address: str) -> list[_Counter]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [
        _Counter(f"quorum:sign-in:user:{digest}", USERNAME_ATTEMPTS),
        _Counter(f"quorum:sign-in:address:{address}", ADDRESS_ATTEMPTS),
    ]


def _bucket_key(counter: _Counter, minute: int) -> str:
    return f"{counter.key}:{minute}"


def _window(counter: _Counter, minute: int) -> list[int]:
    """Attempts in each bucket of the window ending with `minute`, oldest first."""
    keys = [_bucket_key(counter, m) for m in range(minute - WINDOW_MINUTES + 1, minute + 1)]
    found = cache.get_many(keys)
    return [int(found.get(key, 0)) for key in keys]


def _seconds_until_below(counts: list[int], limit: int, now: float) -> int:
    """Seconds until the window (buckets oldest first, the last one current) holds fewer
    than `limit` attempts, as its oldest buckets age out one a minute."""
    total = sum(counts)
    minute = int(now // 60)
    for shift, count in enumerate(counts, start=1):
        total -= count
        if total < limit:
            return max(1, math.ceil((minute + shift) * 60 - now))
    return WINDOW_MINUTES * 60


def sign_in_take(*, username: str, address: str) -> int | None:
    """Take a place for one sign-in attempt: None when it may go ahead, or the seconds to
    wait (Retry-After) when the username or the address has used up its attempts."""
    now = _clock()
    minute = int(now // 60)
    taken: list[_Counter] = []
    for counter in _counters(username, address):
        key = _bucket_key(counter, minute)
        cache.add(key, 0, timeout=(WINDOW_MINUTES + 1) * 60)
        try:
            current = cache.incr(key)
        except ValueError:  # the bucket expired between the two calls
            cache.set(key, current := 1, timeout=(WINDOW_MINUTES + 1) * 60)
        taken.append(counter)
        counts = _window(counter, minute)
        counts[-1] = current
        if sum(counts) > counter.limit:
            # refused attempts take no place: they would keep the real user out longer
            for done in taken:
                _give_back(done, minute)
            counts[-1] -= 1
            return _seconds_until_below(counts, counter.limit, now)
    return None


def sign_in_succeeded(*, username: str, address: str) -> None:
    """Give back the place a successful attempt took: only failures count."""
    minute = int(_clock() // 60)
    for counter in _counters(username, address):
        _give_back(counter, minute)


def _give_back(counter: _Counter, minute: int) -> None:
    for bucket in (minute, minute - 1):  # the attempt may have begun in the previous minute
        key = _bucket_key(counter, bucket)
        if int(cache.get(key, 0)) > 0:
            cache.decr(key)
            return


def sign_in_wait_message(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return (
        "Too many sign-in attempts for this account or from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def sign_in_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a sign-in page's view (Django's LoginView, admin's login): a POST takes a place
    first (429 page when none is left); a POST that signs in gives it back."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username, address = request.POST.get("username", ""), client_address(request)
        wait = sign_in_take(username=username, address=address)
        if wait is not None:
            return too_many_requests(request, retry_after=wait, message=sign_in_wait_message(wait))
        response = view(request, *args, **kwargs)
        if request.user.is_authenticated:
            sign_in_succeeded(username=username, address=address)
        return response

    return wrapped
