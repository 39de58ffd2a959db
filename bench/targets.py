"""Deployment targets benchmark: one model, fp32 against int8, at 320 and 640 px, measured
the way Quorum measures a target (`training.target_builds`), in the same run.

The model: the tiny detector fine-tuned one epoch from the starter checkpoint at 320 px (the
starter's own size) on 24 synthetic HD scenes (tests/tiny_model.py), registered on a demo-like project of 100 synthetic HD scenes (1280 x
720) annotated by five simulated annotators. Four builds (fp32 and int8 at 320 and 640 px,
camera 1280 x 720, one thread) give each artifact's size and its accuracy on val against
the humans (AP50, recall at the humans' precision). Then latency, one image at a time
through the whole predict path (letterbox, ONNX Runtime, NMS) on the val images, at 1 and
2 threads: 3 rounds, the four artifacts taking turns in each, p50 and p95 per round; the
median and range over the rounds are printed, and the int8 / fp32 ratios per round.

Target: int8 is at most 0.4x the fp32 file at both sizes, and its AP50 at 640 px is within
0.05 of fp32's. Exits 1 when one is missed. Latency is printed, not targeted: whether int8
is faster depends on the CPU's integer instructions.

    python bench/targets.py
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _setup import django_test_database

ROUNDS = 3
CALLS = 30
SIZES = (320, 640)
PRECISIONS = ("fp32", "int8")


def spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def main() -> None:
    with django_test_database():
        from django.conf import settings
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage

        from demo.simulation import panel_simulate
        from demo.synthetic_data import synthetic_images_add
        from groundtruth.computing import consensus_version_compute
        from groundtruth.services import consensus_version_create
        from projects.models import Membership, Project, Role
        from tests.factories import UserFactory
        from tests.tiny_model import tiny_onnx_train
        from training.evaluation import CONFIDENCE_FLOOR, MAX_DETECTIONS, split_images
        from training.models import DeploymentTarget, ModelVersion, RunState, TargetBuild, TrainingRun
        from training.runtime import OnnxDetector, file_sha256
        from training.snapshots import snapshot_create
        from training.target_builds import _camera_images, target_build_execute
        from training.targets import target_builds_request

        settings.QUORUM_MODEL_CACHE_DIR = Path(tempfile.mkdtemp(prefix="quorum-bench-targets-"))
        started = time.perf_counter()
        project = Project.objects.create(name="Targets bench", overlap_k=5, split_seed=3)
        synthetic_images_add(project=project, count=100, seed=5)
        panel_simulate(project=project, annotators=5, fraction=1.0, seed=4)
        admin = UserFactory(username="bench-admin")
        Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
        version = consensus_version_compute(version_id=consensus_version_create(project=project, user=admin).pk)
        onnx = tiny_onnx_train(
            Path(tempfile.mkdtemp(prefix="quorum-bench-model-")), imgsz=320, from_starter=True, size=(1280, 720)
        )
        snapshot = snapshot_create(version=version, user=None)
        run = TrainingRun.objects.create(
            project=project, number=1, snapshot=snapshot, state=RunState.SUCCEEDED, imgsz=640
        )
        name = default_storage.save(f"models/{project.pk}/bench.onnx", ContentFile(onnx.read_bytes()))
        model = ModelVersion.objects.create(
            project=project, number=1, run=run, snapshot=snapshot, consensus_version=version, weights=name,
            weights_sha256="0" * 64, onnx=name, onnx_sha256=file_sha256(onnx), architecture="yolo26n.yaml", imgsz=320,
        )  # fmt: skip
        print(f"targets: 100 HD scenes, 5 annotators, yolo26n fine-tuned one epoch from the starter at 320 px "
              f"(set up in {time.perf_counter() - started:.0f} s); camera 1280x720")  # fmt: skip

        builds = {}
        for size in SIZES:
            for precision in PRECISIONS:
                target = DeploymentTarget.objects.create(
                    project=project, name=f"{precision}-{size}", camera_width=1280, camera_height=720, input_size=size,
                    threads=1, precision=precision, latency_budget_ms=1000, size_budget_mb=100,
                )  # fmt: skip
                (build,) = target_builds_request(model=model, targets=[target])
                build_started = time.perf_counter()
                target_build_execute(build_id=build.pk)
                build.refresh_from_db()
                if build.state != TargetBuild.State.DONE:
                    raise SystemExit(f"build {precision} {size} failed: {build.error}")
                builds[(size, precision)] = (build, time.perf_counter() - build_started)

        val_ids = split_images(version=version, split="val")
        images = [rgb for rgb, _ in _camera_images(val_ids, (1280, 720))]
        folder = Path(tempfile.mkdtemp(prefix="quorum-bench-artifacts-"))
        paths = {}
        for key, (build, _) in builds.items():
            path = folder / f"{key[1]}-{key[0]}.onnx"
            with default_storage.open(build.artifact, "rb") as source:
                path.write_bytes(source.read())
            paths[key] = path
        latency: dict[tuple, dict[int, list[tuple[float, float]]]] = {key: {1: [], 2: []} for key in builds}
        for threads in (1, 2):
            detectors = {
                key: OnnxDetector(path, imgsz=key[0], intra_op_threads=threads, inter_op_threads=1)
                for key, path in paths.items()
            }
            for _ in range(ROUNDS):
                for key, detector in detectors.items():
                    for image in images[:3]:
                        detector.predict(image, conf=CONFIDENCE_FLOOR, max_det=MAX_DETECTIONS)  # warm-up
                    times = []
                    for call in range(CALLS):
                        call_started = time.perf_counter()
                        detector.predict(images[call % len(images)], conf=CONFIDENCE_FLOOR, max_det=MAX_DETECTIONS)
                        times.append((time.perf_counter() - call_started) * 1000)
                    latency[key][threads].append((float(np.percentile(times, 50)), float(np.percentile(times, 95))))

        print(f"val: {len(val_ids)} images; int8 calibrated on {builds[(320, 'int8')][0].calibration_images} "
              f"train images; latency: {ROUNDS} rounds of {CALLS} calls, median [range] over the rounds")  # fmt: skip
        header = f"{'artifact':<12}{'MB':>7}{'AP50':>8}{'recall@hp':>11}{'humans':>8}"
        print(header + f"{'p50 ms, 1 thread':>24}{'p95, 1':>20}{'p50 ms, 2 threads':>24}{'p95, 2':>20}{'build s':>9}")
        for key, (build, seconds) in builds.items():
            human = build.evaluation.get("human") or {}
            recall = (human.get("model_mean") or {}).get("recall_at_precision")
            humans = (human.get("human_mean") or {}).get("recall")
            cells = []
            for threads in (1, 2):
                cells.append(spread([p50 for p50, _ in latency[key][threads]]))
                cells.append(spread([p95 for _, p95 in latency[key][threads]]))
            print(f"{key[1] + ' ' + str(key[0]):<12}{build.size_bytes / 1e6:7.2f}{build.evaluation['coco']['ap50']:8.3f}"
                  f"{_f(recall):>11}{_f(humans):>8}{cells[0]:>24}{cells[1]:>20}{cells[2]:>24}{cells[3]:>20}{seconds:9.1f}")  # fmt: skip
        missed = []
        for size in SIZES:
            fp32, int8 = builds[(size, "fp32")][0], builds[(size, "int8")][0]
            size_ratio = int8.size_bytes / fp32.size_bytes
            ratios = {
                threads: [i[0] / f[0] for i, f in zip(latency[(size, "int8")][threads], latency[(size, "fp32")][threads], strict=True)]
                for threads in (1, 2)
            }  # fmt: skip
            ap_gap = int8.evaluation["coco"]["ap50"] - fp32.evaluation["coco"]["ap50"]
            print(f"  {size} px int8 / fp32: size {size_ratio:.2f}x (target <= 0.40); p50 {spread(ratios[1], 2)}x at 1 "
                  f"thread, {spread(ratios[2], 2)}x at 2; AP50 {ap_gap:+.3f}")  # fmt: skip
            if size_ratio > 0.4:
                missed.append(f"int8 size at {size} px")
            if size == 640 and ap_gap < -0.05:
                missed.append("int8 AP50 at 640 px")
        if missed:
            print(f"MISSED: {', '.join(missed)}")
            raise SystemExit(1)


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
