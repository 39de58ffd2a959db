"""Celery tasks of the training app: thin wrappers around its services.

Training and test-set scoring run on the `training` queue (one task per worker); the
reaper and the retraining schedule on `default` (config/settings.py routes them), so a
long training never delays the bookkeeping of its own runs.
"""

from celery import shared_task
from django.db import transaction

from config.celery import send_quietly
from training.data_curves import data_curve_refresh
from training.models import TrainingRun
from training.runner import training_run_execute
from training.services import test_look_compute, training_runs_reap, training_runs_schedule
from training.target_builds import target_build_execute


@shared_task(bind=True, acks_late=True)
def training_run_execute_task(self, run_id: int) -> str | None:
    run = training_run_execute(run_id=run_id, worker=self.request.hostname or "")
    _curves_refresh([run_id])
    return None if run is None else run.state


def _curves_refresh(run_ids: list[int]) -> None:
    """The data curves of these runs, settled once their last run has finished."""
    curve_ids = set(TrainingRun.objects.filter(pk__in=run_ids, curve__isnull=False).values_list("curve_id", flat=True))
    for curve_id in curve_ids:
        data_curve_refresh(curve_id=curve_id)


@shared_task(acks_late=True)
def test_look_compute_task(look_id: int) -> None:
    test_look_compute(look_id=look_id)


@shared_task(acks_late=True)
def target_build_task(build_id: int) -> None:
    target_build_execute(build_id=build_id)


@shared_task(acks_late=True)
def training_runs_reap_task() -> dict:
    """Settle runs whose worker was lost; those with attempts left go to a worker again."""
    settled = training_runs_reap()
    _curves_refresh([run_id for run_ids in settled.values() for run_id in run_ids])
    for run_id in settled["retried"]:
        transaction.on_commit(lambda run_id=run_id: send_quietly(training_run_execute_task, run_id))
    return settled


@shared_task(acks_late=True)
def training_runs_schedule_task() -> list[int]:
    """Start the retraining runs the projects' policies call for."""
    started = [run.pk for run in training_runs_schedule()]
    for run_id in started:
        transaction.on_commit(lambda run_id=run_id: send_quietly(training_run_execute_task, run_id))
    return started
