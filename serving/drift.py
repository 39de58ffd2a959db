"""Drift: a window of a model's recent predictions against its reference profile.

Each feature of `training.profile.FEATURES` is binned at the deciles of its reference
sample; the population stability index PSI = sum over bins of (w - r) ln(w / r), with r and
w the reference's and the window's shares (each at least 1e-4), is large when the window
sits elsewhere: below 0.1 little shift, 0.1 to 0.25 a moderate one, above 0.25 a major one
(Yurdakul, "Statistical properties of population stability index", 2018). A feature over
the threshold raises an alert. Resolution gets its own: served images whose median pixel
count is under half the training images' (a model trained on HD fed by a low-resolution
camera) are named as such, with both sizes.
"""

import logging
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import mail_admins
from django.db.models import Count
from django.utils import timezone

from serving.models import ApiClient, DriftReport, PredictionLog
from serving.partitions import day_of, day_start, prediction_log_days_drop
from training.models import DeploymentTarget, ModelVersion
from training.profile import FEATURES

logger = logging.getLogger(__name__)
EPSILON = 1e-4
LABELS = {
    "width": "image width",
    "height": "image height",
    "brightness": "brightness",
    "contrast": "contrast",
    "boxes": "boxes per image",
    "median_box_height": "box height",
    "mean_confidence": "confidence",
}


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of `window` against `reference`, at the reference's deciles."""
    reference, window = np.asarray(reference, dtype=float), np.asarray(window, dtype=float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1]))
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    expected = np.maximum(np.histogram(reference, bins)[0] / len(reference), EPSILON)
    actual = np.maximum(np.histogram(window, bins)[0] / len(window), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_report_compute(*, model: ModelVersion, hours: float | None = None) -> DriftReport | None:
    """Compare the model's answers of the last `hours` with its reference profile, pooled and
    per API client (a camera); None when the window holds fewer than
    QUORUM_DRIFT_MIN_PREDICTIONS answers or there is no profile. A client with fewer answers
    than that is folded into the pool only, and the report says so."""
    hours = hours or settings.QUORUM_DRIFT_WINDOW_HOURS
    profile = model.reference_profile or {}
    end = timezone.now()
    start = end - timedelta(hours=hours)
    rows = PredictionLog.objects.filter(
        model=model, status=200, is_shadow=False, client__isnull=False, created_at__gte=start, created_at__lte=end
    )  # API clients' answers: a person trying the model on the try-it page is no camera; both bounds: the
    # database reads only the window's day partitions
    count = rows.count()
    minimum = settings.QUORUM_DRIFT_MIN_PREDICTIONS
    if not profile or count < minimum:
        return None
    indices, summary, alerts = _compare(profile, _features(rows), model, camera=None)
    counts = dict(rows.values_list("client_id").annotate(n=Count("pk")).values_list("client_id", "n"))
    names = dict(ApiClient.objects.filter(pk__in=counts).values_list("pk", "name"))
    targets = list(DeploymentTarget.objects.filter(project_id=model.project_id))
    clients, folded, client_alerts = [], [], []
    for client_id, answers in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if answers < minimum:
            folded.append({"client": names.get(client_id, "?"), "client_id": client_id, "predictions": answers})
            continue
        camera = {"client": names.get(client_id, "?"), "client_id": client_id}
        own = _features(rows.filter(client_id=client_id))
        psi_own, _, own_alerts = _compare(profile, own, model, camera=camera, targets=targets)
        clients.append({**camera, "predictions": answers, "psi": psi_own, **_size_facts(profile, own)})
        client_alerts += own_alerts
    if len(counts) == 1 and clients:
        # one camera is the whole pool: its own alerts say the same, naming it
        alerts = client_alerts
    else:
        covered = {alert["feature"] for alert in client_alerts}
        alerts = [alert for alert in alerts if alert["feature"] not in covered] + client_alerts
    alerts.sort(key=lambda alert: alert["code"] != "resolution_mismatch")
    if folded:
        summary["pooled_only"] = folded
    report = DriftReport.objects.create(
        project=model.project, model=model, window_start=start, window_end=end, predictions=count, psi=indices,
        summary=summary, alerts=alerts, clients=clients,
    )  # fmt: skip
    if alerts:
        text = "; ".join(alert["message"] for alert in alerts)
        logger.warning("drift of %s (%s predictions): %s", model, count, text)
        if settings.QUORUM_DRIFT_EMAIL:
            mail_admins(f"Quorum: drift of {model}", text, fail_silently=True)
    return report


def _features(rows) -> dict[str, np.ndarray]:
    return {
        name: np.array([v for v in rows.values_list(name, flat=True) if v is not None], dtype=float)
        for name in FEATURES
    }


def _compare(profile: dict, values: dict, model: ModelVersion, *, camera: dict | None, targets=()):
    """(PSI per feature, reference and window medians, alerts) of one window of answers;
    `camera` names the API client it is (None: the pool)."""
    threshold = settings.QUORUM_DRIFT_PSI_ALERT
    indices, summary, alerts = {}, {}, []
    who = f"Camera {camera['client']!r}: " if camera else ""
    for name in FEATURES:
        reference = np.asarray(profile.get(name) or [], dtype=float)
        window = values[name]
        if len(reference) < 10 or len(window) < 10:
            continue
        indices[name] = round(psi(reference, window), 4)
        summary[name] = {"reference_median": float(np.median(reference)), "window_median": float(np.median(window))}
        if indices[name] > threshold and name not in ("width", "height"):
            message = _shift_words(name, reference, window, indices[name], threshold)
            alerts.append({"code": "drift", "feature": name, "message": who + message, **(camera or {})})
    if max(indices.get("width", 0.0), indices.get("height", 0.0)) > threshold:
        message = _size_words(profile, values, max(indices.get("width", 0.0), indices.get("height", 0.0)), threshold)
        alerts.append({"code": "drift", "feature": "size", "message": who + message, **(camera or {})})
    resolution = _resolution_alert(profile, values, model, camera=camera, targets=targets)
    if resolution:
        alerts.insert(0, resolution)
    return indices, summary, alerts


def _shift_words(name: str, reference: np.ndarray, window: np.ndarray, index: float, threshold: float) -> str:
    """What moved, in words: where the served values sit against the training's tenths."""
    low, high = np.quantile(reference, [0.1, 0.9])
    below, above = float(np.mean(window < low)), float(np.mean(window > high))
    label = LABELS[name].capitalize()
    text = (
        f"{label} has shifted (PSI {index:.2f} > {threshold}): {below:.0%} of served images are below the "
        f"training's lowest tenth ({low:.1f}) and {above:.0%} above its highest tenth ({high:.1f}), "
        "against 10% each in training"
    )
    served, trained = float(np.median(window)), float(np.median(reference))
    if f"{served:.1f}" != f"{trained:.1f}":
        text += f"; median {served:.1f} served against {trained:.1f}"
    return text + "."


def _size_facts(profile: dict, values: dict) -> dict:
    """A camera's typical size and the share of its answers under half the training pixels."""
    widths, heights = values["width"], values["height"]
    trained = _trained_pixels(profile)
    if not len(widths) or trained is None:
        return {}
    sizes = Counter(zip(widths.astype(int).tolist(), heights.astype(int).tolist(), strict=True))
    (width, height), _ = sizes.most_common(1)[0]
    below = float(np.mean(widths * heights < 0.5 * trained))
    return {"typical_size": f"{width}x{height}", "share_below_half_pixels": round(below, 4)}


def _trained_pixels(profile: dict) -> float | None:
    widths, heights = np.asarray(profile.get("width") or []), np.asarray(profile.get("height") or [])
    return float(np.median(widths * heights)) if len(widths) and len(heights) else None


def _size_words(profile: dict, values: dict, index: float, threshold: float) -> str:
    """Which sizes are served that training did not have, e.g. "31% of served images are
    320x180; none of the training images are under 640x360"; or, when every served size
    is within the training's range, which size's share moved most."""
    ref_w, ref_h = np.asarray(profile["width"], dtype=float), np.asarray(profile["height"], dtype=float)
    widths, heights = values["width"], values["height"]
    ref_pixels, pixels = ref_w * ref_h, widths * heights
    drifted = f"Image size has drifted (PSI {index:.2f} > {threshold})"
    outside = (pixels < ref_pixels.min() * 0.99) | (pixels > ref_pixels.max() * 1.01)
    if not outside.any():
        served = Counter(zip(widths.astype(int).tolist(), heights.astype(int).tolist(), strict=True))
        trained = Counter(zip(ref_w.astype(int).tolist(), ref_h.astype(int).tolist(), strict=True))
        (width, height) = max(
            sorted(set(served) | set(trained)),
            key=lambda size: abs(served[size] / len(widths) - trained[size] / len(ref_w)),
        )
        return (
            f"{drifted}: the mix of sizes changed; {width}x{height} is {served[(width, height)] / len(widths):.0%} of "
            f"served images against {trained[(width, height)] / len(ref_w):.0%} of the training images."
        )
    sizes = Counter((int(w), int(h)) for w, h in zip(widths[outside], heights[outside], strict=True))
    (width, height), number = sizes.most_common(1)[0]
    share = number / len(widths)
    half_w, half_h = int(np.median(ref_w) // 2), int(np.median(ref_h) // 2)
    under = float(np.mean((ref_w < half_w) & (ref_h < half_h)))
    if width * height < np.median(ref_pixels):
        train_words = f"{'none' if under == 0 else f'{under:.0%}'} of the training images are under {half_w}x{half_h}"
    else:
        train_words = f"none of the training images are over {int(ref_w.max())}x{int(ref_h.max())}"
    return f"{drifted}: {share:.0%} of served images are {width}x{height}; {train_words}."


def _resolution_alert(
    profile: dict, values: dict, model: ModelVersion, *, camera: dict | None, targets=()
) -> dict | None:
    widths, heights = np.asarray(profile.get("width") or []), np.asarray(profile.get("height") or [])
    if not len(widths) or not len(values["width"]):
        return None
    trained = float(np.median(widths * heights))
    served = float(np.median(values["width"] * values["height"]))
    if served >= 0.5 * trained:
        return None
    facts = _size_facts(profile, values)
    typical = facts["typical_size"]
    who = f"camera {camera['client']!r} sends" if camera else "is served"
    alert = {
        "code": "resolution_mismatch", "feature": "resolution",
        "message": f"Resolution mismatch: model {model.number} was trained on images of about "
        f"{np.median(widths):.0f}x{np.median(heights):.0f} px but {who} images of about "
        f"{np.median(values['width']):.0f}x{np.median(values['height']):.0f} px "
        f"({served / trained:.0%} of the pixels; {facts['share_below_half_pixels']:.0%} of its answers are under half "
        f"the training pixels, typically {typical}). Pedestrians look smaller and blurrier than any it learned from; "
        "collect and annotate images from this camera.",
        **(camera or {}), **facts,
    }  # fmt: skip
    width, height = (int(side) for side in typical.split("x"))
    match = next((t for t in targets if (t.camera_width, t.camera_height) == (width, height)), None)
    if match is not None:
        alert["target"] = {"id": match.pk, "name": match.name}
        alert["message"] += f" Deployment target {match.name!r} has this camera's resolution: see the model on it."
    return alert


def drift_reports_compute() -> list[DriftReport]:
    """A report for every model that answered API clients in the window (the hourly beat task)."""
    now = timezone.now()
    since = now - timedelta(hours=settings.QUORUM_DRIFT_WINDOW_HOURS)
    answered = PredictionLog.objects.filter(
        created_at__gte=since, created_at__lte=now, status=200, client__isnull=False
    )
    model_ids = answered.values("model_id").distinct()
    reports = []
    for model in ModelVersion.objects.filter(pk__in=model_ids).select_related("project"):
        report = drift_report_compute(model=model)
        if report is not None:
            reports.append(report)
    return reports


def prediction_logs_prune(*, now: datetime | None = None) -> int:
    """Delete prediction log rows older than the retention (QUORUM_PREDICTION_LOG_DAYS), and
    the uploads kept with them; the rows removed. On PostgreSQL the log is partitioned by UTC
    day (serving.partitions) and goes a whole day at a time: the partition of each day that
    ended at or before the limit is dropped, and a row of the day the limit falls in is kept
    until that whole day is past it (a row goes when DAYS to DAYS + 1 days old, at the next
    run after); then the rows from before that day that the default partition took are deleted. Elsewhere (SQLite) the
    rows older than the limit are deleted."""
    before = (now or timezone.now()) - timedelta(days=settings.QUORUM_PREDICTION_LOG_DAYS)
    dropped = prediction_log_days_drop(before=day_of(before))
    if dropped is not None:
        before = day_start(day_of(before))
    old = PredictionLog.objects.filter(created_at__lt=before)
    for name in old.exclude(kept_file="").values_list("kept_file", flat=True):
        default_storage.delete(name)  # a kept upload goes with its row
    deleted, _ = old.delete()
    return (dropped or 0) + deleted
