"""Celery tasks of serving: thin wrappers. Drift and log retention (with the log's day
partitions) are bookkeeping and run on `default` (config/settings.py routes them);
prediction work runs on `inference`."""

from celery import shared_task

from serving.drift import drift_reports_compute, prediction_logs_prune
from serving.partitions import prediction_log_days_ensure
from serving.services import preannotation_run, prediction_job_run


@shared_task(acks_late=True)
def drift_reports_compute_task() -> int:
    return len(drift_reports_compute())


@shared_task(acks_late=True)
def prediction_logs_prune_task() -> int:
    prediction_log_days_ensure()  # today's and the next days' partitions, made ahead (PostgreSQL)
    return prediction_logs_prune()


@shared_task(acks_late=True)
def prediction_job_run_task(job_id: int) -> str | None:
    job = prediction_job_run(job_id=job_id)
    return None if job is None else job.state


@shared_task(acks_late=True)
def preannotation_run_task(project_id: int) -> int:
    return preannotation_run(project_id=project_id)
