"""Is more data worth it? A data curve: the same run settings trained on nested, stratified
fractions of one snapshot's train split (default 1/8, 1/4, 1/2 and all; same seed, same val
images), each an ordinary run on the `training` queue; then the points fitted and
extrapolated (`boxes.learning_curve`), and, per image condition, where 1,000 more
annotated images would avoid the most misses per annotator hour of annotation.

The served traffic: the images API clients sent in the last 28 days. They carry no
condition, so each one's condition is estimated from what serving logs of it (size,
brightness, contrast) by its nearest labelled neighbours (k = 5, on train images of the
snapshot), checked on the val images (balanced accuracy, at least 0.7 to be used); the
shares are then corrected for the classifier's confusions on val (adjusted classify and
count: the shares p that best explain the predicted shares q = C p, p >= 0). A dimension
whose classifier misses the bar, or a project with fewer than 30 served images, falls back
to the val split's mix, and says so; with no traffic, misses are counted per 1,000 images
served instead of per week.

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
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from scipy.optimize import nnls

from annotation.models import Assignment
from boxes.learning_curve import (
    FAMILIES,
    CurveFit,
    backtest,
    bootstrap_fits,
    curve_fit_family,
    images_to_reach,
    optimism,
)
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
from training.profile import image_features
from training.runner import verified_onnx_path
from training.services import training_run_cancel, training_run_create
from training.traffic import served_images

DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
BOOTSTRAP = 200
INTERVAL = (5.0, 95.0)
COST_IMAGES = 1000  # the annotation whose cost and payoff each condition is ranked by
SERVED_DAYS = 28
SERVED_MIN_IMAGES = 30  # fewer served images: the val split's mix stands for the traffic's
NEIGHBOURS = 5
MIN_BALANCED_ACCURACY = 0.7
CLASSIFIER_PER_VALUE = 60  # train images per condition value the classifier learns from
CLASSIFIER_CHECK = 400  # val images it is checked on


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
    """Once every run of a running curve has finished: its result (or why there is none).
    Two workers finishing the last two runs at once compute it once: the curve's row is
    held while it is computed, and a refresh that finds it held leaves it to the holder."""
    with transaction.atomic():
        held = DataCurve.objects.select_for_update(skip_locked=True).filter(pk=curve_id).first()
        if held is None:
            return DataCurve.objects.filter(pk=curve_id).first()
        return _curve_refresh(curve_id)


def _curve_refresh(curve_id: int) -> DataCurve | None:
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
        result["figures"][figure] = figure_fits(sizes, values, np.array(replicates[figure]).T, human_recall, figure)
    result["conditions"], result["traffic"] = _where_to_annotate(curve, version, val_ids, truths, last[1], last[0])
    result["headline"] = _headline(curve.project, result["figures"]["recall"], int(max(sizes)))
    return result


def _headline(project: Project, recall: dict, current: int) -> dict | None:
    """What 2x the training images would buy in recall, by the fit that backtested best (the
    smaller error on the largest point; the power fit when neither could be backtested), and
    what annotating them would cost the panel."""
    fitted = {family: fit for family, fit in recall["fits"].items() if "error" not in fit}
    if not fitted:
        return None
    tests = recall["backtest"]
    family = min(fitted, key=lambda f: (abs(tests[f]["error"]) if f in tests else math.inf, FAMILIES.index(f)))
    gain = fitted[family]["gains"]["2x"]
    seconds = _seconds_per_image(project).get(None)
    hours = current * seconds * project.overlap_k / 3600 if seconds else None
    return {
        "family": family, "images": current, "images_2x": gain["images"], "gain": gain["gain"],
        "gain_corrected": gain["gain_corrected"], "gain_interval": gain["gain_interval"],
        "backtest_error": tests.get(family, {}).get("error"), "annotator_hours": _r(hours) if hours else None,
        "seconds_per_image": _r(seconds, 1) if seconds else None, "k": project.overlap_k,
    }  # fmt: skip


def _reach_words(needed, corrected, tau) -> str:
    if needed is None:
        return "not within 10x the training images"
    words = f"about {math.ceil(needed)} images"
    if tau:
        corrected_words = "not within 10x" if corrected is None else f"about {math.ceil(corrected)}"
        words += f"; {corrected_words} once corrected for the fit's optimism ({tau:.3f})"
    return words


def _recall_counts(truths, detections, threshold) -> tuple[np.ndarray, np.ndarray]:
    """Per image: references found at `threshold` (none when no threshold reaches the
    humans' precision) and references that count (setup "none")."""
    found, counted = np.zeros(len(truths)), np.zeros(len(truths))
    for index, (truth, rows) in enumerate(zip(truths, detections, strict=True)):
        kept = rows[rows[:, 4] >= threshold] if threshold is not None else rows[:0]
        _, is_tp, is_ignored, references = match_detections(truth, kept, setup="none")
        found[index], counted[index] = int((is_tp & ~is_ignored).sum()), references
    return found, counted


def figure_fits(sizes, values, replicates, human_recall, figure: str) -> dict:
    """Per family: the fit of `figure` against the training images, its backtest, the gains
    from 2x and 4x (intervals from refitting the bootstrap `replicates`, sizes x draws),
    raw and corrected for its optimism, and (recall) the images to the panel's recall."""
    current = float(max(sizes))
    out = {"fits": {}, "backtest": {}}
    for family in FAMILIES:
        try:
            fit = curve_fit_family(family, sizes, values)
        except ValueError as error:
            out["fits"][family] = {"error": str(error)}
            continue
        boot = bootstrap_fits(family, sizes, replicates, start=fit.params)
        gains = {}
        for factor in (2, 4):
            at = current * factor
            predicted = float(fit.predict(at))
            spread = [float(f.predict(at)) - float(f.predict(current)) for f in boot]
            gains[f"{factor}x"] = {
                "images": int(at), "predicted": _r(predicted), "gain": _r(predicted - float(fit.predict(current))),
                "gain_interval": [_r(v) for v in np.percentile(spread, INTERVAL)] if spread else None,
            }  # fmt: skip
        tau = optimism(family, sizes, values)
        for gain in gains.values():
            # Mahmood et al.'s correction, tau learned from this curve's own one-step-ahead errors;
            # a fit that ran ahead by more than it promises promises nothing (never a loss)
            gain["gain_corrected"] = _r(max(gain["gain"] - tau, 0.0)) if tau is not None else None
        entry = {
            "params": [_r(p, 6) for p in fit.params], "rmse": _r(fit.rmse, 6), "gains": gains,
            "optimism": _r(tau) if tau is not None else None,
        }  # fmt: skip
        if figure == "recall" and human_recall is not None:
            needed = images_to_reach(fit, human_recall, current=current)
            corrected = images_to_reach(fit, human_recall + tau, current=current) if tau is not None else needed
            entry["images_to_panel_recall"] = None if needed is None else math.ceil(needed)
            entry["images_to_panel_recall_corrected"] = None if corrected is None else math.ceil(corrected)
            entry["panel_recall_note"] = _reach_words(needed, corrected, tau)
        out["fits"][family] = entry
        test = backtest(family, sizes, values)
        if test is not None:
            out["backtest"][family] = {
                "fitted_on": test.fitted_on, "size": int(test.size), "predicted": _r(test.predicted),
                "measured": _r(test.measured), "error": _r(test.error),
            }  # fmt: skip
    return out


def _where_to_annotate(curve, version, val_ids, truths, detections, model) -> tuple[list[dict], dict]:
    """Per condition value: the model's recall gap to the humans on its val images, its share
    of the served traffic (or of val), the misses that closing half the gap would avoid (per
    week of the traffic, or per 1,000 images served when there is none), and the annotator
    hours 1,000 more images of it cost; ranked by misses avoided per annotator hour. With
    the traffic the shares came from."""
    conditions = dict(Image.objects.filter(pk__in=val_ids).values_list("pk", "conditions"))
    groups: dict[tuple[str, str], list[int]] = {}
    for index, image_id in enumerate(val_ids):
        for item in sorted((conditions.get(image_id) or {}).items()):
            groups.setdefault(item, []).append(index)
    # a dimension with one value on every image offers no choice of where to annotate
    values_of = Counter(dimension for dimension, _ in groups)
    groups = {item: indices for item, indices in groups.items() if values_of[item[0]] > 1}
    traffic = served_traffic(
        project=curve.project, version=version, val_ids=val_ids, conditions=conditions,
        dimensions=sorted(dimension for dimension, count in values_of.items() if count > 1),
    )  # fmt: skip
    per_week = traffic["per_week"]
    seconds = _seconds_per_image(curve.project)
    k = curve.project.overlap_k
    rows = []
    for (dimension, value), indices in sorted(groups.items()):
        # a condition's few val images, each labelled by k of the panel: every annotator who saw one counts
        compare = humans_compare(version, [val_ids[i] for i in indices], [detections[i] for i in indices], min_images=1)
        if compare is None:
            continue
        human_recall = compare["human_mean"].get("recall")
        model_recall = compare["model_mean"].get("recall_at_precision")
        if human_recall is None or model_recall is None:
            continue
        gap = max(human_recall - model_recall, 0.0)
        served = traffic["dimensions"].get(dimension) or {}
        source = served.get("source", "val")
        share = served["shares"].get(value, 0.0) if source == "served" else len(indices) / len(val_ids)
        pedestrians = sum(int((~truths[i].ignore).sum()) for i in indices) / len(indices)
        misses_per_image = 0.5 * gap * pedestrians * share
        weekly = misses_per_image * per_week if per_week else None
        condition_seconds = seconds.get((dimension, value)) or seconds.get(None) or 0.0
        hours = COST_IMAGES * condition_seconds * k / 3600 if condition_seconds else None
        ranked_by = weekly if weekly is not None else misses_per_image * 1000.0
        rows.append({
            "dimension": dimension, "value": value, "val_images": len(indices), "human_recall": _r(human_recall),
            "model_recall": _r(model_recall), "gap": _r(gap), "share": _r(share), "share_source": source,
            "val_share": _r(len(indices) / len(val_ids)), "pedestrians_per_image": _r(pedestrians),
            "misses_avoided_per_1000_images": _r(misses_per_image * 1000.0),
            "misses_avoided_per_week": _r(weekly) if weekly is not None else None,
            "annotator_hours_per_1000_images": _r(hours) if hours else None,
            "misses_avoided_per_annotator_hour": _r(ranked_by / hours) if hours else None,
        })  # fmt: skip
    rows.sort(key=lambda row: -(row["misses_avoided_per_annotator_hour"] or row["gap"] * 1e-9))
    return rows, traffic


def served_traffic(*, project: Project, version, val_ids, conditions: dict, dimensions: list[str]) -> dict:
    """The last `SERVED_DAYS` of API clients' images: how many, how many a week, and per
    condition dimension the estimated share of each value (see the module docstring), or
    why the val split's mix stands in."""
    now = timezone.now()
    served = served_images(project, now - timedelta(days=SERVED_DAYS))
    out = {"images": len(served), "days": SERVED_DAYS, "per_week": None, "dimensions": {}}
    if len(served) < SERVED_MIN_IMAGES:
        out["note"] = (
            f"{len(served)} images served in the last {SERVED_DAYS} days (fewer than {SERVED_MIN_IMAGES}): "
            "the val split's mix stands for the traffic, and misses are counted per 1,000 images served."
        )
        return out
    # the days the window covers: a project serving for 3 days has 3 days of traffic, not 28
    first = min(row["created_at"] for row in served)
    days = min(max((now - first).total_seconds() / 86400.0, 1.0), float(SERVED_DAYS))
    out.update(days=_r(days, 2), per_week=_r(len(served) * 7.0 / days, 1))
    out["note"] = f"{len(served)} images served by API clients over {days:.1f} days."
    if not dimensions:
        return out
    train_ids = _classifier_train_ids(version, dimensions)
    # the classifier is checked on at most CLASSIFIER_CHECK val images (seeded), each decoded once
    check_ids = list(val_ids)
    if len(check_ids) > CLASSIFIER_CHECK:
        drawn = np.random.default_rng(version.pk).choice(check_ids, CLASSIFIER_CHECK, replace=False)
        check_ids = sorted(int(pk) for pk in drawn)
    features = image_features([*train_ids, *check_ids])
    served_x = np.array([_feature_vector(row) for row in served])
    for dimension in dimensions:
        out["dimensions"][dimension] = _dimension_shares(
            dimension, train_ids, check_ids, conditions, features, served_x
        )
    return out


def _classifier_train_ids(version, dimensions: list[str]) -> list[int]:
    """Up to `CLASSIFIER_PER_VALUE` train images of each value of each dimension (seeded)."""
    train_ids = split_images(version=version, split="train")
    rows = dict(Image.objects.filter(pk__in=train_ids).values_list("pk", "conditions"))
    rng = np.random.default_rng(version.pk)
    chosen: set[int] = set()
    for dimension in dimensions:
        by_value: dict[str, list[int]] = {}
        for pk in train_ids:
            value = (rows.get(pk) or {}).get(dimension)
            if value is not None:
                by_value.setdefault(value, []).append(pk)
        for pks in by_value.values():
            take = min(len(pks), CLASSIFIER_PER_VALUE)
            chosen.update(int(pk) for pk in rng.choice(pks, take, replace=False))
    return sorted(chosen)


def _feature_vector(row: dict) -> list[float]:
    """What serving logs of an image, as the classifier sees it: log2 width and height,
    brightness and contrast."""
    return [math.log2(row["width"]), math.log2(row["height"]), row["brightness"], row["contrast"]]


def _dimension_shares(dimension, train_ids, val_ids, conditions_val, features, served_x) -> dict:
    """One dimension: the classifier, its balanced accuracy on val, and the served shares."""
    train_rows = dict(Image.objects.filter(pk__in=train_ids).values_list("pk", "conditions"))
    train = [(pk, (train_rows.get(pk) or {}).get(dimension)) for pk in train_ids]
    train = [(pk, value) for pk, value in train if value is not None and pk in features]
    val = [(pk, (conditions_val.get(pk) or {}).get(dimension)) for pk in val_ids]
    val = [(pk, value) for pk, value in val if value is not None and pk in features]
    values = sorted({value for _, value in val})
    out = {"source": "val", "values": values, "balanced_accuracy": None, "shares": {}}
    if len(values) < 2 or len({value for _, value in train}) < 2:
        out["note"] = "too few labelled images of each value to tell them apart"
        return out
    x_train = np.array([_feature_vector(features[pk]) for pk, _ in train])
    keep = x_train.std(axis=0) > 1e-9  # a feature equal on every train image tells nothing
    mean, scale = x_train[:, keep].mean(axis=0), x_train[:, keep].std(axis=0)

    def classify(x: np.ndarray) -> list[str]:
        z, z_train = (x[:, keep] - mean) / scale, (x_train[:, keep] - mean) / scale
        labels = [value for _, value in train]
        predicted = []
        for start in range(0, len(z), 2048):
            block = z[start : start + 2048]
            distance = ((block[:, None, :] - z_train[None, :, :]) ** 2).sum(axis=2)
            nearest = np.argsort(distance, axis=1)[:, :NEIGHBOURS]
            for row in nearest:
                votes = Counter(labels[i] for i in row)
                top = max(votes.values())
                # a tie goes to the nearest neighbour among the tied values
                predicted.append(next(labels[i] for i in row if votes[labels[i]] == top))
        return predicted

    val_predicted = classify(np.array([_feature_vector(features[pk]) for pk, _ in val]))
    truth = [value for _, value in val]
    index = {value: i for i, value in enumerate(values)}
    confusion = np.zeros((len(values), len(values)))  # [predicted, true]
    for guess, actual in zip(val_predicted, truth, strict=True):
        if guess in index:
            confusion[index[guess], index[actual]] += 1
    totals = np.array([truth.count(value) for value in values], dtype=float)
    recalls = np.diag(confusion) / np.maximum(totals, 1)
    balanced = float(recalls.mean())
    out["balanced_accuracy"] = _r(balanced)
    if balanced < MIN_BALANCED_ACCURACY:
        out["note"] = (
            f"its value is not told apart by size, brightness and contrast (balanced accuracy {balanced:.2f} "
            f"on val, under {MIN_BALANCED_ACCURACY}): the val split's mix stands in"
        )
        return out
    counts = Counter(classify(served_x))
    observed = np.array([counts.get(value, 0) for value in values], dtype=float) / len(served_x)
    rates = confusion / np.maximum(totals, 1)  # P(predicted | true), one column per true value
    shares, _ = nnls(rates, observed)
    shares = shares / shares.sum() if shares.sum() > 0 else observed
    out.update(
        source="served", shares={value: _r(float(share)) for value, share in zip(values, shares, strict=True)},
        predicted_shares={value: _r(float(share)) for value, share in zip(values, observed, strict=True)},
        note=f"estimated from each served image's size, brightness and contrast "
        f"(balanced accuracy {balanced:.2f} on val)",
    )  # fmt: skip
    return out


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


def curve_chart(result: dict, figure: str = "recall") -> list[dict]:
    """The chart's series (charts.js lineChart): the measured points, each fit drawn out to
    4x the training images, and the panel's recall as a line."""
    points = result.get("points") or []
    if not points:
        return []
    sizes = [point["images"] for point in points]
    xs = sorted({*sizes, *np.geomspace(min(sizes), 4 * max(sizes), 24).round().astype(int).tolist()})
    series = [{"label": f"measured {figure}", "points": [[point["images"], point[figure]] for point in points]}]
    for family, fit in ((result.get("figures") or {}).get(figure) or {}).get("fits", {}).items():
        if "params" in fit:
            line = CurveFit(family=family, params=tuple(fit["params"]), rmse=fit["rmse"]).predict(xs)
            drawn = [[x, _r(float(y))] for x, y in zip(xs, line, strict=True)]
            series.append({"label": f"{family} fit", "points": drawn})
    panel = (result.get("human") or {}).get("recall")
    if figure == "recall" and panel is not None:
        series.append({"label": "panel recall", "points": [[xs[0], panel], [xs[-1], panel]]})
    return series


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
    writer.writerow(["section", "dimension", "value", "gap", "share", "share_source", "misses_avoided_per_week",
                     "misses_avoided_per_1000_images", "annotator_hours_per_1000", "misses_avoided_per_annotator_hour",
                     ])  # fmt: skip
    for row in (curve.result or {}).get("conditions", []):
        writer.writerow(["condition", row["dimension"], row["value"], row["gap"], row["share"],
                         row.get("share_source", "val"), row.get("misses_avoided_per_week"),
                         row["misses_avoided_per_1000_images"], row["annotator_hours_per_1000_images"],
                         row["misses_avoided_per_annotator_hour"]])  # fmt: skip
    return buffer.getvalue()


def _r(value, digits: int = 4):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)
