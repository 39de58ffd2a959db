"""A real Celery worker process for tests: it reads the broker the settings name (Redis in
CI, the filesystem transport locally) and writes to this test's database."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.storage import media_env

ROOT = Path(__file__).resolve().parents[1]


def database_url_of_this_test_database() -> str:
    """The URL of the database this test runs in, for a worker in another process."""
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    if connection.vendor == "postgresql":
        credentials = quote(conf["USER"] or "", safe="")
        if conf["PASSWORD"]:
            credentials += ":" + quote(conf["PASSWORD"], safe="")
        host = conf["HOST"] or "127.0.0.1"
        port = conf["PORT"] or 5432
        return f"postgres://{credentials}@{host}:{port}/{conf['NAME']}"
    raise NotImplementedError(connection.vendor)


def start_worker(queues: str, name: str, *, env: dict[str, str] | None = None, pool: str = "solo") -> subprocess.Popen:
    """A worker on `queues` (solo pool, or one prefork child with `pool="prefork"`), on
    this test's database and media (folder or bucket); `env` adds variables (a training
    folder, ...)."""
    env = {**os.environ, "DATABASE_URL": database_url_of_this_test_database(), **media_env(), **(env or {})}
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", pool, "--concurrency", "1",
        "-n", f"{name}@%h", "--without-mingle", "--without-gossip", "-l", "info",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(condition, process: subprocess.Popen, *, seconds: float = 120, what: str = "the worker's result"):
    """Poll `condition()` until it returns something truthy; fail with the worker's output."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    stop_worker(process)
    output = process.communicate(timeout=30)[0]
    pytest.fail(f"no {what}; the worker's output:\n{output[-4000:]}")
