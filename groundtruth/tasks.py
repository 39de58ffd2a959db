"""Celery tasks of the groundtruth app (queue `groundtruth`): thin wrappers around groundtruth/computing.py.

A version fans out: `consensus_version_compute_task` plans it and sends one
`consensus_chunk_task` per chunk as a group; the chunk that finds every chunk done sends
`consensus_version_finish_task`, which merges them (a chord, counted in the database: Quorum
keeps no result backend, and the chunks' rows already say which are done)."""

from celery import group, shared_task

from groundtruth.computing import (
    consensus_chunk_compute,
    consensus_version_finish,
    consensus_version_start,
    consensus_versions_stalled,
    image_consensus_update,
    images_consensus_stalled,
)


@shared_task(acks_late=True)
def consensus_version_compute_task(version_id: int) -> int:
    """Plan the version and send its chunks (those not done, when sent again); with none
    left to do, finish it."""
    chunk_ids = consensus_version_start(version_id=version_id)
    if chunk_ids:
        group(consensus_chunk_task.s(chunk_id) for chunk_id in chunk_ids).apply_async()
    else:
        consensus_version_finish_task.delay(version_id)
    return len(chunk_ids)


@shared_task(acks_late=True)
def consensus_chunk_task(chunk_id: int) -> None:
    version_id = consensus_chunk_compute(chunk_id=chunk_id)
    if version_id is not None:
        consensus_version_finish_task.delay(version_id)


@shared_task(acks_late=True)
def consensus_version_finish_task(version_id: int) -> str | None:
    version = consensus_version_finish(version_id=version_id)
    return None if version is None else version.state


@shared_task(acks_late=True)
def image_consensus_update_task(image_id: int) -> str | None:
    row = image_consensus_update(image_id=image_id)
    return None if row is None else row.state


@shared_task(acks_late=True)
def consensus_versions_sweep_task() -> int:
    """Send again the versions whose first send was lost (broker down when they were made),
    or whose chunks stopped moving (a worker died in one)."""
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
