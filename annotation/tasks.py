"""Celery tasks of the panel: thin wrappers around its services."""

from celery import shared_task

from annotation.assignments import assignment_leases_expire


@shared_task(acks_late=True)
def assignment_leases_expire_task() -> int:
    return assignment_leases_expire()
