"""Reads of serving: request, latency and error figures over a window; current drift alerts."""

from collections import defaultdict
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from projects.models import Project
from serving.models import DriftReport, PredictionLog

MAX_ROWS = 200_000  # a window's rows read for its percentiles


def serving_metrics(*, project: Project, minutes: int = 60) -> dict:
    """Over the last `minutes`: requests, requests per minute, latency p50/p95/p99 (answers
    only), error rate, per model version and per client, and a per-minute series."""
    now = timezone.now()
    since = now - timedelta(minutes=minutes)
    # both bounds, so that PostgreSQL reads only the window's day partitions (serving.partitions)
    window = {"created_at__gte": since, "created_at__lte": now}
    rows = list(
        PredictionLog.objects.filter(project=project, is_shadow=False, **window)
        .order_by("-created_at")
        .values_list("created_at", "status", "latency_ms", "model__number", "client__name")[:MAX_ROWS]
    )
    # refused before any project was named (bad token scope, garbage body), by this project's clients
    refused_elsewhere = PredictionLog.objects.filter(project__isnull=True, client__projects=project, **window).count()
    groups: dict[str, dict] = {"models": defaultdict(list), "clients": defaultdict(list)}
    series: dict[int, list] = defaultdict(list)
    for created_at, status, latency, model_number, client_name in rows:
        row = (status, latency)
        if model_number is not None:
            groups["models"][f"model {model_number}"].append(row)
        groups["clients"][client_name or "people (session or token)"].append(row)
        series[int((created_at - since).total_seconds() // 60)].append(row)
    return {
        "minutes": minutes,
        "since": since.isoformat(),
        "total": _figures([(s, lat) for _, s, lat, *_ in rows], minutes),
        "refused_before_a_project": refused_elsewhere,
        "models": {name: _figures(values, minutes) for name, values in sorted(groups["models"].items())},
        "clients": {name: _figures(values, minutes) for name, values in sorted(groups["clients"].items())},
        "series": [{"minute": minute, **_figures(series.get(minute, []), 1)} for minute in range(minutes)],
    }


def _figures(rows: list[tuple[int, float | None]], minutes: int) -> dict:
    latencies = np.array([latency for status, latency in rows if status == 200 and latency is not None])
    errors = sum(1 for status, _ in rows if status != 200)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]).tolist() if len(latencies) else (None, None, None)
    return {
        "requests": len(rows),
        "per_minute": len(rows) / minutes if minutes else None,
        "errors": errors,
        "error_rate": errors / len(rows) if rows else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def drift_alerts_current(*, project: Project) -> list[dict]:
    """The alerts of the latest drift report of each model of the project that has one from
    the last drift window (QUORUM_DRIFT_WINDOW_HOURS): a model no longer served gets no new
    report, and its old alerts leave the banner."""
    since = timezone.now() - timedelta(hours=settings.QUORUM_DRIFT_WINDOW_HOURS)
    reports = DriftReport.objects.filter(project=project, created_at__gte=since).select_related("model")
    alerts, seen = [], set()
    for report in reports.order_by("-created_at")[:50]:
        if report.model_id in seen:
            continue
        seen.add(report.model_id)
        alerts += [{**alert, "model": report.model.number, "at": report.created_at} for alert in report.alerts]
    return alerts


SERVED_IMAGES_LIMIT = 50_000


def served_images(project: Project, since) -> list[dict]:
    """The images API clients sent to `project` since `since` that were answered (not shadow
    runs), newest first, at most `SERVED_IMAGES_LIMIT`: size, brightness, contrast, time.
    Registered for training's data curves (training.traffic)."""
    rows = PredictionLog.objects.filter(
        project=project, client__isnull=False, is_shadow=False, status=200, created_at__gte=since,
        width__isnull=False, height__isnull=False, brightness__isnull=False, contrast__isnull=False,
    ).order_by("-created_at")  # fmt: skip
    fields = ("width", "height", "brightness", "contrast", "created_at")
    return list(rows.values(*fields)[:SERVED_IMAGES_LIMIT])
