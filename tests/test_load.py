"""The short version of `bench/load.py` in CI: 50 annotators and 5 prediction clients for
10 s against gunicorn, PostgreSQL, Redis and a worker; no 5xx, and the database holds
exactly what the clients were told was saved."""

import os
import subprocess
import sys

import pytest

from tests.workers import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


def test_fifty_annotators_and_five_prediction_clients_for_ten_seconds(tiny_onnx):
    result = subprocess.run(
        [sys.executable, "bench/load.py", "--seconds", "10", "--onnx", str(tiny_onnx)],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = result.stdout + result.stderr[-3000:]
    assert result.returncode == 0, output
    assert "checks: all held" in result.stdout, output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith("  ")}
    for endpoint in ("next-task", "draft", "submit", "predict"):
        assert int(rows[endpoint][1]) > 0 and rows[endpoint][5] == "0", output  # calls made, no 5xx
