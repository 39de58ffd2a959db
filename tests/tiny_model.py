"""A tiny detector for serving and browser tests: 1 epoch at 160 px on 30 synthetic scenes
(about 15 s on the CPU), trained by Quorum's own trainer subprocess and exported to ONNX."""

import json
import subprocess
import sys
from pathlib import Path

from boxes.formats import FormatBox, FormatImage, yolo_data_yaml, yolo_label_text
from demo.synthetic import condition_cycle, render_scene
from training.trainer import PREFIX

ROOT = Path(__file__).resolve().parents[1]
IMGSZ = 160


def tiny_onnx_train(
    folder: Path, *, imgsz: int = IMGSZ, from_starter: bool = False, size: tuple[int, int] = (192, 128)
) -> Path:
    """Train the tiny detector in `folder` at `imgsz` on scenes of `size`; its ONNX export
    (best.pt beside it). `from_starter`: from the starter checkpoint (training/starter.py),
    a model that detects."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset = folder / "dataset"
    conditions = condition_cycle()
    for split, count in (("train", 24), ("val", 6)):
        (dataset / "images" / split).mkdir(parents=True)
        (dataset / "labels" / split).mkdir(parents=True)
        for index in range(count):
            scene = render_scene(seed=1000 * (split == "val") + index, conditions=conditions[index % len(conditions)],
                                 size=size)  # fmt: skip
            scene.image.save(dataset / "images" / split / f"{index}.jpg", quality=92)
            boxes = tuple(FormatBox(*box, "pedestrian") for box in scene.boxes.tolist())
            text = yolo_label_text(FormatImage(f"{index}.jpg", *size, boxes), labels=["pedestrian"])
            (dataset / "labels" / split / f"{index}.txt").write_text(text)
    (dataset / "data.yaml").write_text(
        yolo_data_yaml(labels=["pedestrian"], splits={"train": "images/train", "val": "images/val"})
    )
    spec = {
        "data": str(dataset / "data.yaml"), "model": "yolo26n.yaml", "imgsz": imgsz, "epochs": 1, "batch": 8,
        "patience": 1, "seed": 0, "device": "cpu", "project_dir": str(folder), "name": "train", "workers": 0,
    }  # fmt: skip
    if from_starter:
        from training.runtime import file_sha256
        from training.starter import STARTER_ARCHITECTURE, STARTER_CLASSES, STARTER_PATH, STARTER_SHA256

        assert file_sha256(STARTER_PATH) == STARTER_SHA256, "the starter checkpoint is not the one recorded"
        spec["base"] = {
            "path": str(STARTER_PATH), "format": "safetensors", "architecture": STARTER_ARCHITECTURE,
            "classes": list(STARTER_CLASSES),
        }  # fmt: skip
        spec["labels"] = ["pedestrian"]
    (folder / "spec.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-m", "training.trainer", str(folder / "spec.json")], cwd=ROOT, capture_output=True, text=True
    )
    done = [json.loads(line[len(PREFIX) :]) for line in result.stdout.splitlines() if line.startswith(PREFIX)]
    assert done and done[-1]["event"] == "done", result.stdout[-3000:] + result.stderr[-3000:]
    return Path(done[-1]["onnx"])
