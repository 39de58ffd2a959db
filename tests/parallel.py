"""Each pytest-xdist worker on Redis databases and a var/ folder of its own: a plugin that
`make test` loads early (`python -m pytest -p tests.parallel`), before pytest-django imports
the settings. (Not from pyproject's addopts: a bare `pytest` finds label-studio-converter's
top-level `tests` package first.) tests/conftest.py refuses an xdist run without it.

`make test` runs the suite in two processes (`pytest -n 2`). pytest-django gives each its own
test database; the rest they would share is Redis: every test clears the cache (FLUSHDB), and
tests count messages in the broker's queues. Worker N (gw0, gw1, ...) therefore moves
CELERY_BROKER_URL's and QUORUM_CACHE_URL's database numbers down by 2N: CI's 14 and 15 are
gw0's, 12 and 13 gw1's. Each runs on a core of its own (with two or more processes and
cores), and has its own QUORUM_VAR_DIR (`var/pytest-gwN/`, under the
one set, if any): the filesystem broker, the model cache and Ultralytics' settings live
there. The Celery workers and servers a test starts inherit the variables. Without xdist
(PYTEST_XDIST_WORKER unset) nothing changes. Media needs nothing: each test already has its
own folder or key prefix in the bucket.
"""

import os
import re
from pathlib import Path

import pytest

REDIS_DATABASE = re.compile(r"^(rediss?://[^/]*)/(\d+)$")
MOVED = ("CELERY_BROKER_URL", "QUORUM_CACHE_URL", "QUORUM_VAR_DIR")
# the variables as the run was started with them, before this process moved them
ORIGINAL = {variable: os.environ.get(variable) for variable in MOVED}


def redis_url_for_worker(url: str, worker: int) -> str:
    """`url` with its database number moved down by 2 x `worker`; a URL without a number
    (database 0) or another broker is left as it is. A number that would go below 0 is an error."""
    match = REDIS_DATABASE.match(url)
    if not match or worker == 0:
        return url
    database = int(match.group(2)) - 2 * worker
    if database < 0:
        raise RuntimeError(f"{url}: pytest-xdist worker gw{worker} would need Redis database {database}")
    return f"{match.group(1)}/{database}"


def _pin(worker: int) -> None:
    """Worker N runs on core N (modulo the cores) with everything it starts (Celery workers,
    servers, chromium, the training's threads: training/trainer.py sizes torch's threads to the
    affinity). Unpinned, two trainings at once ran torch's two threads each on two cores, and
    a test that trains took four times as long."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if count < 2 or len(cores) < 2:
        return
    os.sched_setaffinity(0, {cores[worker % len(cores)]})


def _isolate() -> None:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not name.startswith("gw"):
        return
    worker = int(name[2:])
    _pin(worker)
    var = Path(os.environ.get("QUORUM_VAR_DIR") or Path(__file__).resolve().parents[1] / "var")
    os.environ["QUORUM_VAR_DIR"] = str(var / f"pytest-{name}")
    for variable in MOVED[:2]:
        if os.environ.get(variable):
            os.environ[variable] = redis_url_for_worker(os.environ[variable], worker)


# Test files that take minutes, started first: pytest-xdist hands out files with the most
# tests first, so the demo's training (one test, 5 to 9 minutes on one core) came last and
# ran alone while the other process had finished.
LONGEST_FIRST = ("tests/training/test_demo_model.py", "tests/training/test_data_curves.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which would answer first
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's file-by-file scheduler (--dist loadfile), with LONGEST_FIRST in front."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):
        def _assign_work_unit(self, node) -> None:
            for scope in reversed(LONGEST_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


_isolate()
