"""The API client guide's examples (docs/api-client.md, "Examples"), run as written against a
live server and a real worker: the shell ones with curl and jq, the Python ones with
requests. A shell example fails on any 4xx or 5xx (curl --fail-with-body), a Python one on
any answer of 400 or more (a response hook on both sessions)."""

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

import pytest
from django.core.files.storage import default_storage

from demo.synthetic_data import synthetic_images_add
from groundtruth.models import Annotation
from projects.services import api_token_rotate
from serving.cache import cache_clear
from serving.models import JobState, PredictionJob, PredictionLog
from serving.services import api_client_create
from tests.serving.conftest import register_model
from tests.training.conftest import trainable_project
from tests.workers import ROOT, start_worker, stop_worker
from training.models import ModelStage

GUIDE = ROOT / "docs" / "api-client.md"
ANNOTATOR_SECTION = "Submit boxes as an annotator"
# Stop at the first failing command; curl prints an error answer's body and fails on it.
SHELL_PRELUDE = 'set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body "$@"; }\n'

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.shell_tools]


@dataclass
class Section:
    title: str
    shell: list[str] = field(default_factory=list)
    python: list[str] = field(default_factory=list)


def guide_sections(text: str) -> list[Section]:
    """The "Examples" part of the guide: its set-up (the section titled ""), then each `###`
    section, with their fenced sh and python blocks in order."""
    examples = text.split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    sections = []
    for index, part in enumerate(re.split(r"^### ", examples, flags=re.MULTILINE)):
        title = part.splitlines()[0].strip() if index else ""
        section = Section(title)
        for language, body in re.findall(r"^```(sh|python)\n(.*?)^```$", part, flags=re.MULTILINE | re.DOTALL):
            (section.shell if language == "sh" else section.python).append(body)
        sections.append(section)
    return sections


def test_the_guide_has_the_examples_this_test_runs():
    sections = guide_sections(GUIDE.read_text())
    assert [section.title for section in sections] == [
        "", "Predict an uploaded or a stored image", "A batch job", "List projects (person token)",
        "Export a project (person token, reviewer or admin)", ANNOTATOR_SECTION,
    ]  # fmt: skip
    assert all(section.shell and section.python for section in sections)


def _raise_for_status(response, *args, **kwargs):
    response.raise_for_status()


def test_the_api_client_guide_examples_run_as_written(live_server, settings, tmp_path, tiny_onnx, monkeypatch):
    cache_clear()
    trainable = trainable_project(images=8, name="Docs")
    project = trainable.project
    register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
    synthetic_images_add(project=project, count=2, seed=5)  # two 1280x720 tasks for the annotator
    image = project.images.order_by("pk").first()
    _, client_token = api_client_create(name="docs", projects=[project], user=None)
    reviewer_token = api_token_rotate(user=trainable.reviewer).key
    annotator_token = api_token_rotate(user=trainable.annotator).key
    folder = tmp_path / "work"
    folder.mkdir()
    with default_storage.open(image.file.name, "rb") as stored:
        (folder / "street.jpg").write_bytes(stored.read())
    monkeypatch.chdir(folder)  # the examples read street.jpg and write the export here

    worker = start_worker(
        "inference,groundtruth",
        f"pytest-docs-{uuid.uuid4().hex[:8]}",
        env={"QUORUM_MODEL_CACHE_DIR": str(tmp_path / "cache")},
    )
    try:
        sections = guide_sections(GUIDE.read_text())
        names = {"BASE": live_server.url, "PROJECT": project.pk, "IMAGE": image.pk, "VERSION": trainable.version.number}

        namespace: dict = {}
        exec(compile(sections[0].python[0], f"{GUIDE}: set-up", "exec"), namespace)
        namespace.update(names)
        for session in (namespace["client"], namespace["person"]):
            session.hooks["response"].append(_raise_for_status)
        namespace["client"].headers["Authorization"] = f"Bearer {client_token}"

        for section in sections[1:]:
            token = annotator_token if section.title == ANNOTATOR_SECTION else reviewer_token
            env = {
                "PATH": os.environ["PATH"], "HOME": str(tmp_path), "QK": client_token, "TOKEN": token,
                **{name: str(value) for name, value in names.items()},
            }  # fmt: skip
            for block in section.shell:
                done = subprocess.run(
                    ["bash", "-c", SHELL_PRELUDE + block],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 0, f"{section.title}, shell:\n{block}\n{done.stdout}\n{done.stderr}"
            namespace["person"].headers["Authorization"] = f"Token {token}"
            for block in section.python:
                exec(compile(block, f"{GUIDE}: {section.title}", "exec"), namespace)

        # What the examples did, as the server saw it.
        assert namespace["r"].status_code == 200 and namespace["stored"]["boxes"] is not None
        assert namespace["job"]["state"] == "done" and namespace["job"]["results"][0]["image_id"] == image.pk
        assert PredictionJob.objects.filter(state=JobState.DONE).count() == 2  # the shell's job and Python's
        assert PredictionLog.objects.filter(client__name="docs", status=200).count() >= 4  # 2 predicts x 2, + jobs
        assert (folder / "ground-truth.json").stat().st_size > 0
        assert len(list(folder.glob("*.json"))) == 2  # curl -OJ saved the export under the server's file name
        assert namespace["done"].status_code == 201
        assert Annotation.objects.filter(annotator=trainable.annotator, image__project=project).count() == 2
    finally:
        stop_worker(worker)
        cache_clear()
        shutil.rmtree(folder, ignore_errors=True)
