"""gunicorn's settings file (`gunicorn -c config/gunicorn.py config.wsgi`): the bookkeeping
of prometheus_client's multiprocess mode, as its docs ask, when PROMETHEUS_MULTIPROC_DIR is
set (ops/metrics.py). The command line keeps every other setting.

gunicorn's master never loads Django, so this file reads the variable itself, from the
environment the start-up shell gave it (the one the workers inherit)."""

import os
from pathlib import Path

from prometheus_client import multiprocess


def _folder() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server) -> None:
    """Before the first worker forks: the folder is emptied of an earlier run's files (only
    the `.db` files prometheus_client writes; whatever else it holds stays)."""
    folder = _folder()
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for file in path.glob("*.db"):
            file.unlink(missing_ok=True)


def child_exit(server, worker) -> None:
    """A worker is gone (recycled, or killed by the timeout): its live gauge files go."""
    folder = _folder()
    if folder:
        multiprocess.mark_process_dead(worker.pid, folder)
