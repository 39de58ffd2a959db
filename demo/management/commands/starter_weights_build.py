"""Build the starter checkpoint: yolo26n trained on synthetic street scenes that are never
the demo's (their seeds are disjoint), written as a half-precision safetensors file.

The starter is what the demo's first model starts from, so that a newcomer's first model
shows the loop working within minutes on a CPU. It has seen synthetic scenes only: a real
project starts from real pretrained weights (an operator's `.pt`, see the admin guide).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from boxes.formats import FormatBox, FormatImage, yolo_data_yaml, yolo_label_text
from demo.synthetic import HD_SIZE, condition_cycle, render_scene
from training.base_weights import model_export_safetensors
from training.runtime import file_sha256
from training.starter import STARTER_ARCHITECTURE, STARTER_CLASSES, STARTER_PATH, STARTER_SEED
from training.trainer import PREFIX

ROOT = Path(__file__).resolve().parents[3]


class Command(BaseCommand):
    help = (
        "Train the starter checkpoint (yolo26n on synthetic scenes disjoint from the demo's) and write it to "
        "training/starter/ as half-precision safetensors; prints its sha256. CPU, about an hour on 2 cores."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--images", type=int, default=600, help="synthetic training scenes (val: a tenth more)")
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--imgsz", type=int, default=320)
        parser.add_argument("--batch", type=int, default=16)
        parser.add_argument("--device", default="cpu")
        parser.add_argument("--out", type=Path, default=STARTER_PATH)

    def handle(self, *args, images: int, epochs: int, imgsz: int, batch: int, device: str, out: Path, **options):
        with tempfile.TemporaryDirectory(prefix="quorum-starter-") as folder:
            data = self._render(Path(folder) / "dataset", images=images)
            spec = {
                "data": str(data), "model": STARTER_ARCHITECTURE, "imgsz": imgsz, "epochs": epochs, "batch": batch,
                "patience": epochs, "seed": 0, "device": device, "project_dir": folder, "name": "train",
                "workers": 2, "onnx": False,
            }  # fmt: skip
            (Path(folder) / "spec.json").write_text(json.dumps(spec))
            done = self._train(Path(folder) / "spec.json")
            metadata = model_export_safetensors(
                weights=Path(done["best"]), architecture=STARTER_ARCHITECTURE, classes=list(STARTER_CLASSES),
                target=out, half=True,
                extra={"trained_on": f"{images} synthetic scenes, seeds {STARTER_SEED} * 1_000_003 + i",
                       "epochs": str(epochs), "imgsz": str(imgsz),
                       "val_map50": f"{done['metrics'].get('map50') or 0:.3f}",
                       "rebuild": "manage.py starter_weights_build"},
            )  # fmt: skip
        self.stdout.write(
            f"{out}: {out.stat().st_size:,} bytes, sha256 {file_sha256(out)}; "
            f"val mAP50 {metadata['val_map50']} on its own synthetic val scenes"
        )

    def _render(self, dataset: Path, *, images: int) -> Path:
        conditions = condition_cycle()
        val = max(images // 10, 1)
        for split, count, offset in (("train", images, 0), ("val", val, images)):
            (dataset / "images" / split).mkdir(parents=True)
            (dataset / "labels" / split).mkdir(parents=True)
            for index in range(offset, offset + count):
                scene = render_scene(
                    seed=STARTER_SEED * 1_000_003 + index, conditions=conditions[index % len(conditions)], size=HD_SIZE
                )
                scene.image.save(dataset / "images" / split / f"{index:05d}.jpg", quality=92)
                boxes = tuple(FormatBox(*box, "pedestrian") for box in scene.boxes.tolist())
                text = yolo_label_text(FormatImage(f"{index}.jpg", *HD_SIZE, boxes), labels=list(STARTER_CLASSES))
                (dataset / "labels" / split / f"{index:05d}.txt").write_text(text)
            self.stdout.write(f"rendered {count} {split} scenes")
        (dataset / "data.yaml").write_text(
            yolo_data_yaml(labels=list(STARTER_CLASSES), splits={"train": "images/train", "val": "images/val"})
        )
        return dataset / "data.yaml"

    def _train(self, spec: Path) -> dict:
        process = subprocess.Popen(
            [sys.executable, "-m", "training.trainer", str(spec)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        done = None
        for line in process.stdout:
            if line.startswith(PREFIX):
                event = json.loads(line[len(PREFIX) :])
                if event["event"] == "epoch":
                    self.stdout.write(f"epoch {event['epoch']}/{event['epochs']}: val mAP50 {event['map50']}")
                elif event["event"] == "done":
                    done = event
        if process.wait() != 0 or done is None:
            raise CommandError("training the starter failed; see the output above")
        return done
