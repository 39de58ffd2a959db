"""Training on a GPU against the CPU of the same machine, through Quorum's own training task:
the demo project as `make run` makes it (300 scenes, five simulated annotators on 70% of
the slots, the demo's settings from the starter checkpoint) and a 2,000-image synthetic
project (640x360 scenes, three annotators on every slot).

For each project, in this order (later steps are left out when --budget seconds would be
passed, and say so):

1. GPU, the demo's settings (batch 16): images/s, first and steady epoch seconds, peak GPU
   memory, val AP50 and recall at the humans' precision as a share of the panel's.
2. CPU, the same settings for two epochs: the reference.
3. Last, for both projects: GPU with batch 0 (ultralytics' autobatch, sized to the GPU's memory).

Images/s counts training images over the median seconds of the epochs after the first
(training and that epoch's validation; the first also starts CUDA, cuDNN's autotuning and
the loader's workers, and is shown apart), the same on both sides. Target: the GPU at least
3x the CPU's images/s on every project measured on both. Without CUDA it says so and
measures nothing.

    python bench/gpu_training.py [--projects demo,large] [--epochs 12] [--large-epochs 5] [--budget 480] [--out FILE]
"""

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_test_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12, help="GPU epochs on the demo (the demo's own number)")
    parser.add_argument("--large-epochs", type=int, default=5, help="GPU epochs on the 2,000-image project")
    parser.add_argument("--large-images", type=int, default=2000)
    parser.add_argument("--projects", default="demo,large", help="which projects: demo, large or both")
    parser.add_argument("--budget", type=float, default=480, help="seconds; later steps are left out past it")
    parser.add_argument("--out", help="write every result here as JSON, as it comes")
    parser.add_argument("--gpu", default="0", help="the GPU side's device (cpu: a dry run of this script)")
    args = parser.parse_args()
    import torch

    if args.gpu != "cpu" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (run this where a GPU is)")
        return
    began = time.monotonic()
    results: list[dict] = []

    def keep(result: dict) -> None:
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))

    with django_test_database():
        import logging

        logging.getLogger("celery").setLevel(logging.WARNING)
        logging.getLogger("training").setLevel(logging.WARNING)
        from django.conf import settings

        from demo.services import DEMO_PROJECT_NAME, demo_accounts_ensure, demo_training_settings
        from demo.simulation import panel_simulate
        from demo.synthetic_data import synthetic_images_add
        from groundtruth.computing import consensus_version_compute
        from groundtruth.services import consensus_version_create
        from projects.models import Project
        from training.runner import training_run_execute
        from training.services import training_run_create

        settings.QUORUM_TRAINING_DIR = Path(tempfile.mkdtemp(prefix="quorum-gpu-bench-"))

        def prepared(name: str) -> Project:
            started = time.monotonic()
            if name == "demo":
                demo_accounts_ensure(secrets_file=settings.QUORUM_TRAINING_DIR / "demo-accounts.json")
                project = Project.objects.get(name=DEMO_PROJECT_NAME)
                synthetic_images_add(project=project, count=300, seed=0)
                panel_simulate(project=project, annotators=5, fraction=0.7)
            else:
                project = Project.objects.create(name="Synthetic 2000", overlap_k=3, split_seed=5)
                synthetic_images_add(project=project, count=args.large_images, seed=11, size=(640, 360))
                panel_simulate(project=project, annotators=3, fraction=1.0, seed=3)
            version = consensus_version_create(project=project, user=None)
            consensus_version_compute(version_id=version.pk)
            print(f"{name}: {project.images.count()} images prepared in {time.monotonic() - started:.0f} s", flush=True)
            return project

        def measured(project: Project, name: str, side: str, **overrides) -> None:
            spent = time.monotonic() - began
            if spent > args.budget:
                keep(
                    {"project": name, "side": side, "left_out": f"{spent:.0f} s spent of a {args.budget:.0f} s budget"}
                )
                return
            run = training_run_create(project=project, user=None, **{**demo_training_settings(), **overrides})
            done = training_run_execute(run_id=run.pk, worker="gpu-bench")
            if done.state != "succeeded":
                keep({"project": name, "side": side, "error": done.error, "log": done.log_tail[-1500:]})
                return
            elapsed = [entry["elapsed"] for entry in done.history]
            steps = [b - a for a, b in itertools.pairwise(elapsed)]
            human = (done.evaluation or {}).get("human") or {}
            keep(
                {
                    "project": name,
                    "side": side,
                    "device": done.device_name,
                    "batch": done.batch,
                    "epochs": len(elapsed),
                    "train_images": done.train_images,
                    "first_epoch_s": round(elapsed[0], 2),
                    "first_epoch_images_per_s": round(done.train_images / elapsed[0], 1),
                    "steady_epoch_s": round(statistics.median(steps), 2) if steps else None,
                    "steady_epoch_range_s": [round(min(steps), 2), round(max(steps), 2)] if steps else None,
                    "steady_images_per_s": round(done.train_images / statistics.median(steps), 1) if steps else None,
                    "run_images_per_s": round(done.images_per_second or 0, 1),
                    "train_seconds": round(done.train_seconds, 1),
                    "peak_gpu_memory_mb": done.peak_gpu_memory_mb,
                    "ap50": round(done.evaluation["coco"]["ap50"], 4),
                    "recall_share": round(human["recall_share"], 3) if human.get("recall_share") is not None else None,
                }
            )

        projects = {}
        chosen = [(name, epochs) for name, epochs in (("demo", args.epochs), ("large", args.large_epochs))
                  if name in args.projects.split(",")]  # fmt: skip
        for name, epochs in chosen:
            projects[name] = project = prepared(name)
            measured(project, name, "gpu", device=args.gpu, epochs=epochs, patience=epochs)
            measured(project, name, "cpu", device="cpu", epochs=2, patience=2)
        for name, epochs in chosen:
            measured(projects[name], name, "gpu-autobatch", device=args.gpu, epochs=epochs, patience=epochs, batch=0)

    print(f"\n{'project':10}{'side':16}{'batch':>6}{'images/s':>10}{'epoch s':>9}{'epoch 1 s':>11}"
          f"{'peak GPU MB':>13}{'AP50':>8}{'share':>8}")  # fmt: skip
    for r in results:
        if "first_epoch_s" not in r:
            print(f"{r['project']:10}{r['side']:16}  {r.get('left_out') or r.get('error')}")
            continue
        print(
            f"{r['project']:10}{r['side']:16}{r['batch']:>6}{r['steady_images_per_s'] or '-':>10}"
            f"{r['steady_epoch_s'] or '-':>9}{r['first_epoch_s']:>11}{r['peak_gpu_memory_mb'] or '-':>13}{r['ap50']:>8}"
            f"{r['recall_share'] or '-':>8}"
        )
    missed = []
    for name, _ in chosen:
        by_side = {r["side"]: r for r in results if r["project"] == name and "first_epoch_s" in r}
        if "gpu" in by_side and "cpu" in by_side:
            speedup = by_side["gpu"]["steady_images_per_s"] / by_side["cpu"]["steady_images_per_s"]
            print(f"{name}: GPU / CPU images per second (epochs after the first): {speedup:.1f}x")
            if speedup < 3:
                missed.append(f"{name}: the GPU only {speedup:.1f}x the CPU")
        else:
            missed.append(f"{name}: not measured on both sides")
    print("target met" if not missed else "target missed: " + "; ".join(missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
