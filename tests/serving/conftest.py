"""A tiny detector for serving tests: trained once per test session (1 epoch at 160 px on
synthetic scenes, about 15 s on the CPU) by Quorum's own trainer subprocess, then
registered as model versions of a small project."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation.synthetic import condition_cycle, render_scene
from boxes.formats import FormatBox, FormatImage, yolo_data_yaml, yolo_label_text
from serving.cache import cache_clear
from tests.training.conftest import make_run, trainable_project
from training.models import ModelStage, ModelVersion
from training.runtime import file_sha256
from training.trainer import PREFIX

ROOT = Path(__file__).resolve().parents[2]
IMGSZ = 160


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model")
    dataset = folder / "dataset"
    conditions = condition_cycle()
    for split, count in (("train", 24), ("val", 6)):
        (dataset / "images" / split).mkdir(parents=True)
        (dataset / "labels" / split).mkdir(parents=True)
        for index in range(count):
            scene = render_scene(seed=1000 * (split == "val") + index, conditions=conditions[index % len(conditions)],
                                 size=(192, 128))  # fmt: skip
            scene.image.save(dataset / "images" / split / f"{index}.jpg", quality=92)
            boxes = tuple(FormatBox(*box, "pedestrian") for box in scene.boxes.tolist())
            text = yolo_label_text(FormatImage(f"{index}.jpg", 192, 128, boxes), labels=["pedestrian"])
            (dataset / "labels" / split / f"{index}.txt").write_text(text)
    (dataset / "data.yaml").write_text(
        yolo_data_yaml(labels=["pedestrian"], splits={"train": "images/train", "val": "images/val"})
    )
    spec = {
        "data": str(dataset / "data.yaml"), "model": "yolo26n.yaml", "imgsz": IMGSZ, "epochs": 1, "batch": 8,
        "patience": 1, "seed": 0, "device": "cpu", "project_dir": str(folder), "name": "train", "workers": 0,
    }  # fmt: skip
    (folder / "spec.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-m", "training.trainer", str(folder / "spec.json")], cwd=ROOT, capture_output=True, text=True
    )
    done = [json.loads(line[len(PREFIX) :]) for line in result.stdout.splitlines() if line.startswith(PREFIX)]
    assert done and done[-1]["event"] == "done", result.stdout[-3000:] + result.stderr[-3000:]
    return Path(done[-1]["onnx"])


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


@pytest.fixture
def served(db, tiny_onnx, settings, tmp_path):
    """A small project with its champion (model 1), and a second candidate (model 2) of the same weights."""
    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    cache_clear()
    trainable = trainable_project(images=8, name="Serve")
    champion = register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
    candidate = register_model(trainable, tiny_onnx)
    yield trainable, champion, candidate
    cache_clear()
    shutil.rmtree(tmp_path / "model-cache", ignore_errors=True)
