"""The embedded default holds a team: 20 annotators at once through `make run` (the
development server, a worker and beat on SQLite and the filesystem broker), with no 5xx and
the database holding exactly the submissions the clients were told were saved; and 12
uploads at once store exactly the images their answers call stored (rows and files).
The short version of `bench/embedded.py`, which also measures PostgreSQL beside it."""

import os
import re
import subprocess
import sys

import pytest

from tests.workers import ROOT

pytestmark = pytest.mark.embedded


def test_twenty_annotators_and_twelve_uploads_at_once_on_make_run():
    result = subprocess.run(
        [sys.executable, "bench/embedded.py", "--only", "sqlite", "--annotators", "20", "--repeats", "1",
         "--seconds", "10"],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr[-3000:]
    assert result.returncode == 0, output
    team = re.search(r"SQLite\s+20 annotators:\s+([\d.]+) \[.*\] loops/s.*5xx\s+(\d+)\s+lost\s+(\d+)", result.stdout)
    assert team, output
    loops, server_errors, lost = float(team.group(1)), int(team.group(2)), int(team.group(3))
    assert loops > 0 and server_errors == 0 and lost == 0, output
    uploads = re.search(r"12 uploads x 12 images at once: .* 5xx (\d+), (\d+) stored, (\d+) answered stored, rows and "
                        r"files match the answers", result.stdout)  # fmt: skip
    assert uploads and uploads.group(1) == "0" and uploads.group(2) == uploads.group(3) != "0", output
