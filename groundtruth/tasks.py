"""Celery tasks of the groundtruth app (queue `groundtruth`): thin wrappers around groundtruth/computing.py."""

from celery import shared_task

from groundtruth.computing import (
    consensus_version_compute,
    consensus_versions_stalled,
    image_consensus_update,
    images_consensus_stalled,
)


@shared_task(acks_late=True)
def consensus_version_compute_task(version_id: int) -> str | None:
    version = consensus_version_compute(version_id=version_id)
    return None if version is None else version.state


@shared_task(acks_late=True)
def image_consensus_update_task(image_id: int) -> str | None:
    row = image_consensus_update(image_id=image_id)
    return None if row is None else row.state


@shared_task(acks_late=True)
def consensus_versions_sweep_task() -> int:
    """Send again the versions whose first send was lost (broker down when they were made)."""
    stalled = consensus_versions_stalled()
    for version_id in stalled:
        consensus_version_compute_task.delay(version_id)
    return len(stalled)


@shared_task(acks_late=True)
def images_consensus_sweep_task() -> int:
    """Send again the image updates whose first send was lost (broker down at the k-th submission)."""
    stalled = images_consensus_stalled()
    for image_id in stalled:
        image_consensus_update_task.delay(image_id)
    return len(stalled)
