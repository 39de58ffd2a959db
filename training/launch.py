"""Work sent to the training workers: a training run, a look at the test split, and the
promotion that has the new champion scored on it; recorded by training/services.py and
then sent to its task after commit. (The periodic tasks send the runs they make themselves,
training/tasks.py.)"""

from django.db import transaction

from config.celery import send_quietly
from training.data_curves import data_curve_create
from training.models import DataCurve, ModelVersion, PromotionDecision, TargetBuild, TestSetLook, TrainingRun
from training.services import promotion_decide, test_look_request, training_run_create
from training.targets import target_builds_request
from training.tasks import target_build_task, test_look_compute_task, training_run_execute_task


def training_run_start(**fields) -> TrainingRun:
    """A run made by `training_run_create(**fields)` (which checks the fields), sent to a
    worker once it is committed."""
    run = training_run_create(**fields)
    transaction.on_commit(lambda: send_quietly(training_run_execute_task, run.pk))
    return run


def test_look_start(**fields) -> TestSetLook:
    """A look at the test split logged by `test_look_request(**fields)`, scored by a worker
    once it is committed."""
    look = test_look_request(**fields)
    transaction.on_commit(lambda: send_quietly(test_look_compute_task, look.pk))
    return look


def model_promote(*, model: ModelVersion, user, override_reason: str | None = None) -> PromotionDecision:
    """`promotion_decide`; when the model becomes the champion, the test split is scored
    once for it (a logged look, sent to a worker)."""
    decision = promotion_decide(model=model, user=user, override_reason=override_reason)
    if decision.is_accepted:
        test_look_start(model=model, user=user, reason=f"promotion to champion (decision {decision.pk})")
    # Measured on every deployment target it has no build on yet: a champion's builds are
    # what the devices get, and a refused model's missing required ones are what it waits on.
    target_builds_start(model=model, only_unmeasured=True)
    return decision


def target_builds_start(*, model: ModelVersion, targets=None, only_unmeasured: bool = False) -> list[TargetBuild]:
    """Builds of `model` on deployment targets (`target_builds_request`), each sent to a
    worker once committed."""
    builds = target_builds_request(model=model, targets=targets, only_unmeasured=only_unmeasured)
    for build in builds:
        transaction.on_commit(lambda build_id=build.pk: send_quietly(target_build_task, build_id))
    return builds


def data_curve_start(**fields) -> DataCurve:
    """A data curve made by `data_curve_create(**fields)`, its runs sent to workers once committed."""
    curve, runs = data_curve_create(**fields)
    for run in runs:
        transaction.on_commit(lambda run_id=run.pk: send_quietly(training_run_execute_task, run_id))
    return curve
