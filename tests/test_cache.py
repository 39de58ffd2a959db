"""The shared cache: Django's Redis backend, with one redis-py client kept per pool."""

import os
import threading

import pytest
from django.core.cache.backends.redis import RedisCacheClient

from config.cache import ReusedClientRedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_cache():
    url = os.environ["CELERY_BROKER_URL"].rsplit("/", 1)[0] + "/12"
    cache = ReusedClientRedisCache(url, {"KEY_PREFIX": "quorum-test-cache"})
    yield cache
    cache.clear()


def test_calls_share_one_client_and_still_reach_redis(redis_cache):
    # given two calls through the backend
    redis_cache.set("key", {"images": 3}, 30)
    first = redis_cache._cache.get_client(write=True)
    assert redis_cache.get("key") == {"images": 3}
    # then they went through the same client, where Django's own builds one per call
    assert redis_cache._cache.get_client() is first
    plain = RedisCacheClient(redis_cache._servers)
    assert plain.get_client() is not plain.get_client()
    # and add stays atomic: the second add of a key fails
    assert redis_cache.add("lock", 1, 5) is True
    assert redis_cache.add("lock", 1, 5) is False


def test_threads_share_the_client_safely(redis_cache):
    errors = []

    def work(index: int) -> None:
        try:
            for step in range(50):
                redis_cache.set(f"t{index}", step, 30)
                assert redis_cache.get(f"t{index}") == step
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
