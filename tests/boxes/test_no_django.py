"""boxes/ is pure: importing all of it pulls in no Django."""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import boxes

ROOT = Path(__file__).resolve().parents[2]


def test_every_boxes_module_imports_without_django():
    # given every module of the package, found on disk so a new one is covered too
    modules = ["boxes"] + [f"boxes.{info.name}" for info in pkgutil.iter_modules(boxes.__path__)]
    assert "boxes.geometry" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))))\n"
    )
    # when they are imported in a fresh interpreter
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": ""}
    )
    # then no Django module was loaded
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
