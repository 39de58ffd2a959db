"""Consensus benchmark: a 10,000-image project, 5 annotators, about 12 boxes each.

Quorum's whole-project pass (`boxes.agreement.measure`: complete-linkage consolidation
with one box per annotator per cluster, quorum, fusion, spread, pairwise F1 and IoU,
Krippendorff's alpha, per-image figures and 1,000 bootstrap resamples) against the
reference measured in the same run on the same boxes: ensemble-boxes' weighted boxes
fusion (Solovyev et al., 2021), which only fuses. Also prints each method's F1 against the
simulated truth (WBF boxes kept when a majority of annotators are in them).

    python bench/consensus.py [--images N]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxes.agreement import measure
from boxes.consensus import consolidate
from boxes.matching import match
from boxes.simulate import PROFILES, simulate_annotator

WIDTH, HEIGHT = 1920, 1080
PANEL = ("careful", "loose", "tight", "shifted", "sloppy")


def project(count: int, seed: int = 0) -> tuple[list[np.ndarray], list[dict]]:
    rng = np.random.default_rng(seed)
    truths, images = [], []
    for _ in range(count):
        n = int(rng.integers(8, 17))  # about 12 pedestrians
        heights = np.exp(rng.uniform(np.log(30), np.log(400), n))
        widths = heights * 0.4
        x, y = rng.uniform(0, WIDTH - widths), rng.uniform(0, HEIGHT - heights)
        truth = np.column_stack([x, y, x + widths, y + heights])
        truths.append(truth)
        images.append(
            {
                name: simulate_annotator(truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT).boxes
                for name in PANEL
            }
        )
    return truths, images


def wbf_all(images: list[dict]) -> list[np.ndarray]:
    from ensemble_boxes import weighted_boxes_fusion

    scale = np.array([WIDTH, HEIGHT, WIDTH, HEIGHT], dtype=float)
    fused = []
    for image in images:
        boxes, scores, _ = weighted_boxes_fusion(
            [image[name] / scale for name in PANEL],
            [np.ones(len(image[name])) for name in PANEL],
            [np.zeros(len(image[name])) for name in PANEL],
            iou_thr=0.5,
            skip_box_thr=0.0,
        )
        fused.append(boxes[scores > 0.5] * scale)  # a majority of the annotators
    return fused


def f1_against(truths: list[np.ndarray], predictions: list[np.ndarray]) -> float:
    tp = n_pred = n_truth = 0
    for truth, pred in zip(truths, predictions, strict=True):
        tp += match(pred, truth).count
        n_pred += len(pred)
        n_truth += len(truth)
    return 2 * tp / (n_pred + n_truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    truths, images = project(args.images)
    boxes = sum(len(b) for image in images for b in image.values())
    print(
        f"{args.images} images, {len(PANEL)} annotators, {boxes / args.images / len(PANEL):.1f} boxes per annotator per image"
    )

    wbf_all(images[:5])  # imports and any just-in-time compilation, outside the clock
    started = time.perf_counter()
    wbf = wbf_all(images)
    wbf_seconds = time.perf_counter() - started

    started = time.perf_counter()
    consensus = [consolidate(image) for image in images]
    consolidate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    report = measure(images, bootstrap=1000, seed=0)
    measure_seconds = time.perf_counter() - started

    print(f"ensemble-boxes WBF (fusion only)                : {wbf_seconds:7.2f} s")
    print(
        f"Quorum consolidate (fusion, quorum, spread)     : {consolidate_seconds:7.2f} s   WBF / this = {wbf_seconds / consolidate_seconds:.2f}x"
    )
    print(
        f"Quorum measure (consolidate + agreement + B=1000): {measure_seconds:7.2f} s   WBF / this = {wbf_seconds / measure_seconds:.2f}x"
    )
    low, high = report.intervals["alpha"]
    print(
        f"  pairwise F1 {report.f1:.4f}, matched IoU {report.mean_iou:.4f}, alpha {report.alpha:.4f} [{low:.4f}, {high:.4f}]"
    )
    print(
        f"F1 against the simulated truth: Quorum consensus {f1_against(truths, [c.boxes for c in consensus]):.4f}, WBF majority {f1_against(truths, wbf):.4f}"
    )


if __name__ == "__main__":
    main()
