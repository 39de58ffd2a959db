"""`make run`'s launcher on the embedded defaults: migrate, demo accounts, web server,
worker and beat; the printed accounts sign in; a task goes through the worker; Ctrl-C
stops everything."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import psutil
import pytest

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


@pytest.mark.worker
def test_rundev_serves_signs_in_runs_a_task_and_stops_cleanly(tmp_path):
    # given a machine with nothing configured: no database or broker URL, an empty var/
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_DEBUG": "1",
        "QUORUM_VAR_DIR": str(tmp_path / "var"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "rundev",
            "--addrport",
            f"127.0.0.1:{port}",
            "--concurrency",
            "1",
            "--demo-images",
            "24",
            # the demo's training run is tested in tests/training/test_runs.py
            "--no-demo-training",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 3
    finally:
        # when Ctrl-C arrives
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # then the web server, the worker and beat have all stopped
    assert process.returncode == 0
    time.sleep(1)
    assert [child.pid for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE] == []
