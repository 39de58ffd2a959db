"""Training benchmark: Quorum's training task against a plain ultralytics call, same snapshot,
same settings, on this machine's CPU (or GPU with --device 0).

The reference measured in the same run is `YOLO(arch).train(...)` in a fresh Python process
(imports, dataset scan, training, ultralytics' final validation), timed from start to exit.
Quorum's figure is the training task's trainer subprocess from start to its "done" event,
less its ONNX export (which the reference does not do): the same work plus Quorum's
progress reporting, heartbeat and log capture. The task's ONNX export, evaluation with
Quorum's evaluator and registry are printed apart. Target: overhead at most 5%.

    python bench/training.py [--images 240] [--epochs 9] [--imgsz 256] [--device cpu]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_test_database

PLAIN = """
import json, sys, time
from ultralytics import YOLO, settings
settings.update({"sync": False})
spec = json.loads(sys.argv[1])
YOLO(spec["model"]).train(data=spec["data"], imgsz=spec["imgsz"], epochs=spec["epochs"], batch=spec["batch"],
    patience=spec["patience"], seed=spec["seed"], deterministic=True, device=spec["device"] or None,
    workers=spec["workers"], project=spec["project_dir"], name="plain", exist_ok=True, plots=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with django_test_database():
        import logging

        logging.getLogger("celery").setLevel(logging.WARNING)
        logging.getLogger("training").setLevel(logging.WARNING)
        from django.conf import settings
        from django.core.files.storage import default_storage

        from annotation.models import Project
        from annotation.simulation import panel_simulate
        from annotation.synthetic_data import synthetic_images_add
        from groundtruth.services import consensus_version_compute, consensus_version_create
        from training.models import TrainingRun
        from training.services import training_run_create
        from training.tasks import training_run_execute_task

        started = time.perf_counter()
        project = Project.objects.create(name="Bench", overlap_k=3, split_seed=5)
        synthetic_images_add(project=project, count=args.images, seed=9, size=(320, 256))
        panel_simulate(project=project, annotators=3, fraction=1.0, seed=3)
        version = consensus_version_create(project=project, user=None)
        consensus_version_compute(version_id=version.pk)
        run = training_run_create(
            project=project, user=None, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch,
            patience=args.epochs, device=args.device,
        )  # fmt: skip
        snapshot = run.snapshot
        train_images = snapshot.images["train"]
        print(
            f"{args.images} synthetic scenes 320x256: {train_images} train / {snapshot.images['val']} val images, "
            f"{snapshot.boxes} boxes (prepared in {time.perf_counter() - started:.1f} s); yolo26n.yaml, "
            f"imgsz {args.imgsz}, {args.epochs} epochs, batch {args.batch}, device {args.device}"
        )

        dataset = Path(default_storage.path(snapshot.storage_prefix))

        def forget_label_caches() -> None:
            # ultralytics caches the scanned labels beside them; each run starts without
            for cache in dataset.glob("labels/*.cache"):
                cache.unlink()

        # warm the file cache for torch and ultralytics, so that neither side pays it alone
        subprocess.run([sys.executable, "-c", "import torch, ultralytics"], check=True, capture_output=True)
        forget_label_caches()
        with tempfile.TemporaryDirectory(prefix="quorum-bench-plain-") as folder:
            spec = {
                "model": "yolo26n.yaml", "data": default_storage.path(f"{snapshot.storage_prefix}/data.yaml"),
                "imgsz": args.imgsz, "epochs": args.epochs, "batch": args.batch, "patience": args.epochs,
                "seed": 0, "device": "" if args.device == "auto" else args.device,
                "workers": min(2, os.cpu_count() or 1), "project_dir": folder,
            }  # fmt: skip
            started = time.perf_counter()
            plain = subprocess.run(
                [sys.executable, "-c", PLAIN, json.dumps(spec)], capture_output=True, text=True, env=os.environ.copy()
            )
            plain_seconds = time.perf_counter() - started
            if plain.returncode:
                sys.exit(f"the plain ultralytics run failed:\n{plain.stdout[-3000:]}\n{plain.stderr[-3000:]}")

        forget_label_caches()
        settings.QUORUM_TRAINING_DIR = Path(tempfile.mkdtemp(prefix="quorum-bench-training-"))
        started = time.perf_counter()
        training_run_execute_task.apply(args=[run.pk])
        task_seconds = time.perf_counter() - started
        run = TrainingRun.objects.get(pk=run.pk)
        if run.state != "succeeded":
            sys.exit(f"Quorum's run ended {run.state}: {run.error}\n{run.log_tail[-3000:]}")
        timings = run.timings
        quorum_seconds = timings["subprocess"] - timings["export"]

    images = train_images * args.epochs
    print(f"{'':34}{'seconds':>9}{'images/s':>10}")
    print(f"{'plain YOLO(...).train(...)':34}{plain_seconds:9.1f}{images / plain_seconds:10.2f}")
    print(f"{'Quorum training task (training)':34}{quorum_seconds:9.1f}{images / quorum_seconds:10.2f}")
    print(
        f"Quorum / plain: {quorum_seconds / plain_seconds:.3f} (overhead {100 * (quorum_seconds / plain_seconds - 1):+.1f}%)"
    )
    print(
        f"rest of the task: ONNX export {timings['export']:.1f} s, evaluation with Quorum's evaluator and registry "
        f"{timings['evaluate_and_register']:.1f} s; whole task {task_seconds:.1f} s. "
        f"val AP50 {run.evaluation['coco']['ap50']:.4f} (Quorum), mAP50 {run.ultralytics_metrics['map50']:.4f} (ultralytics)"
    )


if __name__ == "__main__":
    main()
