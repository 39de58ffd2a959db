"""Reads of the training app, scoped to what the requesting user may see."""

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from projects.models import Project
from projects.selectors import project_list
from training.models import (
    DataCurve,
    DeploymentTarget,
    ModelStage,
    ModelVersion,
    PromotionDecision,
    RunState,
    TargetBuild,
    TrainingRun,
)


def training_runs(*, project: Project) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.filter(project=project).select_related("model_version").order_by("-number")


def training_run_get(*, run_id: int, user: AbstractBaseUser) -> TrainingRun:
    """The run if `user` may see its project (404 otherwise, whether or not it exists)."""
    runs = TrainingRun.objects.select_related("project", "snapshot__consensus_version", "parent_model")
    return get_object_or_404(runs.filter(project__in=project_list(user=user)), pk=run_id)


def model_versions(*, project: Project) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(project=project)
        .select_related("run", "consensus_version", "parent")
        .annotate(test_look_count=Count("test_looks"))
        .order_by("-number")
    )


def model_version_get(*, model_id: int, user: AbstractBaseUser) -> ModelVersion:
    """The model if `user` may see its project (404 otherwise, whether or not it exists)."""
    models = ModelVersion.objects.select_related("project", "run", "snapshot", "consensus_version", "parent")
    models = models.annotate(test_look_count=Count("test_looks"))
    return get_object_or_404(models.filter(project__in=project_list(user=user)), pk=model_id)


def champion_get(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, stage=ModelStage.CHAMPION).first()


def champion_history(*, project: Project) -> QuerySet[PromotionDecision]:
    """Every accepted promotion of the project, newest first: the history of champions."""
    return (
        PromotionDecision.objects.filter(model__project=project, is_accepted=True)
        .select_related("model", "previous_champion", "decided_by")
        .order_by("-decided_at", "-pk")
    )


def marginal_gain(history: list[dict]) -> dict | None:
    """Is more training worth it? The slope of val mAP50 (ultralytics' per-epoch figure)
    against training hours over the last quarter of the epochs (at least 3), by least
    squares: AP50 gained per extra hour at the pace of the end of the run."""
    points = [(h["elapsed"] / 3600, h["map50"]) for h in history if h.get("map50") is not None and h.get("elapsed")]
    if len(points) < 3:
        return None
    tail = points[-max(3, len(points) // 4) :]
    hours, ap50 = np.array(tail).T
    if np.ptp(hours) <= 0:
        return None
    slope = float(np.polyfit(hours, ap50, 1)[0])
    return {
        "per_hour": slope,
        "epochs": len(tail),
        "from_hours": float(hours[0]),
        "to_hours": float(hours[-1]),
        "ap50_end": float(ap50[-1]),
    }


def deployment_targets(*, project: Project) -> QuerySet[DeploymentTarget]:
    return DeploymentTarget.objects.filter(project=project).order_by("name")


def deployment_target_get(*, target_id: int, user: AbstractBaseUser) -> DeploymentTarget:
    """The target if `user` may see its project (404 otherwise, whether or not it exists)."""
    targets = DeploymentTarget.objects.select_related("project")
    return get_object_or_404(targets.filter(project__in=project_list(user=user)), pk=target_id)


def target_build_get(*, build_id: int, user: AbstractBaseUser) -> TargetBuild:
    """The build if `user` may see its model's project (404 otherwise)."""
    builds = TargetBuild.objects.select_related("model__project", "target")
    return get_object_or_404(builds.filter(model__project__in=project_list(user=user)), pk=build_id)


def model_target_builds(*, model: ModelVersion) -> list[TargetBuild]:
    """The model's builds, newest first."""
    return list(TargetBuild.objects.filter(model=model).select_related("target").order_by("-created_at", "-pk"))


def data_curves(*, project: Project) -> QuerySet[DataCurve]:
    return DataCurve.objects.filter(project=project).order_by("-number")


def data_curve_get(*, curve_id: int, user: AbstractBaseUser) -> DataCurve:
    """The curve if `user` may see its project (404 otherwise, whether or not it exists)."""
    curves = DataCurve.objects.select_related("project", "snapshot")
    return get_object_or_404(curves.filter(project__in=project_list(user=user)), pk=curve_id)


def training_runs_by_state() -> dict[str, int]:
    """Across every project (the operator's metrics, no user): training runs in each state,
    every state named (0 where none)."""
    counts = dict(TrainingRun.objects.values_list("state").annotate(count=Count("pk")).values_list("state", "count"))
    return {state.value: counts.get(state.value, 0) for state in RunState}
