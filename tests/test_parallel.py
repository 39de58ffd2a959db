"""`make test`'s two processes (pytest-xdist) keep apart what they would otherwise share:
each its own Redis databases (the cache is cleared by every test, the broker's queues are
counted) and its own var/ folder (tests/parallel.py)."""

import os

import pytest
from django.conf import settings

from tests import parallel
from tests.parallel import redis_url_for_worker


def test_each_worker_moves_the_redis_databases_down_by_two():
    assert redis_url_for_worker("redis://127.0.0.1:6379/14", 0) == "redis://127.0.0.1:6379/14"
    assert redis_url_for_worker("redis://127.0.0.1:6379/14", 1) == "redis://127.0.0.1:6379/12"
    assert redis_url_for_worker("redis://:pw@cache:6380/15", 2) == "redis://:pw@cache:6380/11"
    assert redis_url_for_worker("filesystem://", 1) == "filesystem://"
    with pytest.raises(RuntimeError, match="would need Redis database -1"):
        redis_url_for_worker("redis://127.0.0.1:6379/1", 1)


def test_this_process_has_its_own_var_folder_and_redis_databases():
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    broker = settings.CELERY_BROKER_URL
    if worker is None:  # one process: nothing is moved
        assert "pytest-gw" not in str(settings.VAR_DIR)
        assert broker == (parallel.ORIGINAL["CELERY_BROKER_URL"] or "filesystem://")
        return
    number = int(worker[2:])
    if int(os.environ["PYTEST_XDIST_WORKER_COUNT"]) > 1 and (os.cpu_count() or 1) > 1:
        assert len(os.sched_getaffinity(0)) == 1  # a core of its own
    assert settings.VAR_DIR.name == f"pytest-{worker}"
    for folder in (settings.BROKER_DIR, settings.QUORUM_MODEL_CACHE_DIR, settings.YOLO_CONFIG_DIR):
        assert settings.VAR_DIR in folder.parents
    original = parallel.ORIGINAL["CELERY_BROKER_URL"] or "filesystem://"
    assert broker == redis_url_for_worker(original, number)
    if original.startswith("redis") and number:
        assert broker != original
    if parallel.ORIGINAL["QUORUM_CACHE_URL"]:
        assert settings.CACHES["default"]["LOCATION"] == redis_url_for_worker(
            parallel.ORIGINAL["QUORUM_CACHE_URL"], number
        )
