"""Training benchmark, on this machine's CPU (or a GPU with --device 0), same snapshot and
settings for every run:

1. From scratch against from a base (the starter checkpoint): val AP50 and recall at the
   humans' precision, by Quorum's evaluator, and seconds. Target: the base's median beats
   scratch's on both figures.
2. Quorum's training task against a plain `YOLO(arch).train(...)` in a fresh Python
   process, both timed from the process's launch to the end of `train()` (imports,
   dataset scan, training, ultralytics' final validation); Quorum's figure is its trainer
   subprocess, with progress reporting, heartbeat and log capture around the same work.
   Target: overhead at most 5% on the medians.

Each side runs --repeats times (at least 3); the median and the range are printed. Exits 1
when a target is missed.

    python bench/training.py [--images 160] [--epochs 5] [--imgsz 256] [--device cpu] [--repeats 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_test_database

PLAIN = """
import json, os, sys, time
import torch
from ultralytics import YOLO, settings
settings.update({"sync": False})
spec = json.loads(sys.argv[1])
model = YOLO(spec["model"])
# the same threads as Quorum's trainer: every core on the CPU (ultralytics alone takes one fewer)
model.add_callback("on_pretrain_routine_start",
    lambda trainer: torch.set_num_threads(os.cpu_count() or 1) if trainer.device.type == "cpu" else None)
model.train(data=spec["data"], imgsz=spec["imgsz"], epochs=spec["epochs"], batch=spec["batch"],
    patience=spec["patience"], seed=spec["seed"], deterministic=True, device=spec["device"] or None,
    workers=spec["workers"], project=spec["project_dir"], name="plain", exist_ok=True, plots=False)
print("@trained " + repr(time.time()), flush=True)
"""


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.repeats < 3:
        sys.exit("--repeats: at least 3")

    with django_test_database():
        import logging

        logging.getLogger("celery").setLevel(logging.WARNING)
        logging.getLogger("training").setLevel(logging.WARNING)
        from django.conf import settings
        from django.core.files.storage import default_storage

        from demo.simulation import panel_simulate
        from demo.synthetic_data import synthetic_images_add
        from groundtruth.computing import consensus_version_compute
        from groundtruth.services import consensus_version_create
        from projects.models import Project
        from training.models import TrainingRun
        from training.runner import training_run_execute
        from training.services import training_run_create
        from training.starter import starter_register

        started = time.perf_counter()
        project = Project.objects.create(name="Bench", overlap_k=3, split_seed=5)
        synthetic_images_add(project=project, count=args.images, seed=9, size=(320, 256))
        panel_simulate(project=project, annotators=3, fraction=1.0, seed=3)
        version = consensus_version_create(project=project, user=None)
        consensus_version_compute(version_id=version.pk)
        starter = starter_register()
        if starter is None:
            sys.exit("the starter checkpoint is missing or not the one recorded in training/starter.py")
        settings.QUORUM_TRAINING_DIR = Path(tempfile.mkdtemp(prefix="quorum-bench-training-"))
        common = {"imgsz": args.imgsz, "epochs": args.epochs, "batch": args.batch, "patience": args.epochs,
                  "device": args.device}  # fmt: skip

        def quorum_run(**init) -> TrainingRun:
            run = training_run_create(project=project, user=None, **common, **init)
            forget_label_caches(run)
            done = training_run_execute(run_id=run.pk, worker="bench")
            if done.state != "succeeded":
                sys.exit(f"Quorum's run ended {done.state}: {done.error}\n{done.log_tail[-3000:]}")
            return done

        def forget_label_caches(run: TrainingRun) -> None:
            # ultralytics caches the scanned labels beside them; each run starts without
            for cache in Path(default_storage.path(run.snapshot.storage_prefix)).glob("labels/*.cache"):
                cache.unlink()

        # warm the file cache for torch and ultralytics, so that no side pays it alone
        subprocess.run([sys.executable, "-c", "import torch, ultralytics"], check=True, capture_output=True)
        first = quorum_run()
        snapshot = first.snapshot
        print(
            f"{args.images} synthetic scenes 320x256: {snapshot.images['train']} train / {snapshot.images['val']} val "
            f"images, {snapshot.boxes} boxes (prepared in {time.perf_counter() - started:.1f} s); yolo26n.yaml, "
            f"imgsz {args.imgsz}, {args.epochs} epochs, batch {args.batch}, device {args.device}; "
            f"base: {starter.name} (sha256 {starter.sha256[:12]})"
        )
        scratch = [first] + [quorum_run() for _ in range(args.repeats - 1)]
        based = [quorum_run(init="base", base_weights=starter.pk) for _ in range(args.repeats)]

        plain_seconds = []
        for _ in range(args.repeats):
            forget_label_caches(first)
            with tempfile.TemporaryDirectory(prefix="quorum-bench-plain-") as folder:
                spec = {
                    "model": "yolo26n.yaml", "data": default_storage.path(f"{snapshot.storage_prefix}/data.yaml"),
                    "seed": 0, "workers": min(2, os.cpu_count() or 1), "project_dir": folder,
                    **common, "device": "" if args.device == "auto" else args.device,
                }  # fmt: skip
                launched = time.time()
                plain = subprocess.run(
                    [sys.executable, "-c", PLAIN, json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    env=os.environ.copy(),
                )
                if plain.returncode:
                    sys.exit(f"the plain ultralytics run failed:\n{plain.stdout[-3000:]}\n{plain.stderr[-3000:]}")
                trained = next(line for line in plain.stdout.splitlines() if line.startswith("@trained "))
                plain_seconds.append(float(trained.split()[1]) - launched)

    def figures(runs: list[TrainingRun]) -> tuple[list[float], list[float], list[float]]:
        ap50 = [run.evaluation["coco"]["ap50"] for run in runs]
        recall = [
            (run.evaluation.get("human") or {}).get("model_mean", {}).get("recall_at_precision") or 0.0 for run in runs
        ]
        seconds = [run.timings["train_call"] for run in runs]
        return ap50, recall, seconds

    scratch_ap50, scratch_recall, scratch_seconds = figures(scratch)
    base_ap50, base_recall, base_seconds = figures(based)
    panel = based[0].evaluation.get("human", {}).get("human_mean", {}).get("recall")
    print(f"\n{'':28}{'val AP50':>22}{'recall at humans P':>24}{'seconds':>22}")
    print(
        f"{'from scratch':28}{spread(scratch_ap50):>22}{spread(scratch_recall):>24}{spread(scratch_seconds, '{:.1f}'):>22}"
    )
    print(
        f"{'from the starter':28}{spread(base_ap50):>22}{spread(base_recall):>24}{spread(base_seconds, '{:.1f}'):>22}"
    )
    print(f"(the panel's own recall at its precision: {panel:.3f})" if panel is not None else "")
    quorum_seconds = scratch_seconds
    ratio = statistics.median(quorum_seconds) / statistics.median(plain_seconds)
    print(f"\n{'launch to end of train()':28}{'seconds':>22}")
    print(f"{'plain YOLO(...).train(...)':28}{spread(plain_seconds, '{:.1f}'):>22}")
    print(f"{'Quorum training task':28}{spread(quorum_seconds, '{:.1f}'):>22}")
    print(f"Quorum / plain (medians): {ratio:.3f} (overhead {100 * (ratio - 1):+.1f}%)")
    missed = []
    if not statistics.median(base_ap50) > statistics.median(scratch_ap50):
        missed.append("the base does not beat scratch on AP50")
    if not statistics.median(base_recall) > statistics.median(scratch_recall):
        missed.append("the base does not beat scratch on recall at the humans' precision")
    if ratio > 1.05:
        missed.append(f"Quorum's overhead {100 * (ratio - 1):.1f}% is over 5%")
    print("target met" if not missed else "target missed: " + "; ".join(missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
