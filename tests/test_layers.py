"""The layering contract (pyproject.toml, [tool.importlinter]) is real: the tree keeps it, and
one forbidden import added to a copy of the tree breaks it, named in the output."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["root_packages"]


def _copy(tmp_path: Path) -> Path:
    """The project's packages (their .py files) and pyproject.toml, copied to `tmp_path`."""
    for package in _packages():
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return _copy(tmp_path_factory.mktemp("tree"))


def test_the_tree_keeps_the_contracts(tree):
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Apps import only the layers below them KEPT" in result.stdout
    assert "no cycle between siblings) KEPT" in result.stdout


def test_an_import_upward_breaks_the_layers(tree):
    probe = tree / "datasets" / "probe.py"
    probe.write_text("from groundtruth.models import Annotation  # datasets reaching up a layer\n")
    try:
        result = _lint(tree)
    finally:
        probe.unlink()
    assert result.returncode == 1
    assert "Apps import only the layers below them BROKEN" in result.stdout
    assert "datasets.probe -> groundtruth.models" in result.stdout


def test_an_import_hidden_in_a_function_still_counts(tree):
    probe = tree / "boxes" / "probe.py"
    probe.write_text("def later():\n    from projects.models import Project\n\n    return Project\n")
    try:
        result = _lint(tree)
    finally:
        probe.unlink()
    assert result.returncode == 1
    assert "boxes.probe -> projects.models" in result.stdout


def test_a_cycle_between_modules_of_one_app_breaks_the_second_contract(tree):
    probe = tree / "training" / "probe.py"
    probe.write_text("from training.tasks import training_run_execute_task\n")
    services = tree / "training" / "services.py"
    original = services.read_text()
    services.write_text(original + "\nfrom training.probe import training_run_execute_task  # noqa\n")
    try:
        result = _lint(tree)
    finally:
        services.write_text(original)
        probe.unlink()
    assert result.returncode == 1
    assert "no cycle between siblings) BROKEN" in result.stdout
