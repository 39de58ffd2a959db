"""`make run` on the embedded defaults: migrate, demo accounts, web server, worker and beat;
the printed accounts sign in; a task goes through the worker; DEBUG is off, so every error
is Quorum's own page or JSON error and no technical page is reachable; Ctrl-C stops
everything."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign_in(base: str, username: str, password: str) -> tuple[str, str]:
    """Sign in through the login form as a browser would; the final URL and page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(f"{base}/login/", timeout=10).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf, "next": "/"})
    request = urllib.request.Request(f"{base}/login/", data=form.encode(), headers={"Referer": f"{base}/login/"})
    response = opener.open(request, timeout=10)
    return response.url, response.read().decode()


# What Django's technical pages (DEBUG on) show and Quorum's own pages never do.
TECHNICAL = (
    "Traceback", "You're seeing this error because you have", "DEBUG = True", "Request information",
    "Using the URLconf", "Request Method:", "DisallowedHost", "settings.py", "CSRF verification failed",
    "SECRET_KEY", "Django Version",
)  # fmt: skip


METRICS_TOKEN = "rundev-metrics-token"


def fetch(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of one request, whatever its status."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def errors_are_quorums_own(base: str) -> None:
    """Every kind of error a caller can provoke, through the running server."""
    probes = {
        "page 404": (fetch(f"{base}/no/such/page/"), 404, "There is nothing here"),
        "API 404": (fetch(f"{base}/api/v1/no-such-endpoint/"), 404, '"code": "not_found"'),
        "unknown host": (fetch(f"{base}/", headers={"Host": "evil.example"}), 400, "could not read this request"),
        "form without CSRF": (fetch(f"{base}/login/", method="POST", data=b"username=x&password=y"), 403,
                              "did not come from Quorum"),
        "id out of range": (fetch(f"{base}/api/v1/projects/99999999999999999999999/"), 400, "out of range"),
        "nested JSON": (fetch(f"{base}/api/v1/auth/token/", method="POST", data=b"[" * 5000 + b"]" * 5000,
                              headers={"Content-Type": "application/json"}), 400, "levels deep"),
        "anonymous API": (fetch(f"{base}/api/v1/me/"), 401, '"code": "not_authenticated"'),
        # the browsable API is a DEBUG feature: a browser asking for HTML gets the JSON error shape
        "API as HTML": (fetch(f"{base}/api/v1/me/", headers={"Accept": "text/html"}), 406, '"code": "not_acceptable"'),
    }  # fmt: skip
    for name, ((status, _, body), want_status, want_text) in probes.items():
        assert status == want_status, (name, status, body[:500])
        assert want_text in body.replace('":"', '": "'), (name, body[:500])
        assert not [marker for marker in TECHNICAL if marker in body], (name, body[:2000])
    assert probes["API as HTML"][0][1]["Content-Type"].startswith("application/json")


@pytest.mark.worker
def test_make_run_serves_signs_in_runs_a_task_shows_no_technical_page_and_stops_cleanly(tmp_path):
    # given a machine with nothing configured: no database or broker URL, no DEBUG, an empty var/
    port, metrics_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "QUORUM_VAR_DIR": str(tmp_path / "var"),
        # and Prometheus's two targets: the web's /metrics and the worker's task metrics
        "QUORUM_METRICS_TOKEN": METRICS_TOKEN,
        "QUORUM_WORKER_METRICS_PORT": str(metrics_port),
    }
    # the demo's training run is tested in tests/training/test_runs.py
    arguments = f"--addrport 127.0.0.1:{port} --concurrency 1 --demo-images 24 --no-demo-training"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"RUN_ARGS={arguments}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        # when it has started
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "annotator3" in line and any("is running at" in seen for seen in lines):
                break
        output = "".join(lines)
        # then it says where it runs, that the worker ran a task, and which accounts to use
        assert f"Quorum is running at http://127.0.0.1:{port}/" in output, output[-4000:]
        assert re.search(r"Worker \S+ ran a test task from the 'default' queue", output), output[-4000:]
        # and the worker's chatter went to its log file, not over the accounts
        worker_log = (tmp_path / "var" / "log" / "worker.log").read_text()
        assert "ops.tasks.worker_heartbeat_task" in worker_log and "ready." in worker_log
        assert "ops.tasks.worker_heartbeat_task" not in output and "ready." not in output, [
            line for line in lines if "worker_heartbeat_task" in line or "ready." in line
        ]
        assert (tmp_path / "var" / "log" / "beat.log").exists()
        accounts = json.loads((tmp_path / "var" / "demo-accounts.json").read_text())
        assert set(accounts) == {"admin", "reviewer", "annotator1", "annotator2", "annotator3"}
        for username, password in accounts.items():
            assert f"{username:<11} {password}" in output
        # and the printed accounts sign in on the login page and land on their work
        base = f"http://127.0.0.1:{port}"
        url, page = sign_in(base, "annotator2", accounts["annotator2"])
        assert url == f"{base}/"
        assert 'id="annotate"' in page and "Demo street scenes" in page
        url, page = sign_in(base, "admin", accounts["admin"])
        assert 'id="administer"' in page
        # and the demo project holds its synthetic images, split, with their report
        assert re.search(r"Demo project: 24 images added; split \d+ train, \d+ val, \d+ test", output)
        assert "Simulated annotators submitted 50 of the 72 slots." in output
        # and DEBUG is off: static files are served all the same, errors are Quorum's own
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
        status, headers, _ = fetch(f"{base}{stylesheet}")
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        errors_are_quorums_own(base)
        # and the worker's prefork pool process ran the test task: its duration is on the
        # worker's endpoint (the pool writes to var/metrics/worker/, which the main process reads)
        bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        status, _, metrics = fetch(f"http://127.0.0.1:{metrics_port}/metrics", headers=bearer)
        assert status == 200, metrics[:500]
        heartbeats = [
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "quorum_celery_task_duration_seconds_count"
            and sample.labels == {"queue": "default", "task": "ops.tasks.worker_heartbeat_task", "state": "SUCCESS"}
        ]
        assert heartbeats and heartbeats[0] >= 1, [line for line in metrics.splitlines() if "task_duration" in line]
        assert list((tmp_path / "var" / "metrics" / "worker").glob("*.db"))
        status, _, metrics = fetch(f"{base}/metrics", headers=bearer)
        assert status == 200 and "quorum_http_request_duration_seconds_bucket" in metrics
        assert fetch(f"{base}/metrics")[0] == 401
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 4  # make's manage.py rundev, then the web server, the worker and beat
    finally:
        # when Ctrl-C arrives (at the terminal: to make and everything it started)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # then make ends as Ctrl-C ends it (by the signal, as GNU make does once its command has
    # stopped), and the web server, the worker and beat have all stopped
    assert process.returncode in (0, -signal.SIGINT)
    time.sleep(1)
    assert [child.pid for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE] == []
    rest = process.stdout.read()
    assert "stopped; stopping the rest" not in rest, rest[-3000:]  # none of the three had died before


def test_the_worker_s_log_goes_to_its_file_and_only_warnings_reach_the_console(tmp_path, capsys):
    from demo.management.commands.rundev import _pump

    lines = [
        "[2026-12-04 18:53:51,565: INFO/MainProcess] Task ops.tasks.worker_heartbeat_task received\n",
        " -------------- celery@host v5\n",
        "/x/celery/platforms.py:893: SecurityWarning: You're running the worker with superuser privileges\n",
        "    _warn_or_raise_security_error(egid, euid, gid, uid,\n",
        "2026-12-04 18:50:51,166 WARNING kombu.connection: No hostname was supplied.\n",
        "    . ops.tasks.worker_heartbeat_task\n",
        "[2026-12-04 18:53:51,900: WARNING/MainProcess] No hostname was supplied.\n",
        " -------------- [queues]\n",
        "[2026-12-04 18:53:52,001: INFO/MainProcess] celery@host ready.\n",
        "[2026-12-04 18:53:53,002: ERROR/ForkPoolWorker-1] Task training.tasks.run failed\n",
        "Traceback (most recent call last):\n",
        '  File "x.py", line 1, in <module>\n',
        "ValueError: no images\n",
        "[2026-12-04 18:53:54,003: INFO/MainProcess] Task ops.tasks.beat succeeded\n",
        "Traceback (most recent call last):\n",
        "KeyError: 'x'\n",
    ]
    _pump(iter(lines), tmp_path / "worker.log")
    assert (tmp_path / "worker.log").read_text() == "".join(lines)
    shown = [lines[2], lines[4], lines[6], *lines[9:13], *lines[14:]]
    assert capsys.readouterr().out == "".join(shown)
