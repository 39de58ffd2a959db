"""A trained model measured with Quorum's own evaluator, against the same references as the humans.

The model's detections on a split's images (the stored originals through
`training.runtime`, the ONNX export on the very path serving uses, with a confidence floor
of 0.001 and at most 300 boxes, as a detection benchmark scores) are scored two ways:

- against the consensus version's ground truth: the COCO AP family with ignore regions as
  crowds (`boxes.metrics.coco_evaluate`) and MR-2 (`boxes.metrics.log_average_miss_rate`,
  Caltech "reasonable" and every height);
- against the leave-one-out references of the human baseline (`boxes.baseline.human_baseline`):
  the model's recall at each annotator's precision and miss rate at their FPPI, minus the
  annotator's own, averaged over the panel, with a paired image-bootstrap interval.

Breakdowns: AP50 per image condition, and recall per pedestrian height bin, both for the
model at the panel's mean precision (the score threshold where the model is as precise as
the humans) beside the humans' own recall. Flags name what an ML lead should look at: a
large train-val gap (overfitting), a model worse than the humans, a condition seen in
training with no val image.
"""

import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from django.conf import settings

from boxes.baseline import human_baseline
from boxes.matching import match_by_score
from boxes.metrics import ImageTruth, coco_evaluate, log_average_miss_rate, match_detections
from config.media import storage_read
from datasets.imaging import decode_upright_rgb
from datasets.models import Image
from groundtruth.models import ConsensusVersion, GroundTruthBox, ImageConsensus
from groundtruth.selectors import panels
from training.runtime import OnnxDetector

HEIGHT_BINS = (50.0, 100.0)  # the agreement report's bins: small < 50 px <= medium < 100 px <= large
CONFIDENCE_FLOOR = 0.001
MAX_DETECTIONS = 300
OVERFIT_GAP = 0.15  # train AP50 minus val AP50 above this: flagged
BASELINE_MIN_IMAGES = 5


def detections_predict(
    *, onnx: Path, image_ids: Sequence[int], imgsz: int, sha256: str | None = None
) -> list[np.ndarray]:
    """The model's boxes on each image (m x 5: x1, y1, x2, y2, score in the stored image's
    upright pixels), by the ONNX export through `training.runtime`: the path serving uses."""
    detector = OnnxDetector(onnx, imgsz=imgsz, sha256=sha256)
    files = dict(Image.objects.filter(pk__in=image_ids).values_list("pk", "file"))
    result: list[np.ndarray] = []
    for image_id in image_ids:
        stored = io.BytesIO(storage_read(files[image_id]))
        decoded = decode_upright_rgb(stored, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
        rows = detector.predict(np.asarray(decoded.image), conf=CONFIDENCE_FLOOR, max_det=MAX_DETECTIONS)
        result.append(rows[:, :5])
    return result


def split_images(*, version: ConsensusVersion, split: str, limit: int | None = None) -> list[int]:
    """Ids of the split's images that the version has ground truth for, in id order."""
    ids = ImageConsensus.objects.filter(version=version, image__split=split).order_by("image_id")
    ids = ids.values_list("image_id", flat=True)
    return list(ids[:limit] if limit else ids)


def ground_truth(*, version: ConsensusVersion, image_ids: Sequence[int]) -> list[ImageTruth]:
    """The version's kept boxes of each image (below-quorum clusters left out), ignore regions flagged."""
    rows: dict[int, list] = defaultdict(list)
    for image_id, x1, y1, x2, y2, is_ignore in (
        GroundTruthBox.objects.filter(image_consensus__version=version, is_uncertain=False)
        .filter(image_consensus__image_id__in=image_ids)
        .order_by("pk")
        .values_list("image_consensus__image_id", "x1", "y1", "x2", "y2", "is_ignore")
    ):
        rows[image_id].append((x1, y1, x2, y2, is_ignore))
    truths = []
    for image_id in image_ids:
        array = np.array(rows.get(image_id, []), dtype=float).reshape(-1, 5)
        truths.append(ImageTruth(boxes=array[:, :4], ignore=array[:, 4].astype(bool)))
    return truths


def coco_figures(truths: Sequence[ImageTruth], detections: Sequence[np.ndarray]) -> dict[str, float]:
    """COCO AP family of `detections` against `truths` (ignore regions as crowds), keys in
    lower case: ap, ap50, ap75, aps, apm, apl, ar1, ar10, ar100 (-1: nothing to score)."""
    gt = {"images": [{"id": i + 1} for i in range(len(truths))], "categories": [{"id": 1}], "annotations": []}
    for index, truth in enumerate(truths):
        for box, ignored in zip(truth.boxes, truth.ignore, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": index + 1, "category_id": 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": int(ignored),
            })  # fmt: skip
    dt = [
        {"image_id": index + 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
        for index, rows in enumerate(detections)
        for x1, y1, x2, y2, score in np.asarray(rows, dtype=float).reshape(-1, 5).tolist()
    ]
    return {name.lower(): value for name, value in coco_evaluate(gt, dt).items()}


def model_evaluate(
    *,
    version: ConsensusVersion,
    image_ids: Sequence[int],
    detections: Sequence[np.ndarray],
    train_ap50: float | None = None,
    bootstrap: int = 1000,
) -> dict:
    """The evaluation of a model's `detections` on `image_ids` (one split), as stored on the
    run and the model version (JSON). `train_ap50`: AP50 on train images, for the
    overfitting flag."""
    truths = ground_truth(version=version, image_ids=image_ids)
    coco = coco_figures(truths, detections)
    result = {
        "images": len(image_ids),
        "pedestrians": int(sum((~t.ignore).sum() for t in truths)),
        "coco": {name: _number(value) for name, value in coco.items()},
        "mr2": _number(log_average_miss_rate(truths, detections, setup="reasonable")),
        "mr2_all": _number(log_average_miss_rate(truths, detections, setup="none")),
        "train_ap50": _number(train_ap50),
    }
    result["human"] = _versus_humans(version, image_ids, detections, bootstrap)
    precision = (result["human"] or {}).get("human_mean", {}).get("precision")
    threshold = _score_at_precision(truths, detections, precision) if precision is not None else None
    result["operating_score"] = threshold
    result["by_height"] = _by_height(truths, detections, threshold, result["human"])
    result["by_condition"] = _by_condition(version, image_ids, truths, detections)
    result["flags"] = _flags(version, result)
    return result


def _versus_humans(version, image_ids, detections, bootstrap: int, min_images: int | None = None) -> dict | None:
    by_image = panels(project=version.project, image_ids=list(image_ids), include_not_blind=version.include_not_blind)
    kept = [index for index, image_id in enumerate(image_ids) if len(by_image.get(image_id, {})) >= 2]
    if not kept:
        return None
    annotations = [{a: boxes for a, (boxes, _) in by_image[image_ids[i]].items()} for i in kept]
    baseline = human_baseline(
        annotations,
        model_detections=[detections[i] for i in kept],
        iou_threshold=version.iou_threshold,
        quorum=version.quorum,
        min_images=min(BASELINE_MIN_IMAGES, len(kept)) if min_images is None else min_images,
        height_bins=HEIGHT_BINS,
        bootstrap=bootstrap,
    )
    if baseline.model_mean is None:
        return None
    recall_by_height: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in baseline.annotators.values():
        for label, (found, total) in item.recall_by_height.items():
            recall_by_height[label][0] += found
            recall_by_height[label][1] += total
    model_recall, human_recall = baseline.model_mean.get("recall_at_precision"), baseline.human_mean.get("recall")
    return {
        "images": len(kept),
        "annotators": len(baseline.annotators),
        # the headline: how much of what the panel finds the model finds, at the panel's precision
        "recall_share": _number(model_recall / human_recall) if model_recall is not None and human_recall else None,
        "human_mean": {name: _number(value) for name, value in baseline.human_mean.items()},
        "human_intervals": {name: [_number(v) for v in pair] for name, pair in baseline.human_intervals.items()},
        "model_mean": {name: _number(value) for name, value in baseline.model_mean.items()},
        "gap": {name: _number(value) for name, value in (baseline.gap or {}).items()},
        "gap_intervals": {name: [_number(v) for v in pair] for name, pair in baseline.gap_intervals.items()},
        "human_recall_by_height": {
            label: (found / total if total else None) for label, (found, total) in recall_by_height.items()
        },
    }


def humans_compare(version, image_ids, detections, bootstrap: int = 0, min_images: int | None = None) -> dict | None:
    """The model's detections on `image_ids` beside the panel's leave-one-out figures on the
    same images (`human_mean`, `model_mean`, `gap`, ...); None without a panel of 2.
    `min_images`: the images an annotator must have labelled among them to count (default:
    all of them, up to the baseline's 20); a handful of images of one condition, labelled
    by a panel drawn per image, passes 1, else no annotator would count."""
    return _versus_humans(version, list(image_ids), list(detections), bootstrap, min_images)


def score_at_precision(truths, detections, precision: float) -> float | None:
    return _score_at_precision(truths, detections, precision)


def _score_at_precision(truths, detections, precision: float) -> float | None:
    """The lowest score threshold at which the model's precision over the images is at
    least `precision` (detections matched by score, setup "none"); None when none is."""
    scores, tps = [], []
    for truth, rows in zip(truths, detections, strict=True):
        s, tp, ignored, _ = match_detections(truth, rows, setup="none")
        scores.append(s[~ignored])
        tps.append(tp[~ignored])
    scores = np.concatenate(scores) if scores else np.zeros(0)
    tp = np.concatenate(tps) if tps else np.zeros(0, dtype=bool)
    if not len(scores):
        return None
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    cumulative_precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    # only between distinct scores: a threshold keeps every detection of its score
    last_of_score = np.r_[scores[1:] != scores[:-1], True]
    good = np.flatnonzero(last_of_score & (cumulative_precision >= precision))
    return float(scores[good[-1]]) if len(good) else None


HEIGHT_LABELS = ("<50", "50-100", ">=100")  # as boxes.baseline names the bins of HEIGHT_BINS


def _height_label(height: float) -> str:
    low, high = HEIGHT_BINS
    return HEIGHT_LABELS[0] if height < low else HEIGHT_LABELS[1] if height < high else HEIGHT_LABELS[2]


def _by_height(truths, detections, threshold: float | None, human: dict | None) -> list[dict]:
    """Per height bin: references, the model's recall at the operating score, the humans' recall."""
    counts: dict[str, list[int]] = {label: [0, 0] for label in HEIGHT_LABELS}
    for truth, rows in zip(truths, detections, strict=True):
        rows = np.asarray(rows, dtype=float).reshape(-1, 5)
        kept = rows[rows[:, 4] >= threshold] if threshold is not None else rows[:0]
        found = _found_references(truth, kept)
        for box, is_ignore, is_found in zip(truth.boxes, truth.ignore, found, strict=True):
            if is_ignore:
                continue
            label = _height_label(float(box[3] - box[1]))
            counts[label][1] += 1
            counts[label][0] += int(is_found)
    human_recall = (human or {}).get("human_recall_by_height", {})
    return [  # a list, so that the bins keep their order in JSON columns
        {
            "height": label,
            "references": total,
            "model_recall": found / total if total else None,
            "human_recall": human_recall.get(label),
        }
        for label, (found, total) in counts.items()
    ]


def _found_references(truth: ImageTruth, rows: np.ndarray) -> np.ndarray:
    """Which references a score-ordered matching of `rows` finds (IoU >= 0.5)."""
    result = match_by_score(truth.boxes, rows, ignore=truth.ignore, iou_threshold=0.5)
    found = np.zeros(len(truth.boxes), dtype=bool)
    found[result.matched[result.is_tp]] = True
    return found


def _by_condition(version, image_ids, truths, detections) -> dict:
    """AP50 per condition dimension and value, with the images it rests on."""
    conditions = dict(Image.objects.filter(pk__in=image_ids).values_list("pk", "conditions"))
    groups: dict = defaultdict(lambda: defaultdict(list))
    for index, image_id in enumerate(image_ids):
        for dimension, value in (conditions.get(image_id) or {}).items():
            groups[dimension][value].append(index)
    result: dict = {}
    for dimension, values in sorted(groups.items()):
        result[dimension] = {}
        for value, indices in sorted(values.items()):
            ap50 = coco_figures([truths[i] for i in indices], [detections[i] for i in indices])["ap50"]
            result[dimension][value] = {"images": len(indices), "ap50": _number(ap50) if ap50 >= 0 else None}
    return result


def _flags(version: ConsensusVersion, result: dict) -> list[dict]:
    flags = []
    ap50 = result["coco"].get("ap50")
    if result["train_ap50"] is not None and ap50 is not None and result["train_ap50"] - ap50 > OVERFIT_GAP:
        flags.append({
            "code": "overfitting",
            "message": f"AP50 {result['train_ap50']:.3f} on train images but {ap50:.3f} on val: "
            f"a gap over {OVERFIT_GAP:.2f} suggests overfitting.",
        })  # fmt: skip
    human = result["human"]
    if human and human["gap"].get("recall_gap") is not None and human["gap"]["recall_gap"] < 0:
        low, high = human["gap_intervals"].get("recall_gap", [None, None])
        flags.append({
            "code": "worse_than_human",
            "message": f"Worse than the humans: at their precision the model's recall is "
            f"{-human['gap']['recall_gap']:.3f} below theirs (model minus humans {_fmt(low)} to {_fmt(high)}, 95%).",
        })  # fmt: skip
    missing = _conditions_without_val(version)
    for dimension, value in missing:
        flags.append({
            "code": "condition_without_val",
            "message": f"{dimension}={value} is in the training images but in no val image: "
            "the model is not measured there.",
        })  # fmt: skip
    return flags


def _conditions_without_val(version: ConsensusVersion) -> list[tuple[str, str]]:
    seen: dict[str, set] = {"train": set(), "val": set()}
    for split, conditions in Image.objects.filter(
        project=version.project, split__in=["train", "val"], consensus__version=version
    ).values_list("split", "conditions"):
        seen[split].update((d, v) for d, v in (conditions or {}).items())
    return sorted(seen["train"] - seen["val"])


def _fmt(value) -> str:
    return "?" if value is None else f"{value:+.3f}"


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) or np.isinf(value) else value
