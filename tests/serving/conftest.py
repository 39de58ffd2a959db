"""Serving tests' models: the session's tiny detector (`tiny_onnx`, tests/conftest.py)
registered as model versions of a small project."""

import contextlib
import queue
import shutil
import uuid
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from serving import logbook
from serving.cache import cache_clear
from serving.services import api_client_create
from tests.tiny_model import IMGSZ
from tests.training.conftest import make_run, trainable_project
from training.models import ModelStage, ModelVersion
from training.runtime import file_sha256


def register_model(trainable, onnx: Path, *, stage: str = ModelStage.CANDIDATE) -> ModelVersion:
    """`onnx` stored as a new model version of the trainable project."""
    run = make_run(trainable, state="succeeded", imgsz=IMGSZ)
    number = ModelVersion.objects.filter(project=trainable.project).count() + 1
    name = default_storage.save(f"models/{trainable.project.pk}/test-{number}.onnx", ContentFile(onnx.read_bytes()))
    return ModelVersion.objects.create(
        project=trainable.project, number=number, run=run, snapshot=run.snapshot,
        consensus_version=trainable.version, weights=name, weights_sha256="0" * 64, onnx=name,
        onnx_sha256=file_sha256(onnx), architecture="yolo26n.yaml", imgsz=IMGSZ, stage=stage,
    )  # fmt: skip


@contextlib.contextmanager
def _serving(settings, tmp_path):
    """Serving settings for one test, the model cache emptied before and after."""
    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    cache_clear()
    yield
    cache_clear()
    shutil.rmtree(tmp_path / "model-cache", ignore_errors=True)


@pytest.fixture
def served(db, tiny_onnx, settings, tmp_path):
    """A small project with its champion (model 1), and a second candidate (model 2) of the same weights."""
    with _serving(settings, tmp_path):
        trainable = trainable_project(images=8, name="Serve")
        champion = register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
        candidate = register_model(trainable, tiny_onnx)
        yield trainable, champion, candidate


@pytest.fixture
def served_detector(db, starter_onnx, settings, tmp_path):
    """A small project whose champion finds pedestrians (one epoch from the starter checkpoint)."""
    with _serving(settings, tmp_path):
        trainable = trainable_project(images=8, name="Detect")
        yield trainable, register_model(trainable, starter_onnx, stage=ModelStage.CHAMPION)


def as_camera(api_client, trainable) -> None:
    """Requests from here on come from a new API client of the project: production traffic,
    which drift and the uncertain images read (a person's requests are not)."""
    _, token = api_client_create(name=f"camera {uuid.uuid4().hex[:6]}", projects=[trainable.project], user=None)
    api_client.force_authenticate(None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")


def as_reviewer(api_client, trainable) -> None:
    api_client.credentials()
    api_client.force_authenticate(trainable.reviewer)


@pytest.fixture
def log_written_here(monkeypatch):
    """The prediction log's queue for this test alone, and no writer thread on it: the rows
    stay queued until the test calls `logbook.flush()`. A writer an earlier test of this
    process started (it lives as long as the process) keeps draining the queue it was started
    on, and cannot take this test's rows."""
    monkeypatch.setattr(logbook, "_rows", queue.Queue())
    monkeypatch.setattr(logbook, "_ensure_writer", lambda: None)
    return logbook
