"""The agreement report of a consensus version: how good the humans are, where they
disagree, and what "human-level" means for this project. Built once, when the version is
computed, and stored as JSON (`AgreementReport`); pages and downloads read it.
"""

from collections import defaultdict

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Avg, Case, Count, ExpressionWrapper, F, FloatField, Max, Q, When

from boxes.baseline import Baseline, baseline_counts, baseline_counts_merge, baseline_from_counts
from boxes.estimates import Reliability
from datasets.models import Image
from groundtruth.chunks import ReportCounts
from groundtruth.models import (
    AgreementReport,
    Annotation,
    AnnotationKind,
    BoxSource,
    ConsensusVersion,
    GroundTruthBox,
    ImageState,
)
from groundtruth.selectors import gold_scores

HEIGHT_BINS = (50.0, 100.0)  # small < 50 px <= medium < 100 px <= large
IOU_EDGES = np.round(np.linspace(0.0, 1.0, 21), 2)
LEAST_AGREED = 25
BASELINE_MIN_IMAGES = 10
FIGURES = ("precision", "recall", "f1", "fppi")


def _not_blind(version: ConsensusVersion) -> dict:
    """The project's current submissions by members with review rights (not blind): how
    many, by how many people, and whether this version counted them."""
    submissions = Annotation.objects.filter(
        image__project=version.project, kind=AnnotationKind.SUBMISSION, is_current=True, is_blind=False
    )
    return {
        "included": version.include_not_blind,
        "submissions": submissions.count(),
        "annotators": submissions.values("annotator").distinct().count(),
    }


def report_counts(annotations: list[dict], *, first_index: int) -> ReportCounts:
    """What the report needs from one chunk of a version's images (numbered from
    `first_index` among them): the leave-one-out baseline's counts, and how many images
    each annotator saw."""
    seen: dict[int, int] = defaultdict(int)
    for panel in annotations:
        for annotator in panel:
            seen[annotator] += 1
    return ReportCounts(
        baseline=baseline_counts(annotations, first_index=first_index, height_bins=HEIGHT_BINS),
        annotator_images=dict(seen),
    )


def report_baseline(parts: list[ReportCounts], *, images: int) -> tuple[Baseline, dict[int, int]]:
    """The human baseline over `images` images from its chunks' counts (the same as one
    pass over them), and the images each annotator saw."""
    seen: dict[int, int] = defaultdict(int)
    for part in parts:
        for annotator, count in part.annotator_images.items():
            seen[annotator] += count
    merged = baseline_counts_merge([part.baseline for part in parts])
    baseline = baseline_from_counts(
        merged, images=images, min_images=BASELINE_MIN_IMAGES, height_bins=HEIGHT_BINS, bootstrap=1000
    )
    return baseline, dict(seen)


def iou_histogram_counts(ious: np.ndarray) -> np.ndarray:
    """IoU of every annotator box with the consensus box of its cluster, counted in 0.05 bins."""
    counts, _ = np.histogram(ious, bins=IOU_EDGES)
    return counts


def agreement_report_build(
    *,
    version: ConsensusVersion,
    image_ids: list[int],
    reliability: Reliability | None,
    report,
    baseline: tuple[Baseline, dict[int, int]],
    iou_counts: np.ndarray,
) -> AgreementReport:
    """Compute and store the report of `version` over its images `image_ids` (in id
    order) from `report` (their `boxes.agreement` report), `baseline` (`report_baseline`)
    and `iou_counts` (`iou_histogram_counts` of every box in a kept cluster)."""
    baseline, annotator_images = baseline
    annotator_ids = sorted(annotator_images)
    names = dict(get_user_model().objects.filter(pk__in=annotator_ids).values_list("pk", "username"))
    conditions = dict(Image.objects.filter(project=version.project).values_list("pk", "conditions"))
    states = dict(version.images.values_list("image_id", "state"))

    data = {
        "version": version.number,
        "parameters": {
            "iou_threshold": version.iou_threshold,
            "quorum": version.quorum,
            "fuse": version.fuse,
            "reliability_weighted": version.reliability_weighted,
            "include_not_blind": version.include_not_blind,
        },
        "not_blind": _not_blind(version),
        "dataset": _dataset(report, states),
        "baseline": _baseline(baseline, names),
        "annotators": _annotators(baseline, annotator_images, names, reliability, version),
        "reliability": _reliability(reliability),
        "pairwise": _pairwise(report, names),
        "iou_histogram": {"edges": IOU_EDGES.tolist(), "counts": np.asarray(iou_counts).tolist()},
        "by_condition": _by_condition(image_ids, conditions, report, states),
        "by_height": _by_height(version),
        "over_time": _over_time(version, image_ids, report),
        "least_agreed": [
            {
                "image": image_ids[i],
                "f1": _number(report.images.f1[i]),
                "alpha": _number(report.images.alpha[i]),
                "state": states.get(image_ids[i]),
            }
            for i in report.images.least_agreed(LEAST_AGREED).tolist()
        ],
    }
    row, _ = AgreementReport.objects.update_or_create(version=version, defaults={"data": data})
    return row


def _dataset(report, states: dict) -> dict:
    counts = {state.value: 0 for state in ImageState}
    for state in states.values():
        counts[state] += 1
    return {
        "images": len(report.images.f1),
        "pairwise_f1": _number(report.f1),
        "mean_pair_f1": _number(report.mean_pair_f1),
        "mean_iou": _number(report.mean_iou),
        "alpha": _number(report.alpha),
        "intervals": {name: [_number(low), _number(high)] for name, (low, high) in report.intervals.items()},
        "states": counts,
        "confidence": report.confidence,
        "bootstrap": report.bootstrap,
    }


def _baseline(result, names: dict) -> dict:
    """The leave-one-out human baseline: every annotator against the others."""
    return {
        "annotators": [
            {
                "id": annotator,
                "name": names.get(annotator, str(annotator)),
                "images": item.images,
                **{name: _number(item.figure(name)) for name in FIGURES},
                "intervals": {name: [_number(v) for v in item.intervals[name]] for name in FIGURES},
                "recall_by_height": {
                    label: (found / total if total else None) for label, (found, total) in item.recall_by_height.items()
                },
            }
            for annotator, item in result.annotators.items()
        ],
        "too_few_images": [names.get(a, str(a)) for a in result.too_few_images],
        "mean": {name: _number(value) for name, value in result.human_mean.items()},
        "spread": {name: _number(value) for name, value in result.human_spread.items()},
        "intervals": {name: [_number(v) for v in values] for name, values in result.human_intervals.items()},
    }  # fmt: skip


def _annotators(baseline, annotator_images: dict[int, int], names, reliability, version) -> list[dict]:
    """Per annotator: images, speed, gold score, habits and EM reliability (when weighted). Habits are
    the mean offsets of their boxes from the consensus of the OTHER annotators (leave one
    out, so that their own boxes do not pull the reference towards them; see
    `boxes.baseline.Habits`), over their boxes matched at the threshold."""
    gold = gold_scores(project=version.project)
    speed = dict(
        Annotation.objects.filter(
            image__project=version.project,
            image_id__in=version.images.values("image_id"),
            kind=AnnotationKind.SUBMISSION,
            is_current=True,
        )
        .values("annotator_id")
        .annotate(seconds=Avg("active_seconds"), images=Count("id"))
        .values_list("annotator_id", "seconds")
    )
    rows = []
    for annotator in sorted(annotator_images):
        scored = baseline.annotators.get(annotator)
        habits = scored.habits if scored is not None else None
        rates = reliability.annotators.get(annotator) if reliability is not None else None
        rows.append(
            {
                "id": annotator,
                "name": names.get(annotator, str(annotator)),
                "images": annotator_images[annotator],
                "seconds_per_image": _number(speed.get(annotator)),
                "gold": gold[annotator].as_dict() if annotator in gold else None,
                "boxes_matched": habits.boxes if habits else 0,
                "edge_offsets_px": _sides(habits.edges_px if habits else None),
                "shift_px": _xy(habits.shift_px if habits else None),
                "edge_offsets_heights": _sides(habits.edges_heights if habits else None),
                "shift_heights": _xy(habits.shift_heights if habits else None),
                "reliability": None
                if rates is None
                else {
                    "false_positive_rate": rates.false_positive_rate,
                    "miss_rate": rates.miss_rate,
                    "boundary_noise": rates.boundary_noise,
                    "false_alarm_rate": rates.false_alarm_rate,
                    "spurious_per_image": rates.spurious_per_image,
                    "intervals": rates.intervals,
                    "gold_images": rates.gold_images,
                },
            }
        )
    return rows


def _reliability(reliability: Reliability | None) -> dict | None:
    """How the weighting went: whether it was used and why, and the fit behind it."""
    if reliability is None:
        return None
    return {
        "used": reliability.used,
        "reason": reliability.reason,
        "prior": reliability.prior,
        "log_likelihood": reliability.log_likelihood,
        "criterion": reliability.criterion,
        "iterations": reliability.iterations,
        "converged": reliability.converged,
        # the posterior a cluster must pass to be kept (0.5 for estimates made before the cut)
        "keep_above": float(1 / (1 + np.exp(-reliability.keep_above))),
    }


def _pairwise(report, names: dict) -> dict:
    """The annotator x annotator F1 matrix, annotators by name."""
    agreement = report.pairwise
    matrix = agreement.f1_matrix
    order = sorted(range(len(agreement.annotators)), key=lambda i: names.get(agreement.annotators[i], ""))
    return {
        "annotators": [names.get(agreement.annotators[i], str(agreement.annotators[i])) for i in order],
        "ids": [agreement.annotators[i] for i in order],
        "f1": [[_number(matrix[i, j]) for j in order] for i in order],
    }


def _sides(values) -> dict:
    return dict(zip(("left", "top", "right", "bottom"), map(_number, values or (None,) * 4), strict=True))


def _xy(values) -> dict:
    return dict(zip(("x", "y"), map(_number, values or (None,) * 2), strict=True))


def _by_height(version: ConsensusVersion) -> dict:
    """Per pedestrian height bin (of the consensus box): clusters, the share every annotator
    boxed, and the share below the quorum (sent to review). Counted in the database: a
    100,000-image version has a million boxes."""
    low, high = HEIGHT_BINS
    height = ExpressionWrapper(F("y2") - F("y1"), output_field=FloatField())
    figures = (
        GroundTruthBox.objects.filter(image_consensus__version=version, is_ignore=False, source=BoxSource.CONSENSUS)
        .annotate(height=height)
        .annotate(bin=Case(When(height__lt=low, then=0), When(height__lt=high, then=1), default=2))
        .values("bin")
        .annotate(
            clusters=Count("id"),
            unanimous=Count("id", filter=Q(support__gte=F("image_consensus__annotators"))),
            below_quorum=Count("id", filter=Q(is_uncertain=True)),
        )
    )
    rows = {row["bin"]: row for row in figures}
    result = {}
    for index, label in enumerate(height_labels()):
        row = rows.get(index)
        clusters = row["clusters"] if row else 0
        result[label] = {
            "clusters": clusters,
            "unanimous": row["unanimous"] / clusters if clusters else None,
            "below_quorum": row["below_quorum"] / clusters if clusters else None,
        }
    return result


def height_labels() -> list[str]:
    """The height bins' labels, smallest first (a JSON column does not keep their order)."""
    low, high = HEIGHT_BINS
    return [f"<{low:g}", f"{low:g}-{high:g}", f">={high:g}"]


def _over_time(version: ConsensusVersion, image_ids: list[int], report) -> list[dict]:
    """Agreement by the day an image got its last submission: images and mean pairwise F1."""
    last = dict(
        Annotation.objects.filter(
            image__project=version.project,
            image_id__in=version.images.values("image_id"),
            kind=AnnotationKind.SUBMISSION,
            is_current=True,
        )
        .values("image_id")
        .annotate(last=Max("submitted_at"))
        .values_list("image_id", "last")
    )
    days: dict = defaultdict(list)
    for index, image_id in enumerate(image_ids):
        if image_id in last:
            days[last[image_id].date().isoformat()].append(report.images.f1[index])
    return [
        {
            "day": day,
            "images": len(values),
            "mean_f1": _number(np.nanmean(values)) if np.isfinite(values).any() else None,
        }
        for day, values in sorted(days.items())
    ]


def _by_condition(image_ids, conditions: dict, report, states: dict) -> dict:
    """Per condition dimension and value: images, mean per-image F1, share needing review."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for index, image_id in enumerate(image_ids):
        for dimension, value in (conditions.get(image_id) or {}).items():
            groups[dimension][value].append(index)
    result = {}
    for dimension, values in sorted(groups.items()):
        result[dimension] = {}
        for value, indices in sorted(values.items()):
            f1 = report.images.f1[indices]
            review = [states.get(image_ids[i]) == ImageState.NEEDS_REVIEW for i in indices]
            result[dimension][value] = {
                "images": len(indices),
                "mean_f1": _number(np.nanmean(f1)) if np.isfinite(f1).any() else None,
                "needs_review": float(np.mean(review)),
            }
    return result


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) or np.isinf(value) else value
