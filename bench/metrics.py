"""COCO evaluation benchmark: Quorum's coco_evaluate against pycocotools and faster-coco-eval.

Seeded synthetic pedestrians: 5,000 images of 1920x1080, 20 ground truths and 100
detections each, one category. Detections are mostly jittered copies of the ground truths
(a few per pedestrian) plus false positives anywhere; scores are random. The three
evaluators run on the same inputs in the same process; each gets its own copy, since
pycocotools and faster-coco-eval write into the dicts they are given. Each runs 3 times,
taking turns; prints the median and range of each one's seconds and of the ratios, and
exits non-zero unless the nine numbers equal pycocotools' to 1e-9 and Quorum is at least
as fast as pycocotools (median ratio >= 1). `--images N` runs a smaller set.
"""

import argparse
import contextlib
import io
import statistics
import sys
import time

import numpy as np
from _setup import ROOT

GROUND_TRUTHS = 20
DETECTIONS = 100
TRUE_FRACTION = 0.7  # detections that are jittered copies of a ground truth
WIDTH, HEIGHT = 1920, 1080


def synthetic(images: int, *, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    # pedestrians 30 to 400 px tall, about 0.41 as wide as tall (Caltech's aspect ratio)
    heights = np.exp(rng.uniform(np.log(30), np.log(400), (images, GROUND_TRUTHS)))
    widths = heights * rng.uniform(0.35, 0.47, (images, GROUND_TRUTHS))
    xs = rng.uniform(0, WIDTH - widths)
    ys = rng.uniform(0, HEIGHT - heights)
    truth = np.round(np.stack([xs, ys, widths, heights], axis=-1), 2)
    crowd = rng.random((images, GROUND_TRUTHS)) < 0.02
    true_count = int(DETECTIONS * TRUE_FRACTION)
    source = rng.integers(0, GROUND_TRUTHS, (images, true_count))
    copied = np.take_along_axis(truth, source[..., None], axis=1)
    scale = copied[..., [2, 3, 2, 3]]
    jittered = copied + rng.normal(0, 0.1, copied.shape) * scale
    jittered[..., 2:] = np.maximum(jittered[..., 2:], 1.0)
    false_heights = np.exp(rng.uniform(np.log(20), np.log(400), (images, DETECTIONS - true_count)))
    false_widths = false_heights * 0.41
    false_boxes = np.stack(
        [rng.uniform(0, WIDTH - false_widths), rng.uniform(0, HEIGHT - false_heights), false_widths, false_heights],
        axis=-1,
    )
    boxes = np.concatenate([jittered, false_boxes], axis=1)
    scores = rng.random((images, DETECTIONS))
    gt = {
        "images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT, "file_name": f"{i + 1}.jpg"} for i in range(images)],
        "annotations": [
            {
                "id": i * GROUND_TRUTHS + g + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": truth[i, g].tolist(),
                "area": float(truth[i, g, 2] * truth[i, g, 3]),
                "iscrowd": int(crowd[i, g]),
            }
            for i in range(images)
            for g in range(GROUND_TRUTHS)
        ],
        "categories": [{"id": 1, "name": "pedestrian"}],
    }
    box_lists, score_list = boxes.tolist(), scores.tolist()
    dt = [
        {"image_id": i + 1, "category_id": 1, "bbox": box_lists[i][d], "score": score_list[i][d]}
        for i in range(images)
        for d in range(DETECTIONS)
    ]
    return gt, dt


def copied(gt: dict, dt: list[dict]) -> tuple[dict, list[dict]]:
    annotations = [dict(a, bbox=list(a["bbox"])) for a in gt["annotations"]]
    return dict(gt, annotations=annotations), [dict(d, bbox=list(d["bbox"])) for d in dt]


def quorum(gt: dict, dt: list[dict]) -> list[float]:
    from boxes.metrics import STAT_KEYS, coco_evaluate

    stats = coco_evaluate(gt, dt)
    return [stats[key] for key in STAT_KEYS]


def pycocotools(gt: dict, dt: list[dict]) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(dt), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:9])


def faster_coco_eval(gt: dict, dt: list[dict]) -> list[float]:
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(gt)
        evaluation = COCOeval_faster(coco, coco.loadRes(dt), "bbox", print_function=lambda *a, **k: None)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:9])


def timed(function, gt: dict, dt: list[dict]) -> tuple[float, list[float]]:
    gt, dt = copied(gt, dt)
    started = time.perf_counter()
    stats = function(gt, dt)
    return time.perf_counter() - started, stats


RUNS = 3


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} [{min(values):.2f}, {max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5_000)
    images = parser.parse_args().images
    sys.path.insert(0, str(ROOT))
    gt, dt = synthetic(images)
    print(
        f"coco_evaluate: {images} images, {GROUND_TRUTHS} ground truths and {DETECTIONS} detections each (pedestrian)"
    )
    runs: dict[str, list[float]] = {"quorum": [], "pycocotools": [], "faster": []}
    for _ in range(RUNS):  # taking turns, so that a change in the machine's speed falls on all three
        seconds, ours = timed(quorum, gt, dt)
        runs["quorum"].append(seconds)
        seconds, expected = timed(pycocotools, gt, dt)
        runs["pycocotools"].append(seconds)
        seconds, faster = timed(faster_coco_eval, gt, dt)
        runs["faster"].append(seconds)
    print(f"  seconds, median [range] of {RUNS} runs:")
    print(f"  Quorum coco_evaluate: {spread(runs['quorum'])}")
    print(f"  pycocotools:          {spread(runs['pycocotools'])}")
    print(f"  faster-coco-eval:     {spread(runs['faster'])}")
    over_pycocotools = [r / q for r, q in zip(runs["pycocotools"], runs["quorum"], strict=True)]
    over_faster = [f / q for f, q in zip(runs["faster"], runs["quorum"], strict=True)]
    print(f"  pycocotools / Quorum: {spread(over_pycocotools)}x (target >= 1), "
          f"faster-coco-eval / Quorum: {spread(over_faster)}x")  # fmt: skip
    print("  AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100: " + ", ".join(f"{value:.4f}" for value in ours))
    difference = float(np.max(np.abs(np.subtract(ours, expected))))
    print(
        f"  largest difference from pycocotools: {difference:.1e}, from faster-coco-eval: {np.max(np.abs(np.subtract(ours, faster))):.1e}"
    )
    if not difference <= 1e-9:
        sys.exit(f"coco_evaluate differs from pycocotools by {difference:.3e}: {ours} vs {expected}")
    if statistics.median(over_pycocotools) < 1:
        sys.exit("MISSED: coco_evaluate is slower than pycocotools")


if __name__ == "__main__":
    main()
