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
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import mail_admins
from django.utils import timezone

from serving.models import DriftReport, PredictionLog
from training.models import ModelVersion
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
    """Compare the model's answers of the last `hours` with its reference profile; None when
    the window holds fewer than QUORUM_DRIFT_MIN_PREDICTIONS answers or there is no profile."""
    hours = hours or settings.QUORUM_DRIFT_WINDOW_HOURS
    profile = model.reference_profile or {}
    end = timezone.now()
    start = end - timedelta(hours=hours)
    rows = PredictionLog.objects.filter(
        model=model, status=200, is_shadow=False, client__isnull=False, created_at__gte=start
    )  # API clients' answers: a person trying the model on the try-it page is no camera
    values = {name: np.array([v for v in rows.values_list(name, flat=True) if v is not None], dtype=float)
              for name in FEATURES}  # fmt: skip
    count = rows.count()
    if not profile or count < settings.QUORUM_DRIFT_MIN_PREDICTIONS:
        return None
    threshold = settings.QUORUM_DRIFT_PSI_ALERT
    indices, summary, alerts = {}, {}, []
    for name in FEATURES:
        reference = np.asarray(profile.get(name) or [], dtype=float)
        window = values[name]
        if len(reference) < 10 or len(window) < 10:
            continue
        indices[name] = round(psi(reference, window), 4)
        summary[name] = {"reference_median": float(np.median(reference)), "window_median": float(np.median(window))}
        if indices[name] > threshold:
            alerts.append({
                "code": "drift", "feature": name,
                "message": f"{LABELS[name].capitalize()} has drifted (PSI {indices[name]:.2f} > {threshold}): median "
                f"{summary[name]['window_median']:.1f} served against {summary[name]['reference_median']:.1f} "
                f"in training.",
            })  # fmt: skip
    resolution = _resolution_alert(profile, values, model)
    if resolution:
        alerts.insert(0, resolution)
    report = DriftReport.objects.create(
        project=model.project, model=model, window_start=start, window_end=end, predictions=count, psi=indices,
        summary=summary, alerts=alerts,
    )  # fmt: skip
    if alerts:
        text = "; ".join(alert["message"] for alert in alerts)
        logger.warning("drift of %s (%s predictions): %s", model, count, text)
        if settings.QUORUM_DRIFT_EMAIL:
            mail_admins(f"Quorum: drift of {model}", text, fail_silently=True)
    return report


def _resolution_alert(profile: dict, values: dict, model: ModelVersion) -> dict | None:
    widths, heights = np.asarray(profile.get("width") or []), np.asarray(profile.get("height") or [])
    if not len(widths) or not len(values["width"]):
        return None
    trained = float(np.median(widths * heights))
    served = float(np.median(values["width"] * values["height"]))
    if served >= 0.5 * trained:
        return None
    return {
        "code": "resolution_mismatch", "feature": "resolution",
        "message": f"Resolution mismatch: model {model.number} was trained on images of about "
        f"{np.median(widths):.0f}x{np.median(heights):.0f} px but is served images of about "
        f"{np.median(values['width']):.0f}x{np.median(values['height']):.0f} px "
        f"({served / trained:.0%} of the pixels). Pedestrians look smaller and blurrier than any it learned from; "
        "collect and annotate images from this camera.",
    }  # fmt: skip


def drift_reports_compute() -> list[DriftReport]:
    """A report for every model that answered API clients in the window (the hourly beat task)."""
    since = timezone.now() - timedelta(hours=settings.QUORUM_DRIFT_WINDOW_HOURS)
    answered = PredictionLog.objects.filter(created_at__gte=since, status=200, client__isnull=False)
    model_ids = answered.values("model_id").distinct()
    reports = []
    for model in ModelVersion.objects.filter(pk__in=model_ids).select_related("project"):
        report = drift_report_compute(model=model)
        if report is not None:
            reports.append(report)
    return reports


def prediction_logs_prune() -> int:
    """Delete prediction log rows older than the retention (QUORUM_PREDICTION_LOG_DAYS), and
    the uploads kept with them."""
    before = timezone.now() - timedelta(days=settings.QUORUM_PREDICTION_LOG_DAYS)
    old = PredictionLog.objects.filter(created_at__lt=before)
    for name in old.exclude(kept_file="").values_list("kept_file", flat=True):
        default_storage.delete(name)  # a kept upload goes with its row
    deleted, _ = old.delete()
    return deleted
