"""`make test`'s two processes (pytest-xdist) keep apart what they would otherwise share:
each its own Redis databases (the cache is cleared by every test, the broker's queues are
counted) and its own var/ folder (tests/parallel.py)."""

import os
from types import SimpleNamespace

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


def test_the_files_that_take_minutes_are_handed_out_first(pytestconfig, monkeypatch):
    """pytest-xdist hands out the files with the most tests first; the demo's one long test
    then ran alone at the end. The scheduler `make test` gets puts LONGEST_FIRST in front."""
    monkeypatch.setattr(pytestconfig.option, "dist", "loadfile")
    monkeypatch.setattr(pytestconfig.option, "numprocesses", 2)
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"])
    scheduler = parallel.pytest_xdist_make_scheduler(pytestconfig, log=None)

    class Node:
        def __init__(self, name: str) -> None:
            self.gateway = SimpleNamespace(id=name)
            self.shutting_down = False
            self.sent: list[list[int]] = []

        def send_runtest_some(self, indices: list[int]) -> None:
            self.sent.append(indices)

        def shutdown(self) -> None:
            pass

    collection = [
        *[f"tests/a/test_many.py::test_{n}" for n in range(5)],
        "tests/training/test_data_curves.py::test_curve",
        *[f"tests/b/test_some.py::test_{n}" for n in range(3)],
        "tests/training/test_demo_model.py::test_demo",
    ]
    nodes = [Node("gw0"), Node("gw1")]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    first = [collection[node.sent[0][0]].split("::")[0] for node in nodes]
    assert first == list(parallel.LONGEST_FIRST)
