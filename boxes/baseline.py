"""The human-level baseline: how well each annotator does against the others, and how a
model does against the very same references.

Leave one out. For each annotator a and each image a saw with at least one other
annotator, the reference is the consensus of the OTHER annotators who saw it
(`boxes.consensus.consolidate` with the quorum rescaled to n - 1: by default a strict
majority of them; its kept clusters are the pedestrians, its ignore regions are ignored,
its below-quorum clusters are not references). a's boxes are scored against it as a
detector without scores (`boxes.metrics.score_boxes`: Hungarian one-to-one matching at the
IoU threshold; a box in an ignore region counts neither way), giving a's precision,
recall, F1 and FPPI, overall, per image condition and, for recall, per pedestrian height
bin of the reference.

This is how human performance is measured in detection benchmarks whose "ground truth" is
itself human (Zhang, Benenson, Omran, Hosang, Schiele, "How Far Are We from Solving
Pedestrian Detection?", CVPR 2016, who score an independent human annotation against the
reference the same way). Leaving a out is what makes it fair: a's own boxes never vote in
the reference a is scored against.

A model's detections (m x 5 rows: x1, y1, x2, y2, score) on the same images are scored
against the same references, per annotator: AP50 (`boxes.metrics.coco_evaluate`, ignore
regions as crowds), MR-2 (`boxes.metrics.log_average_miss_rate`, "reasonable"), and, on the
model's precision-recall curve (detections matched greedily by score, as every detection
benchmark does, with `boxes.metrics.match_detections`), the model's recall at the human's
precision and its miss rate at the human's FPPI: the best the model does at a score
threshold where it is at least as precise as the human (or makes no more false positives
per image). So the comparison is on one metric at one operating point, not AP against a
human's single point. Thresholds are placed only between distinct scores.

Gaps are model minus human: recall_gap = model recall at the human's precision - human
recall (positive: the model finds more), miss_rate_gap = model miss rate at the human's
FPPI - human miss rate (negative: the model misses less). Panel figures are means over
annotators with their spread (sample standard deviation); intervals come from a paired
image bootstrap: each resample draws images with replacement and rescores the human AND
the model on the same draw (B = 1000, seeded), percentile intervals.
"""

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from boxes.consensus import leave_one_out_references
from boxes.geometry import as_boxes, xyxy_to_xywh
from boxes.metrics import (
    ImageTruth,
    OperatingPoint,
    coco_evaluate,
    log_average_miss_rate,
    match_detections,
    score_boxes,
)

HUMAN_FIGURES = ("precision", "recall", "f1", "fppi", "miss_rate")
MODEL_FIGURES = ("ap50", "mr2", "recall_at_precision", "miss_rate_at_fppi")
GAP_FIGURES = ("recall_gap", "miss_rate_gap")


@dataclass(frozen=True)
class ModelVersus:
    """A model scored against one annotator's leave-one-out references."""

    ap50: float
    mr2: float
    recall_at_precision: float  # best recall at a threshold where precision >= the human's
    miss_rate_at_fppi: float  # lowest miss rate at a threshold where FPPI <= the human's
    score_at_precision: float | None  # keep detections scoring at least this (None: keep none)
    score_at_fppi: float | None
    recall_gap: float  # recall_at_precision - human recall
    miss_rate_gap: float  # miss_rate_at_fppi - human miss rate


@dataclass(frozen=True)
class Habits:
    """Mean offsets of an annotator's boxes from the references they matched. Edges are
    outward positive (left = ref.x1 - box.x1, top = ref.y1 - box.y1, right = box.x2 -
    ref.x2, bottom = box.y2 - ref.y2: a loose annotator has all four positive); shift is
    the box centre minus the reference centre. In pixels and in reference heights."""

    boxes: int
    edges_px: tuple[float, float, float, float]
    shift_px: tuple[float, float]
    edges_heights: tuple[float, float, float, float]
    shift_heights: tuple[float, float]


@dataclass(frozen=True)
class AnnotatorBaseline:
    """One annotator against the consensus of the others, and a model on the same references."""

    annotator: Hashable
    point: OperatingPoint  # against the others' consensus, over the images scored
    intervals: dict[str, tuple[float, float]]  # precision, recall, f1, fppi, miss_rate
    by_condition: dict[Hashable, OperatingPoint]
    recall_by_height: dict[str, tuple[int, int]]  # bin -> (references found, references)
    habits: Habits | None = None  # how their matched boxes sit on the references
    model: ModelVersus | None = None

    @property
    def images(self) -> int:
        return self.point.images

    def figure(self, name: str) -> float:
        return float(getattr(self.point, name))


@dataclass(frozen=True)
class Baseline:
    """The panel: per annotator results, the human mean and spread, the model and the gap."""

    annotators: dict[Hashable, AnnotatorBaseline]
    too_few_images: tuple[Hashable, ...]  # annotators left out: fewer than min_images scored
    human_mean: dict[str, float]
    human_spread: dict[str, float]  # sample standard deviation over annotators (0 with one)
    model_mean: dict[str, float] | None = None
    gap: dict[str, float] | None = None  # mean over annotators of recall_gap and miss_rate_gap
    gap_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    gap_draws: dict[str, np.ndarray] = field(default_factory=dict)  # the panel gap on every resample
    human_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: int = 0
    confidence: float = 0.95
    seed: int = 0


@dataclass
class AnnotatorCounts:
    """One annotator's per-image counts (and, with a model, the model's detections on their
    images). Counts of disjoint sets of images merge (`baseline_counts_merge`), so a large
    project is scored chunk by chunk and summed up once (`baseline_from_counts`)."""

    images: list[int] = field(default_factory=list)  # positions of the images scored
    counts: list[tuple[int, int, int]] = field(default_factory=list)  # tp, fp, fn
    conditions: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    heights: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    offset_sum: np.ndarray = field(default_factory=lambda: np.zeros(12))  # matched boxes' edges and shift
    offset_count: int = 0
    truths: list[ImageTruth] = field(default_factory=list)
    detections: list[np.ndarray] = field(default_factory=list)
    det_image: list[np.ndarray] = field(default_factory=list)  # per scored image: its position
    det_score: list[np.ndarray] = field(default_factory=list)
    det_tp: list[np.ndarray] = field(default_factory=list)


RESAMPLE_BLOCK = 20  # resamples drawn at once: 20 x images weights, whatever the bootstrap (same draws)


def human_baseline(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    model_detections: Sequence[np.ndarray] | None = None,
    iou_threshold: float = 0.5,
    quorum: float | None = None,
    min_images: int = 20,
    conditions: Sequence[Hashable] | None = None,
    height_bins: Sequence[float] = (50.0, 100.0),
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Baseline:
    """The leave-one-out human baseline (see the module docstring), with a model beside it
    when `model_detections` (one m x 5 array per image, x1, y1, x2, y2, score) is given.

    `quorum`: the share of annotators a reference cluster needs (None: a strict majority),
    applied to the n - 1 others. `conditions`: a label per image for the per-condition
    breakdown. `height_bins`: edges in pixels of the reference-height bins for recall.
    Annotators scored on fewer than `min_images` images are left out of the panel figures.
    """
    if model_detections is not None and len(model_detections) != len(annotations_per_image):
        raise ValueError("model_detections must have one array per image")
    if conditions is not None and len(conditions) != len(annotations_per_image):
        raise ValueError("conditions must have one label per image")
    scored = _score(
        annotations_per_image, model_detections=model_detections, iou_threshold=iou_threshold, quorum=quorum,
        conditions=conditions, height_bins=height_bins,
    )  # fmt: skip
    return _summarize(
        scored, images=len(annotations_per_image), with_model=model_detections is not None, min_images=min_images,
        height_bins=height_bins, bootstrap=bootstrap, confidence=confidence, seed=seed,
    )  # fmt: skip


def baseline_counts(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    first_index: int = 0,
    iou_threshold: float = 0.5,
    quorum: float | None = None,
    height_bins: Sequence[float] = (50.0, 100.0),
) -> dict[Hashable, AnnotatorCounts]:
    """Each annotator's counts on these images (no model), the images numbered from
    `first_index`: what `baseline_from_counts` needs, for one chunk of a project."""
    scored = _score(annotations_per_image, iou_threshold=iou_threshold, quorum=quorum, height_bins=height_bins)
    for record in scored.values():
        record.images = [first_index + index for index in record.images]
    return dict(scored)


def baseline_counts_merge(parts: Sequence[Mapping[Hashable, AnnotatorCounts]]) -> dict[Hashable, AnnotatorCounts]:
    """The counts of disjoint chunks of images as one, in the order given (images and
    counts as arrays: a 100,000-image project's are a few MB, not a million tuples)."""
    images: dict[Hashable, list] = defaultdict(list)
    counts: dict[Hashable, list] = defaultdict(list)
    merged: dict[Hashable, AnnotatorCounts] = defaultdict(AnnotatorCounts)
    for part in parts:
        for annotator, record in part.items():
            images[annotator].append(np.asarray(record.images, dtype=np.int64))
            counts[annotator].append(np.asarray(record.counts, dtype=np.int64).reshape(-1, 3))
            total = merged[annotator]
            for label, (found, references) in record.heights.items():
                total.heights[label][0] += found
                total.heights[label][1] += references
            total.offset_sum = total.offset_sum + record.offset_sum
            total.offset_count += record.offset_count
    for annotator, total in merged.items():
        total.images = np.concatenate(images[annotator])
        total.counts = np.concatenate(counts[annotator])
    return dict(merged)


def baseline_from_counts(
    counts: Mapping[Hashable, AnnotatorCounts],
    *,
    images: int,
    min_images: int = 20,
    height_bins: Sequence[float] = (50.0, 100.0),
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Baseline:
    """`human_baseline` (without a model) from merged counts over `images` images: the same
    figures and the same resamples as one pass over them all."""
    return _summarize(
        counts, images=images, with_model=False, min_images=min_images, height_bins=height_bins,
        bootstrap=bootstrap, confidence=confidence, seed=seed,
    )  # fmt: skip


def _score(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    model_detections: Sequence[np.ndarray] | None = None,
    iou_threshold: float,
    quorum: float | None,
    conditions: Sequence[Hashable] | None = None,
    height_bins: Sequence[float],
) -> dict[Hashable, AnnotatorCounts]:
    """Every annotator against the others' consensus, image by image (and the model on
    the same references)."""
    edges = np.asarray(sorted(height_bins), dtype=float)
    labels = _bin_labels(edges)
    scored: dict[Hashable, AnnotatorCounts] = defaultdict(AnnotatorCounts)
    for index, image in enumerate(annotations_per_image):
        if len(image) < 2:
            continue
        references = leave_one_out_references(image, iou_threshold=iou_threshold, quorum_share=quorum)
        for annotator in image:
            # the others' kept clusters; boxes carry no ignore flags here, so no ignore regions
            truth, regions = references[annotator], np.zeros((0, 4))
            result, false_positives = score_boxes(truth, image[annotator], ignore=regions, iou_threshold=iou_threshold)
            record = scored[annotator]
            counts = (result.count, false_positives, len(truth) - result.count)
            record.images.append(index)
            record.counts.append(counts)
            if conditions is not None:
                totals = record.conditions[conditions[index]]
                for k, value in enumerate((*counts, 1)):
                    totals[k] += value
            found = np.zeros(len(truth), dtype=bool)
            found[result.pairs[:, 1]] = True
            if len(result.pairs):
                mine = as_boxes(image[annotator])[result.pairs[:, 0]]
                offsets = _offsets(mine, truth[result.pairs[:, 1]])
                record.offset_sum = record.offset_sum + offsets.sum(axis=0)
                record.offset_count += len(offsets)
            bins = np.searchsorted(edges, truth[:, 3] - truth[:, 1], side="right")
            for bin_index, was_found in zip(bins.tolist(), found.tolist(), strict=True):
                record.heights[labels[bin_index]][0] += int(was_found)
                record.heights[labels[bin_index]][1] += 1
            if model_detections is not None:
                detections = np.asarray(model_detections[index], dtype=float).reshape(-1, 5)
                image_truth = ImageTruth(
                    boxes=np.vstack([truth, regions]),
                    ignore=np.concatenate([np.zeros(len(truth), bool), np.ones(len(regions), bool)]),
                )
                scores, is_tp, is_ignored, _ = match_detections(
                    image_truth, detections, setup="none", iou_threshold=iou_threshold
                )
                record.truths.append(image_truth)
                record.detections.append(detections)
                record.det_image.append(np.full(int((~is_ignored).sum()), len(record.images) - 1))
                record.det_score.append(scores[~is_ignored])
                record.det_tp.append(is_tp[~is_ignored])
    return scored


def _summarize(
    scored: Mapping[Hashable, AnnotatorCounts],
    *,
    images: int,
    with_model: bool,
    min_images: int,
    height_bins: Sequence[float],
    bootstrap: int,
    confidence: float,
    seed: int,
) -> Baseline:
    """Per annotator figures, the panel's mean and spread, and the image bootstrap (drawn
    `RESAMPLE_BLOCK` resamples at a time, so memory stays at 20 x images)."""
    labels = _bin_labels(np.asarray(sorted(height_bins), dtype=float))
    kept = {a: record for a, record in scored.items() if len(record.images) >= min_images}
    too_few = tuple(sorted((a for a in scored if a not in kept), key=repr))
    order = sorted(kept, key=repr)
    counts = {a: np.array(kept[a].counts, dtype=float).reshape(-1, 3) for a in order}
    positions = {a: np.asarray(kept[a].images, dtype=int) for a in order}
    points = {a: OperatingPoint(*(int(v) for v in counts[a].sum(axis=0)), images=len(positions[a])) for a in order}
    versus = {a: _versus_model(kept[a], points[a], counts[a]) for a in order} if with_model else {}
    human_draws: dict = {a: {name: [] for name in HUMAN_FIGURES} for a in order}
    gap_draws: dict = {a: {name: [] for name in GAP_FIGURES} for a in order}
    if bootstrap and images:
        rng = np.random.default_rng(seed)
        for start in range(0, bootstrap, RESAMPLE_BLOCK):
            weights = _resample_weights(rng, min(RESAMPLE_BLOCK, bootstrap - start), images)
            for annotator in order:
                image_weights = weights[:, positions[annotator]]
                resampled = _human_figures(image_weights @ counts[annotator], image_weights.sum(axis=1))
                for name in HUMAN_FIGURES:
                    human_draws[annotator][name].append(resampled[name])
                if with_model:
                    gaps = _model_gaps(versus[annotator][1], image_weights, resampled)
                    for name in GAP_FIGURES:
                        gap_draws[annotator][name].append(gaps[name])
    human_draws = {a: {name: _joined(values) for name, values in draws.items()} for a, draws in human_draws.items()}
    results: dict[Hashable, AnnotatorBaseline] = {}
    for annotator in order:
        record = kept[annotator]
        results[annotator] = AnnotatorBaseline(
            annotator=annotator,
            point=points[annotator],
            intervals={name: _interval(human_draws[annotator][name], confidence) for name in HUMAN_FIGURES}
            if bootstrap
            else {},
            by_condition={
                condition: OperatingPoint(*totals[:3], images=totals[3])
                for condition, totals in sorted(record.conditions.items(), key=lambda item: repr(item[0]))
            },
            recall_by_height={label: tuple(record.heights[label]) for label in labels if label in record.heights},
            habits=_habits(record.offset_sum, record.offset_count),
            model=versus[annotator][0] if with_model else None,
        )

    human_mean, human_spread = _mean_and_spread(
        {name: [r.figure(name) for r in results.values()] for name in HUMAN_FIGURES}
    )
    baseline = Baseline(
        annotators=results,
        too_few_images=too_few,
        human_mean=human_mean,
        human_spread=human_spread,
        human_intervals={
            name: _interval(np.mean([human_draws[a][name] for a in order], axis=0), confidence)
            for name in HUMAN_FIGURES
            if order
        }
        if bootstrap
        else {},
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
    )
    if not with_model or not results:
        return baseline
    model_mean, _ = _mean_and_spread(
        {name: [getattr(r.model, name) for r in results.values()] for name in MODEL_FIGURES}
    )
    gap, _ = _mean_and_spread({name: [getattr(r.model, name) for r in results.values()] for name in GAP_FIGURES})
    panel_draws = (
        {name: np.mean([_joined(gap_draws[a][name]) for a in order], axis=0) for name in GAP_FIGURES}
        if bootstrap
        else {}
    )
    return Baseline(
        **{
            **baseline.__dict__,
            "model_mean": model_mean,
            "gap": gap,
            "gap_intervals": {name: _interval(draws, confidence) for name, draws in panel_draws.items()},
            "gap_draws": panel_draws,
        }
    )


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros(0)


def _offsets(boxes: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Per matched pair: four outward edge offsets and the centre shift, in px then in reference heights."""
    edges = np.column_stack(
        [references[:, 0] - boxes[:, 0], references[:, 1] - boxes[:, 1], boxes[:, 2] - references[:, 2],
         boxes[:, 3] - references[:, 3]]
    )  # fmt: skip
    shift = (boxes[:, :2] + boxes[:, 2:]) / 2 - (references[:, :2] + references[:, 2:]) / 2
    height = np.maximum(references[:, 3] - references[:, 1], 1e-9)[:, None]
    return np.hstack([edges, shift, edges / height, shift / height])


def _habits(offset_sum: np.ndarray, offset_count: int) -> Habits | None:
    if not offset_count:
        return None
    mean = offset_sum / offset_count
    return Habits(
        boxes=offset_count,
        edges_px=tuple(float(v) for v in mean[:4]),
        shift_px=tuple(float(v) for v in mean[4:6]),
        edges_heights=tuple(float(v) for v in mean[6:10]),
        shift_heights=tuple(float(v) for v in mean[10:12]),
    )


def _versus_model(record: AnnotatorCounts, point: OperatingPoint, counts: np.ndarray) -> tuple[ModelVersus, Callable]:
    """The model against one annotator's references: the point figures, and the curve that
    gives them for rows of image weights (`_model_gaps` calls it on bootstrap resamples)."""
    image_of = np.concatenate(record.det_image) if record.det_image else np.zeros(0, dtype=int)
    scores = np.concatenate(record.det_score) if record.det_score else np.zeros(0)
    is_tp = np.concatenate(record.det_tp) if record.det_tp else np.zeros(0, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    image_of, scores, is_tp = image_of[order], scores[order], is_tp[order]
    # A threshold can only cut between distinct scores: the curve's points are the last
    # detection of each run of equal scores.
    cut = np.append(scores[1:] != scores[:-1], True) if len(scores) else np.zeros(0, dtype=bool)
    positives = counts[:, 0] + counts[:, 2]  # references per image (tp + fn)

    def curve(weights_per_image: np.ndarray, human_precision, human_fppi):
        """recall at the human's precision and miss rate at the human's FPPI, for each
        row of image weights (the data: one row of ones)."""
        det_weights = weights_per_image[:, image_of]
        tp = np.cumsum(det_weights * is_tp, axis=1)
        fp = np.cumsum(det_weights * ~is_tp, axis=1)
        total = weights_per_image @ positives
        images = weights_per_image.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
            fppi = fp / images[:, None]
            recall = np.where(total[:, None] > 0, tp / total[:, None], 1.0)
        at_precision = np.where(cut & (precision >= human_precision[:, None] - 1e-12), recall, -1.0)
        at_fppi = np.where(cut & (fppi <= human_fppi[:, None] + 1e-12), recall, -1.0)
        best_p = at_precision.max(axis=1, initial=-1.0)
        best_f = at_fppi.max(axis=1, initial=-1.0)
        # No qualifying threshold: the model keeps nothing, recall 0 (miss rate 1).
        recall_at_p = np.maximum(best_p, 0.0)
        miss_at_f = 1.0 - np.maximum(best_f, 0.0)
        return recall_at_p, miss_at_f, at_precision, at_fppi

    ones = np.ones((1, len(record.images)))
    recall_at_p, miss_at_f, at_precision, at_fppi = curve(ones, np.array([point.precision]), np.array([point.fppi]))
    score_at_precision = float(scores[np.argmax(at_precision[0])]) if at_precision[0].max(initial=-1) >= 0 else None
    score_at_fppi = float(scores[np.argmax(at_fppi[0])]) if at_fppi[0].max(initial=-1) >= 0 else None
    coco_gt, coco_dt = _coco(record)
    model = ModelVersus(
        ap50=coco_evaluate(coco_gt, coco_dt)["AP50"],
        mr2=log_average_miss_rate(record.truths, record.detections, setup="reasonable"),
        recall_at_precision=float(recall_at_p[0]),
        miss_rate_at_fppi=float(miss_at_f[0]),
        score_at_precision=score_at_precision,
        score_at_fppi=score_at_fppi,
        recall_gap=float(recall_at_p[0] - point.recall),
        miss_rate_gap=float(miss_at_f[0] - point.miss_rate),
    )
    return model, curve


def _model_gaps(curve: Callable, image_weights: np.ndarray, human: dict) -> dict[str, np.ndarray]:
    """Per resample (rows of `image_weights`), the model's recall at the human's precision
    minus the human's recall, and its miss rate at the human's FPPI minus theirs."""
    recall_draws, miss_draws = [], []
    for start in range(0, len(image_weights), 50):
        chunk = image_weights[start : start + 50]
        r, m, _, _ = curve(chunk, human["precision"][start : start + 50], human["fppi"][start : start + 50])
        recall_draws.append(r)
        miss_draws.append(m)
    return {
        "recall_gap": _joined(recall_draws) - human["recall"],
        "miss_rate_gap": _joined(miss_draws) - human["miss_rate"],
    }


def _coco(record: AnnotatorCounts) -> tuple[dict, list]:
    """The references and the model's detections of one annotator's images as COCO data
    (ignore regions as crowds), for AP50."""
    images, annotations, results = [], [], []
    for position, (truth, detections) in enumerate(zip(record.truths, record.detections, strict=True)):
        images.append({"id": position + 1})
        boxes = xyxy_to_xywh(truth.boxes)
        for box, crowd in zip(boxes.tolist(), truth.ignore.tolist(), strict=True):
            annotations.append(
                {"id": len(annotations) + 1, "image_id": position + 1, "category_id": 1, "bbox": box,
                 "area": box[2] * box[3], "iscrowd": int(crowd)}
            )  # fmt: skip
        for box, score in zip(xyxy_to_xywh(detections[:, :4]).tolist(), detections[:, 4].tolist(), strict=True):
            results.append({"image_id": position + 1, "category_id": 1, "bbox": box, "score": score})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}]}, results


def _human_figures(totals: np.ndarray, images: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1, fppi, miss_rate for rows of (tp, fp, fn) sums, as OperatingPoint defines them."""
    tp, fp, fn = totals[:, 0], totals[:, 1], totals[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 1.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 1.0)
        fppi = np.where(images > 0, fp / images, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "fppi": fppi, "miss_rate": 1.0 - recall}


def _resample_weights(rng: np.random.Generator, bootstrap: int, count: int) -> np.ndarray:
    """bootstrap x count: how many times each image is drawn in each resample."""
    picks = rng.integers(0, count, size=(bootstrap, count))
    flat = (picks + np.arange(bootstrap)[:, None] * count).ravel()
    return np.bincount(flat, minlength=bootstrap * count).reshape(bootstrap, count).astype(float)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    defined = np.asarray(draws)[~np.isnan(draws)]
    if not len(defined):
        return (float("nan"), float("nan"))
    return (
        float(np.percentile(defined, 50 * (1 - confidence))),
        float(np.percentile(defined, 50 * (1 + confidence))),
    )


def _mean_and_spread(values: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, float]]:
    mean, spread = {}, {}
    for name, column in values.items():
        array = np.array(column, dtype=float)
        mean[name] = float(np.mean(array)) if len(array) else float("nan")
        spread[name] = float(np.std(array, ddof=1)) if len(array) > 1 else 0.0
    return mean, spread


def _bin_labels(edges: np.ndarray) -> list[str]:
    """Names of the height bins cut at `edges`: "<50", "50-100", ">=100"."""
    if not len(edges):
        return ["all"]
    names = [f"<{edges[0]:g}"]
    names += [f"{low:g}-{high:g}" for low, high in pairwise(edges.tolist())]
    return [*names, f">={edges[-1]:g}"]


def as_detections(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """xyxy boxes and their scores as the m x 5 rows `human_baseline` takes."""
    return np.column_stack([as_boxes(boxes), np.asarray(scores, dtype=float).reshape(-1)])
