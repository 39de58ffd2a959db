"""Is more data worth it? A data curve: the same run settings trained on nested, stratified
fractions of one snapshot's train split (default 1/8, 1/4, 1/2 and all; same seed, same val
images), each an ordinary run on the `training` queue; then the points fitted and
extrapolated (`boxes.learning_curve`), and, per image condition, where 1,000 more
annotated images would avoid the most misses per annotator hour (served images carry no
condition, so the val split's share of each condition stands for the traffic's, and
misses are counted per 1,000 images served).

Each point, on the val split: AP50 against the consensus, and recall at the humans'
precision (against the consensus, at the score where the model is as precise as the
panel's mean annotator), each with a 90% interval from a bootstrap over val images. The
bar is the panel's mean recall (each annotator against the others' consensus).
"""

import csv
import io
import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Assignment
from boxes.learning_curve import FAMILIES, backtest, bootstrap_fits, curve_fit_family, images_to_reach
from boxes.metrics import match_detections
from config.errors import Conflict, ValidationFailed
from datasets.models import Image
from projects.models import Project
from training.evaluation import (
    coco_figures,
    detections_predict,
    ground_truth,
    humans_compare,
    score_at_precision,
    split_images,
)
from training.models import FINISHED_RUN_STATES, DataCurve, RunState, TrainingRun
from training.runner import verified_onnx_path
from training.services import training_run_cancel, training_run_create

DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
BOOTSTRAP = 200
INTERVAL = (5.0, 95.0)
COST_IMAGES = 1000  # the annotation whose cost and payoff each condition is ranked by
SERVED_DAYS = 28


def fractions_check(fractions) -> list[float]:
    """3 to 8 distinct fractions in (0, 1], ascending, the last one 1 (all the train images)."""
    message = "3 to 8 distinct numbers in (0, 1], ending with 1 (all the train images)."
    try:
        values = sorted({float(value) for value in fractions})
    except (TypeError, ValueError):
        raise ValidationFailed(message, fields={"fractions": [message]}) from None
    if not 3 <= len(values) <= 8 or values[0] <= 0 or values[-1] != 1.0 or any(math.isnan(v) for v in values):
        raise ValidationFailed(message, fields={"fractions": [message]})
    return values


RUN_SETTINGS = ("architecture", "imgsz", "epochs", "batch", "patience", "seed", "init", "device", "base_weights")


def run_settings_of(run: TrainingRun) -> dict:
    """A run's settings, as `training_run_create` takes them."""
    settings = {name: getattr(run, name) for name in RUN_SETTINGS if name != "base_weights"}
    settings["base_weights"] = run.base_weights_id if run.init == TrainingRun.Init.BASE else None
    return settings


def data_curve_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    fractions=DEFAULT_FRACTIONS,
    from_run: TrainingRun | None = None,
    **run_fields,
) -> tuple[DataCurve, list[TrainingRun]]:
    """The curve and its runs, one per fraction, queued (each checked as any run is), with
    `from_run`'s settings when given (any of `run_fields` over them)."""
    fractions = fractions_check(fractions)
    if from_run is not None:
        if from_run.project_id != project.pk:
            raise ValidationFailed("A run of this project.", fields={"run": ["A run of this project."]})
        run_fields = {**run_settings_of(from_run), **run_fields}
    with transaction.atomic():
        runs = [
            training_run_create(project=project, user=user, train_fraction=fraction, **run_fields)
            for fraction in fractions
        ]
        Project.objects.select_for_update().get(pk=project.pk)
        number = (DataCurve.objects.filter(project=project).aggregate(top=Max("number"))["top"] or 0) + 1
        curve = DataCurve.objects.create(
            project=project, number=number, snapshot=runs[0].snapshot, run_settings=run_settings_of(runs[0]),
            fractions=fractions,
            created_by=user,
        )  # fmt: skip
        TrainingRun.objects.filter(pk__in=[run.pk for run in runs]).update(curve=curve)
    return curve, runs


def data_curve_cancel(*, curve: DataCurve, user: AbstractBaseUser) -> DataCurve:
    """Cancel the curve and each of its runs not finished yet."""
    if curve.state != DataCurve.State.RUNNING:
        raise Conflict(f"Data curve {curve.number} is {curve.state}; only a running one is cancelled.", code="finished")
    for run in curve.runs.exclude(state__in=FINISHED_RUN_STATES):
        training_run_cancel(run=run, user=user)
    DataCurve.objects.filter(pk=curve.pk).update(state=DataCurve.State.CANCELLED, finished_at=timezone.now())
    curve.refresh_from_db()
    return curve


def data_curve_progress(curve: DataCurve) -> dict:
    runs = list(curve.runs.order_by("train_fraction"))
    return {
        "runs": len(runs),
        "finished": sum(run.state in FINISHED_RUN_STATES for run in runs),
        "succeeded": sum(run.state == RunState.SUCCEEDED for run in runs),
        "epochs_done": sum(run.epoch for run in runs),
        "epochs": sum(run.epochs for run in runs),
    }


def data_curve_refresh(*, curve_id: int) -> DataCurve | None:
    """Once every run of a running curve has finished: its result (or why there is none)."""
    curve = DataCurve.objects.filter(pk=curve_id).select_related("project", "snapshot__consensus_version").first()
    if curve is None or curve.state != DataCurve.State.RUNNING:
        return curve
    runs = list(curve.runs.select_related("model_version").order_by("train_fraction"))
    if any(run.state not in FINISHED_RUN_STATES for run in runs):
        return curve
    succeeded = [run for run in runs if run.state == RunState.SUCCEEDED and hasattr(run, "model_version")]
    if len(succeeded) < 3:
        curve.state, curve.error = DataCurve.State.FAILED, f"Only {len(succeeded)} of its runs succeeded; 3 are needed."
    else:
        try:
            curve.result = curve_result(curve, succeeded)
            curve.state = DataCurve.State.DONE
        except Exception as error:  # noqa: BLE001 - the curve fails with the reason on its page
            curve.state, curve.error = DataCurve.State.FAILED, f"{type(error).__name__}: {error}"
    curve.finished_at = timezone.now()
    curve.save(update_fields=["state", "error", "result", "finished_at"])
    return curve


def curve_result(curve: DataCurve, runs: list[TrainingRun]) -> dict:
    """Points, fits, backtests, gains, images needed and the conditions ranked."""
    version = curve.snapshot.consensus_version
    val_ids = split_images(version=version, split="val")
    truths = ground_truth(version=version, image_ids=val_ids)
    rng = np.random.default_rng(curve.pk)
    draws = [rng.integers(0, len(val_ids), len(val_ids)) for _ in range(BOOTSTRAP)]
    points, replicates, last = [], {"ap50": [], "recall": []}, None
    for run in runs:
        model = run.model_version
        with tempfile.TemporaryDirectory(prefix="quorum-curve-") as folder:
            onnx = verified_onnx_path(model, Path(folder))
            detections = detections_predict(onnx=onnx, image_ids=val_ids, imgsz=model.imgsz, sha256=model.onnx_sha256)
        human = (model.evaluation or {}).get("human") or {}
        precision = (human.get("human_mean") or {}).get("precision")
        threshold = score_at_precision(truths, detections, precision) if precision is not None else None
        found, counted = _recall_counts(truths, detections, threshold)
        ap50 = coco_figures(truths, detections)["ap50"]
        ap_draws = [coco_figures([truths[i] for i in d], [detections[i] for i in d])["ap50"] for d in draws]
        recall_draws = [found[d].sum() / max(counted[d].sum(), 1) for d in draws]
        replicates["ap50"].append(ap_draws)
        replicates["recall"].append(recall_draws)
        points.append({
            "run": run.pk, "run_number": run.number, "fraction": run.train_fraction, "images": run.train_images,
            "ap50": _r(ap50), "ap50_interval": [_r(v) for v in np.percentile(ap_draws, INTERVAL)],
            "recall": _r(found.sum() / max(counted.sum(), 1)),
            "recall_interval": [_r(v) for v in np.percentile(recall_draws, INTERVAL)],
            "score_threshold": threshold, "train_seconds": run.train_seconds,
        })  # fmt: skip
        last = (model, detections, human)
    sizes = [point["images"] for point in points]
    human_recall = (last[2].get("human_mean") or {}).get("recall")
    result = {
        "val_images": len(val_ids),
        "points": points,
        "human": {"recall": human_recall, "precision": (last[2].get("human_mean") or {}).get("precision")},
        "figures": {},
    }
    for figure in ("recall", "ap50"):
        values = [point[figure] for point in points]
        result["figures"][figure] = _figure_fits(sizes, values, np.array(replicates[figure]).T, human_recall, figure)
    result["conditions"] = _where_to_annotate(curve, version, val_ids, truths, last[1], last[0])
    return result


def _recall_counts(truths, detections, threshold) -> tuple[np.ndarray, np.ndarray]:
    """Per image: references found at `threshold` (none when no threshold reaches the
    humans' precision) and references that count (setup "none")."""
    found, counted = np.zeros(len(truths)), np.zeros(len(truths))
    for index, (truth, rows) in enumerate(zip(truths, detections, strict=True)):
        kept = rows[rows[:, 4] >= threshold] if threshold is not None else rows[:0]
        _, is_tp, is_ignored, references = match_detections(truth, kept, setup="none")
        found[index], counted[index] = int((is_tp & ~is_ignored).sum()), references
    return found, counted


def _figure_fits(sizes, values, replicates, human_recall, figure: str) -> dict:
    current = float(max(sizes))
    out = {"fits": {}, "backtest": {}}
    for family in FAMILIES:
        try:
            fit = curve_fit_family(family, sizes, values)
        except ValueError as error:
            out["fits"][family] = {"error": str(error)}
            continue
        boot = bootstrap_fits(family, sizes, replicates)
        gains = {}
        for factor in (2, 4):
            at = current * factor
            predicted = float(fit.predict(at))
            spread = [float(f.predict(at)) - float(f.predict(current)) for f in boot]
            gains[f"{factor}x"] = {
                "images": int(at), "predicted": _r(predicted), "gain": _r(predicted - float(fit.predict(current))),
                "gain_interval": [_r(v) for v in np.percentile(spread, INTERVAL)] if spread else None,
            }  # fmt: skip
        entry = {"params": [_r(p, 6) for p in fit.params], "rmse": _r(fit.rmse, 6), "gains": gains}
        if figure == "recall" and human_recall is not None:
            needed = images_to_reach(fit, human_recall, current=current)
            entry["images_to_panel_recall"] = None if needed is None else math.ceil(needed)
            entry["panel_recall_note"] = (
                "not within 10x the training images" if needed is None else f"about {math.ceil(needed)} images"
            )
        out["fits"][family] = entry
        test = backtest(family, sizes, values)
        if test is not None:
            out["backtest"][family] = {
                "fitted_on": test.fitted_on, "size": int(test.size), "predicted": _r(test.predicted),
                "measured": _r(test.measured), "error": _r(test.error),
            }  # fmt: skip
    return out


def _where_to_annotate(curve, version, val_ids, truths, detections, model) -> list[dict]:
    """Per condition value: the model's recall gap to the humans on its val images, its share
    of the served traffic (or of val), the misses a week that closing half the gap would
    avoid, and the annotator hours 1,000 more images of it cost; ranked by misses avoided
    per annotator hour."""
    conditions = dict(Image.objects.filter(pk__in=val_ids).values_list("pk", "conditions"))
    groups: dict[tuple[str, str], list[int]] = {}
    for index, image_id in enumerate(val_ids):
        for item in sorted((conditions.get(image_id) or {}).items()):
            groups.setdefault(item, []).append(index)
    # a dimension with one value on every image offers no choice of where to annotate
    values_of = Counter(dimension for dimension, _ in groups)
    groups = {item: indices for item, indices in groups.items() if values_of[item[0]] > 1}
    seconds = _seconds_per_image(curve.project)
    k = curve.project.overlap_k
    rows = []
    for (dimension, value), indices in sorted(groups.items()):
        compare = humans_compare(version, [val_ids[i] for i in indices], [detections[i] for i in indices])
        if compare is None:
            continue
        human_recall = compare["human_mean"].get("recall")
        model_recall = compare["model_mean"].get("recall_at_precision")
        if human_recall is None or model_recall is None:
            continue
        gap = max(human_recall - model_recall, 0.0)
        share = len(indices) / len(val_ids)
        pedestrians = sum(int((~truths[i].ignore).sum()) for i in indices) / len(indices)
        # served images are not labelled by condition: the val split's share stands for the traffic's
        misses = 0.5 * gap * pedestrians * 1000.0 * share
        condition_seconds = seconds.get((dimension, value)) or seconds.get(None) or 0.0
        hours = COST_IMAGES * condition_seconds * k / 3600 if condition_seconds else None
        rows.append({
            "dimension": dimension, "value": value, "val_images": len(indices), "human_recall": _r(human_recall),
            "model_recall": _r(model_recall), "gap": _r(gap), "share": _r(share),
            "share_source": "val", "pedestrians_per_image": _r(pedestrians),
            "misses_avoided_per_1000_images": _r(misses),
            "annotator_hours_per_1000_images": _r(hours) if hours else None,
            "misses_avoided_per_annotator_hour": _r(misses / hours) if hours else None,
        })  # fmt: skip
    rows.sort(key=lambda row: -(row["misses_avoided_per_annotator_hour"] or row["gap"] * 1e-9))
    return rows


def _seconds_per_image(project: Project) -> dict:
    """The panel's measured seconds per image (active time of submitted assignments):
    overall (key None) and per (dimension, value) of the images' conditions."""
    totals: dict = {}
    rows = Assignment.objects.filter(image__project=project, state="submitted", active_seconds__gt=0)
    for conditions, seconds in rows.values_list("image__conditions", "active_seconds").iterator(chunk_size=5000):
        for key in (None, *(conditions or {}).items()):
            total, count = totals.get(key, (0.0, 0))
            totals[key] = (total + seconds, count + 1)
    return {key: total / count for key, (total, count) in totals.items()}


def data_curve_csv(curve: DataCurve) -> str:
    """The points and the ranked conditions, as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section", "fraction", "images", "ap50", "ap50_low", "ap50_high", "recall", "recall_low",
                     "recall_high"])  # fmt: skip
    for point in (curve.result or {}).get("points", []):
        writer.writerow(["point", point["fraction"], point["images"], point["ap50"], *point["ap50_interval"],
                         point["recall"], *point["recall_interval"]])  # fmt: skip
    writer.writerow([])
    writer.writerow(["section", "dimension", "value", "gap", "share", "misses_avoided", "annotator_hours_per_1000",
                     "misses_avoided_per_annotator_hour"])  # fmt: skip
    for row in (curve.result or {}).get("conditions", []):
        misses = row["misses_avoided_per_1000_images"]
        writer.writerow(["condition", row["dimension"], row["value"], row["gap"], row["share"], misses,
                         row["annotator_hours_per_1000_images"], row["misses_avoided_per_annotator_hour"]])  # fmt: skip
    return buffer.getvalue()


def _r(value, digits: int = 4):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)
