"""Consensus benchmark: a 10,000-image project, 5 annotators, about 12 boxes each.

Quorum's whole-project pass (`boxes.agreement.measure`: complete-linkage consolidation
with one box per annotator per cluster, quorum, fusion, spread, pairwise F1 and IoU,
Krippendorff's alpha, per-image figures and 1,000 bootstrap resamples) against the
reference measured in the same run on the same boxes: ensemble-boxes' weighted boxes
fusion (Solovyev et al., 2021), which only fuses. Also prints each method's F1 against the
simulated truth (WBF boxes kept when a majority of annotators are in them).

Then the annotators' reliability (boxes.reliability, a soft EM) on simulated panels with
known truth, k = 3, 5 and 7, eighteen habit mixes (400 images): F1 against the truth of
the plain majority, the weighted consensus, the best single annotator, the weighted
consensus with rates measured against the truth (every image gold: the ceiling), and the
hard EM Quorum used before (bench/_hard_em.py); the largest gap of an annotator's
estimated rates from those measured against the truth; the same two with 30 gold images.
Then gold anchoring where the EM alone misjudges a poor annotator (target: within 0.03 of
the truth on at least four of five draws). Then the time of the estimate on the
10,000-image project, soft (with and without its 200 bootstrap resamples) against the hard
EM, 3 runs each (median [range]). Targets: on every panel the weighted consensus is at
least the plain majority's F1 and the best annotator's minus 0.005; the soft estimate takes
at most 2x the hard one. Exits 1 when one is missed.

    python bench/consensus.py [--images N] [--panel-images N]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hard_em import hard_em_reliability

from boxes.agreement import measure
from boxes.consensus import consolidate
from boxes.matching import match
from boxes.reliability import estimate_reliability
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


MIXES = {
    3: [["careful", "loose", "hasty"], ["average", "sloppy", "hasty"], ["careful", "tight", "shifted"],
        ["sloppy", "poor", "hasty"], ["average", "hasty", "trigger-happy"], ["misses-small", "sloppy", "careful"],
        ["average", "loose", "misses-occluded"], ["average", "average", "poor"]],
    5: [["average", "hasty", "sloppy", "poor", "careful"], ["careful", "loose", "tight", "shifted", "sloppy"],
        ["average", "average", "hasty", "sloppy", "poor"], ["misses-small", "misses-occluded", "hasty", "loose", "tight"],
        ["trigger-happy", "trigger-happy", "hasty", "hasty", "average"]],
    7: [["average", "average", "hasty", "hasty", "sloppy", "sloppy", "poor"],
        ["careful", "tight", "poor", "trigger-happy", "loose", "sloppy", "misses-occluded"],
        ["hasty", "hasty", "hasty", "sloppy", "sloppy", "poor", "poor"],
        ["average", "loose", "tight", "shifted", "misses-small", "trigger-happy", "hasty"],
        ["careful", "average", "hasty", "trigger-happy", "sloppy", "misses-small", "loose"]],
}  # fmt: skip


def panel(
    names: list[str], count: int, seed: int, people=(1, 8), tall=(30, 300)
) -> tuple[list[np.ndarray], list[dict]]:
    """Scenes of 1 to 8 pedestrians (`people`) 30 to 300 px high (`tall`) at 1280 x 720, as
    the tests draw them; a habit may repeat."""
    rng = np.random.default_rng(seed)
    truths, images = [], []
    for _ in range(count):
        n = int(rng.integers(people[0], people[1] + 1))
        heights = np.exp(rng.uniform(np.log(tall[0]), np.log(tall[1]), n))
        x, y = rng.uniform(0, 1280 - heights * 0.4), rng.uniform(0, 720 - heights)
        truth = np.column_stack([x, y, x + heights * 0.4, y + heights])
        truths.append(truth)
        drawn = [simulate_annotator(truth, profile=PROFILES[n], rng=rng, width=1280, height=720) for n in names]
        images.append({f"{name}#{i}": d.boxes for i, (name, d) in enumerate(zip(names, drawn, strict=True))})
    return truths, images


def reliability_table(count: int) -> list[str]:
    """F1 against the truth per panel; the targets it misses."""
    import dataclasses

    missed = []
    print(f"\nReliability on simulated panels ({count} images each), F1 against the truth:")
    print(
        f"{'k':>2}  {'panel':58}{'plain':>7}{'soft EM':>9}{'used':>6}{'best one':>10}{'ceiling':>9}{'hard EM':>9}"
        f"{'rate error':>12}{'+30 gold':>10}{'rate error':>12}"
    )
    for k, mixes in MIXES.items():
        for names in mixes:
            truths, images = panel(names, count, seed=len(names) * 7 + 1)
            soft = estimate_reliability(images, bootstrap=0)
            truth_rates = estimate_reliability(images, gold=dict(enumerate(truths)), bootstrap=0)
            ceiling = dataclasses.replace(truth_rates, used=True)
            hard = hard_em_reliability(images)
            best = max(f1_against(truths, [image[a] for image in images]) for a in images[0])
            plain = f1_against(truths, [consolidate(image).boxes for image in images])
            weighted = f1_against(truths, [consolidate(image, weights=soft).boxes for image in images])
            top = f1_against(truths, [consolidate(image, weights=ceiling).boxes for image in images])
            old = f1_against(truths, [consolidate(image, weights=hard).boxes for image in images])
            error = max(rate_error(truths, images, a, rates) for a, rates in soft.annotators.items())
            anchored = estimate_reliability(images, gold={i: truths[i] for i in range(30)}, bootstrap=0)
            golden = f1_against(truths, [consolidate(image, weights=anchored).boxes for image in images])
            gold_error = max(rate_error(truths, images, a, rates) for a, rates in anchored.annotators.items())
            print(f"{k:>2}  {', '.join(names):58}{plain:7.3f}{weighted:9.3f}{'yes' if soft.used else 'no':>6}"
                  f"{best:10.3f}{top:9.3f}{old:9.3f}{error:12.3f}{golden:10.3f}{gold_error:12.3f}")  # fmt: skip
            if weighted < plain - 1e-12 or weighted < best - 0.005:
                missed.append(f"{', '.join(names)}: soft EM {weighted:.3f} against plain {plain:.3f}, best {best:.3f}")
    return missed


def gold_table(count: int) -> list[str]:
    """A panel where the EM alone misjudges a poor annotator: a far street camera (crowds of
    8 to 16 pedestrians 25 to 80 px high) and two annotators who skip the same small ones.
    The poor annotator's larger rate gap from the truth, alone and with 30 gold images, over
    five draws. Target: with gold, within 0.03 on at least four of five."""
    names = ["misses-small", "misses-small", "poor"]
    print(f"\nGold anchoring: {', '.join(names)}, far camera, {count} images, the poor annotator's rate gap:")
    print(f"{'draw':>6}{'EM alone':>10}{'+30 gold':>10}")
    gaps = []
    for seed in range(5):
        truths, images = panel(names, count, seed, people=(8, 16), tall=(25, 80))
        alone = estimate_reliability(images, bootstrap=0).annotators["poor#2"]
        anchored = estimate_reliability(images, gold={i: truths[i] for i in range(30)}, bootstrap=0)
        gaps.append(rate_error(truths, images, "poor#2", anchored.annotators["poor#2"]))
        print(f"{seed:>6}{rate_error(truths, images, 'poor#2', alone):10.3f}{gaps[-1]:10.3f}")
    within = sum(gap <= 0.03 for gap in gaps)
    return [] if within >= 4 else [f"gold brings the poor annotator within 0.03 on {within} of 5 draws"]


def rate_error(truths, images, annotator, rates) -> float:
    """The larger gap of the annotator's estimated false-positive and miss rates from those
    measured against the truth (boxes matched one to one at IoU 0.5)."""
    matched = drawn = real = 0
    for truth, image in zip(truths, images, strict=True):
        matched += match(image[annotator], truth).count
        drawn += len(image[annotator])
        real += len(truth)
    false_positive, miss = 1 - matched / max(drawn, 1), 1 - matched / max(real, 1)
    return max(abs(rates.false_positive_rate - false_positive), abs(rates.miss_rate - miss))


def timed(function, repeats: int = 3) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def spread(values: list[float]) -> str:
    return f"{np.median(values):7.2f} s [{min(values):.2f}-{max(values):.2f}]"


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
    parser.add_argument("--panel-images", type=int, default=400)
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

    missed = reliability_table(args.panel_images)
    missed += gold_table(300)
    print(f"\nThe estimate on {args.images} images x {len(PANEL)} annotators, 3 runs each:")
    hard = timed(lambda: hard_em_reliability(images))
    soft = timed(lambda: estimate_reliability(images, bootstrap=0))
    soft_intervals = timed(lambda: estimate_reliability(images))
    ratio = np.median(soft_intervals) / np.median(hard)
    print(f"  hard EM (the reference)            : {spread(hard)}")
    print(
        f"  soft EM, no intervals              : {spread(soft)}   soft / hard = {np.median(soft) / np.median(hard):.2f}x"
    )
    print(f"  soft EM, 200 bootstrap resamples   : {spread(soft_intervals)}   soft / hard = {ratio:.2f}x")
    if ratio > 2:
        missed.append(f"the soft estimate takes {ratio:.2f}x the hard one")
    print("targets met" if not missed else "targets missed: " + "; ".join(missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
