"""Computing the ground truth: a consensus version over every complete image, and the
current version kept up to date image by image.

A version is computed from the raw submissions (never changed here) by `boxes.consensus`
with the version's parameters; `boxes.agreement.measure` gives the agreement figures. When
an image receives its k-th submission, `image_consensus_update` recomputes that image only.
The Celery tasks (groundtruth/tasks.py) run these; nothing here sends a task.
"""

import contextlib
import ctypes
import dataclasses
import functools
import gc
import json
import logging
import os
import resource
import socket
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Greatest
from django.utils import timezone

from boxes.agreement import counts_concatenate, image_counts, report_from_counts
from boxes.consensus import ImageWork, consolidate_image
from boxes.estimates import AnnotatorReliability, Reliability
from boxes.geometry import iou_pairs
from boxes.reliability import estimate_reliability
from datasets.models import Image
from groundtruth.chunks import chunk_counts_dump, chunk_counts_load
from groundtruth.models import (
    Adjudication,
    AnnotationKind,
    BoxSource,
    ChunkState,
    ConsensusChunk,
    ConsensusVersion,
    GroundTruthBox,
    ImageConsensus,
    ImageState,
    VersionState,
)
from groundtruth.reports import agreement_report_build, iou_histogram_counts, report_baseline, report_counts
from groundtruth.selectors import Panel, complete_image_ids, gold_references, image_panels, panels

logger = logging.getLogger(__name__)


def consensus_version_compute(*, version_id: int) -> ConsensusVersion | None:
    """Compute a version in this process: plan it, compute every chunk, finish it. Safe to
    run again: a finished version is left as it is, an unfinished one carried on. (Workers
    do the same steps as separate tasks: `groundtruth.tasks`.)"""
    for chunk_id in consensus_version_start(version_id=version_id):
        consensus_chunk_compute(chunk_id=chunk_id)
    consensus_version_finish(version_id=version_id)
    return ConsensusVersion.objects.select_related("project").filter(pk=version_id).first()


def consensus_version_start(*, version_id: int) -> list[int]:
    """Plan a version: its complete images (every blind submission in, at that moment) cut
    into chunks of `QUORUM_CONSENSUS_CHUNK_IMAGES` in id order, and, when weighted, the
    annotators' reliability estimated once for the whole project (EM over a seeded sample
    of `QUORUM_CONSENSUS_RELIABILITY_SAMPLE` images with every gold image in it; the whole
    project when it is smaller). Returns the ids of the chunks to compute.

    Called again on a running version (the sweep, after a worker died or a send was
    lost), it keeps what is done and returns the chunks that are not; on a failed
    version, it starts over; on a finished one, it returns nothing."""
    try:
        with transaction.atomic():
            version = (
                ConsensusVersion.objects.select_for_update().select_related("project").filter(pk=version_id).first()
            )
            if version is None or version.state == VersionState.DONE:
                return []
            if version.state == VersionState.RUNNING and version.chunks.exists():
                return list(version.chunks.exclude(state=ChunkState.DONE).values_list("pk", flat=True))
            clock = time.perf_counter()
            version.chunks.all().delete()
            ImageConsensus.objects.filter(version=version).delete()
            image_ids = complete_image_ids(project=version.project)
            reliability = _reliability_estimate(version, image_ids) if version.reliability_weighted else None
            size = settings.QUORUM_CONSENSUS_CHUNK_IMAGES
            ConsensusChunk.objects.bulk_create(
                ConsensusChunk(version=version, index=index, first=first, image_ids=image_ids[first : first + size])
                for index, first in enumerate(range(0, max(len(image_ids), 1), size))
            )
            version.state, version.started_at, version.error = VersionState.RUNNING, timezone.now(), ""
            version.reliability = _reliability_json(reliability)
            version.timings = {"plan": round(time.perf_counter() - clock, 3)}
            version.save(update_fields=["state", "started_at", "error", "reliability", "timings"])
            return list(version.chunks.values_list("pk", flat=True))
    except Exception as error:
        _failed(version_id, error)
        raise


def consensus_chunk_compute(*, chunk_id: int) -> int | None:
    """Compute one chunk: each of its images' consensus with the version's parameters,
    written as its rows, and the counts the version's figures are summed from. Safe to run
    twice (a redelivered task): its rows are replaced, a chunk already done is left alone.
    Returns the version's id when every chunk of it is done (time to finish it)."""
    chunk = ConsensusChunk.objects.select_related("version__project").filter(pk=chunk_id).first()
    if chunk is None or chunk.version.state != VersionState.RUNNING:
        return None
    version = chunk.version
    if chunk.state != ChunkState.DONE:
        try:
            _chunk_compute(version, chunk)
        except Exception as error:
            _failed(version.pk, error)
            raise
    return None if version.chunks.exclude(state=ChunkState.DONE).exists() else version.pk


def _chunk_compute(version: ConsensusVersion, chunk: ConsensusChunk) -> None:
    ConsensusChunk.objects.filter(pk=chunk.pk).update(
        state=ChunkState.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )  # fmt: skip
    clock, seconds = time.perf_counter(), {}
    image_ids = list(chunk.image_ids)
    by_image = panels(project=version.project, image_ids=image_ids, include_not_blind=version.include_not_blind)
    panel_of = [by_image.get(image_id, {}) for image_id in image_ids]
    annotations = [{a: boxes for a, (boxes, _) in panel.items()} for panel in panel_of]
    seconds["load"], clock = time.perf_counter() - clock, time.perf_counter()
    reliability = _reliability_from_json(version.reliability)
    prepared: dict[int, tuple] = {}

    def consolidator(index: int, image: dict) -> ImageWork:
        # the version's own consensus of each image, made in the agreement pass
        work = _consolidate(version, panel_of[index], reliability)
        prepared[index] = _image_boxes(work)
        return work

    counted = image_counts(annotations, iou_threshold=version.iou_threshold, consolidator=consolidator)
    f1, mean_iou = counted.f1(), counted.mean_iou()
    results = [
        _image_result(version, image_id, len(panel_of[index]), prepared[index], f1[index], mean_iou[index])
        for index, image_id in enumerate(image_ids)
    ]
    member_ious = np.concatenate([ious for *_, ious in results]) if results else np.zeros(0)
    blob = chunk_counts_dump(
        counted, report_counts(annotations, first_index=chunk.first), iou_histogram_counts(member_ious)
    )
    seconds["compute"], clock = time.perf_counter() - clock, time.perf_counter()
    with transaction.atomic():
        locked = ConsensusChunk.objects.select_for_update().filter(pk=chunk.pk).first()
        if locked is None or locked.state == ChunkState.DONE:
            return  # its version was deleted, or a second delivery finished it first
        ImageConsensus.objects.filter(version=version, image_id__in=image_ids).delete()
        _write(results)
        seconds["write"] = time.perf_counter() - clock
        locked.counts = blob
        locked.state, locked.finished_at = ChunkState.DONE, timezone.now()
        locked.seconds = {name: round(value, 3) for name, value in seconds.items()}
        locked.peak_rss_mb = peak_rss_mb()
        locked.save(update_fields=["counts", "state", "finished_at", "seconds", "peak_rss_mb"])
    memory_release()


def consensus_version_finish(*, version_id: int) -> ConsensusVersion | None:
    """Finish a version whose chunks are all done: their counts merged into the version's
    figures and report (the same numbers as one pass over every image), the reviewers'
    settlements applied, and the version made current. Runs once: the version's row is
    locked, and a finished version is left as it is. None while chunks are still to do."""
    try:
        with transaction.atomic():
            version = (
                ConsensusVersion.objects.select_for_update().select_related("project").filter(pk=version_id).first()
            )
            if version is None or version.state != VersionState.RUNNING:
                return version
            chunks = list(version.chunks.order_by("index").defer("counts"))
            if not chunks or any(chunk.state != ChunkState.DONE for chunk in chunks):
                return None
            clock = time.perf_counter()
            blobs = version.chunks.order_by("index").values_list("counts", flat=True)
            parts = [chunk_counts_load(bytes(blob)) for blob in blobs.iterator(chunk_size=1)]  # one blob at a time
            counted = counts_concatenate([part.counted for part in parts])
            image_ids = [image_id for chunk in chunks for image_id in chunk.image_ids]
            adjudications_apply(version)
            reliability = _reliability_from_json(version.reliability)
            report = report_from_counts(counted, bootstrap=1000) if len(counted) else None
            if report is not None:
                agreement_report_build(
                    version=version,
                    image_ids=image_ids,
                    reliability=reliability,
                    report=report,
                    baseline=report_baseline([part.report for part in parts], images=len(image_ids)),
                    iou_counts=np.sum([part.iou_counts for part in parts], axis=0),
                )
            timings = {
                **version.timings,
                **{
                    name: round(sum(chunk.seconds.get(name, 0.0) for chunk in chunks), 3)
                    for name in ("load", "compute", "write")
                },
                "report": round(time.perf_counter() - clock, 3),
                "chunks": len(chunks),
                # resident peak of the process that finished it (the merge holds every image's counts)
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
            version.state = VersionState.DONE
            version.finished_at = timezone.now()
            version.timings = timings
            if report is not None:
                version.alpha = _number(report.alpha)
                version.alpha_low, version.alpha_high = (_number(v) for v in report.intervals.get("alpha", (None,) * 2))
                version.pairwise_f1 = _number(report.f1)
                version.mean_iou = _number(report.mean_iou)
            ConsensusVersion.objects.filter(project=version.project, is_current=True).update(is_current=False)
            version.is_current = True
            version.save()
            version.chunks.update(counts=None)  # merged: the version's rows and report hold it now
    except Exception as error:
        _failed(version_id, error)
        raise
    return version


def memory_release() -> None:
    """Hand a finished chunk's freed memory back to the system before the next chunk: the
    holes it leaves in the C heap would otherwise put each chunk's peak a little above the
    last one's, so that a worker's peak grew with the chunks it took (glibc's malloc_trim;
    nothing elsewhere)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, the high-water mark of its own
    memory since it started its program (ru_maxrss would carry over the peak of the process
    that started it, such as a fat parent that spawned the worker)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _failed(version_id: int, error: Exception) -> None:
    logger.exception("Consensus version %s failed", version_id)
    ConsensusVersion.objects.filter(pk=version_id).exclude(state=VersionState.DONE).update(
        state=VersionState.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
    )


def _reliability_estimate(version: ConsensusVersion, image_ids: list[int]) -> Reliability | None:
    """The annotators' reliability for a weighted version, from the EM over a seeded sample
    of the complete images (every gold image kept in it), or over all of them when there
    are no more than the sample's size."""
    size = settings.QUORUM_CONSENSUS_RELIABILITY_SAMPLE
    gold_ids = set(gold_references(project=version.project, image_ids=None))
    sample = image_ids
    if len(image_ids) > size:
        gold = [image_id for image_id in image_ids if image_id in gold_ids]
        rest = np.array([image_id for image_id in image_ids if image_id not in gold_ids], dtype=int)
        drawn = np.random.default_rng(version.number).choice(rest, size=max(size - len(gold), 0), replace=False)
        sample = sorted(gold + drawn.tolist())
    if not sample:
        return None
    by_image = panels(project=version.project, image_ids=sample, include_not_blind=version.include_not_blind)
    annotations = [{a: boxes for a, (boxes, _) in by_image.get(i, {}).items()} for i in sample]
    # gold images anchor the estimate: there the truth of a candidate is observed
    references = gold_references(project=version.project, image_ids=[i for i in sample if i in gold_ids])
    gold = {
        index: truth[~ignored]
        for index, image_id in enumerate(sample)
        if image_id in references
        for truth, ignored in [references[image_id]]
    }
    return estimate_reliability(annotations, iou_threshold=version.iou_threshold, gold=gold)


def consensus_versions_stalled(*, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Versions still pending `older_than` after they were made (their task was never sent
    or never taken), and running versions where nothing has moved (no chunk started or
    finished) for longer than the groundtruth queue's hard time limit: a worker died in a
    chunk, or a send was lost. Sending them again is safe: what is done is kept."""
    cutoff = timezone.now() - older_than
    _, hard_limit = settings.CELERY_QUEUE_TIME_LIMITS["groundtruth"]
    dead_before = timezone.now() - timedelta(seconds=hard_limit)
    running = ConsensusVersion.objects.filter(state=VersionState.RUNNING, started_at__lt=dead_before).annotate(
        moved=Greatest(Max("chunks__started_at"), Max("chunks__finished_at"))
    )
    pending = ConsensusVersion.objects.filter(state=VersionState.PENDING, created_at__lt=cutoff)
    still = running.filter(Q(moved__isnull=True) | Q(moved__lt=dead_before))
    return sorted(set(pending.values_list("pk", flat=True)) | set(still.values_list("pk", flat=True)))


def images_consensus_stalled(*, older_than: timedelta | None = None) -> list[int]:
    """Images whose k-th submission (or a later revision) came `older_than` ago or more
    (`QUORUM_CONSENSUS_SWEEP_AFTER_SECONDS` by default), in
    a project with a finished current version, that have no result in it, or one computed
    before that submission: their update was never sent (the broker was down) or was lost.
    An adjudicated image is left as the reviewer settled it."""
    if older_than is None:
        older_than = timedelta(seconds=settings.QUORUM_CONSENSUS_SWEEP_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    current = ConsensusVersion.objects.filter(project=OuterRef("project"), is_current=True, state=VersionState.DONE)
    submitted = Q(annotations__kind=AnnotationKind.SUBMISSION, annotations__is_current=True, annotations__is_blind=True)
    computed = ImageConsensus.objects.filter(image=OuterRef("pk"), version=OuterRef("current_version"))
    candidates = (
        Image.objects.annotate(current_version=Subquery(current.values("pk")[:1]))
        .filter(current_version__isnull=False)
        .annotate(
            submissions=Count("annotations", filter=submitted),
            last=Max("annotations__submitted_at", filter=submitted),
        )
        .filter(submissions__gte=F("project__overlap_k"), last__lt=cutoff)
        .annotate(computed_at=Subquery(computed.values("computed_at")[:1]))
        .filter(Q(computed_at__isnull=True) | Q(computed_at__lt=F("last")))
        .exclude(adjudications__is_active=True)
    )
    return list(candidates.order_by("pk").values_list("pk", flat=True))


def image_consensus_update(*, image_id: int) -> ImageConsensus | None:
    """Recompute one image in its project's current version (after its k-th submission).
    An adjudicated image is left as the reviewer settled it. None when there is nothing
    to do: no current version, or fewer than k submissions.

    It runs after every k-th submission, so it is kept to few plain statements, none
    composed by the ORM: the version with its project's k, the panel, then the lock, the
    old row's removal and the new row's writing (the full version writes in bulk)."""
    version = _current_version_of_image(image_id)
    if version is None:
        return None
    blind, everyone = image_panels(image_id=image_id)
    if len(blind) < version.overlap_k:  # k blind submissions, whatever the version includes
        return None
    panel = everyone if version.include_not_blind else blind
    with transaction.atomic():
        existing = _row_lock(version.pk, image_id)
        if existing and existing[1]:
            return ImageConsensus.objects.get(pk=existing[0])  # only its reviewer can ask for it to be redone
        if existing:
            _rows_delete(existing[0])
        work = _consolidate(version, panel, _version_reliability(version))
        counted = image_counts(
            [{a: boxes for a, (boxes, _) in panel.items()}],
            iou_threshold=version.iou_threshold,
            consolidator=lambda index, image: work,
        )
        result = _image_result(
            version, image_id, len(panel), _image_boxes(work), counted.f1()[0], counted.mean_iou()[0]
        )
        row = _row_write(result)
        if version.adjudicated:  # settled before this version existed: the reviewer's boxes go in
            adjudications_apply(version, image_ids=[image_id])
            row.refresh_from_db()
    return row


def _current_version_of_image(image_id: int) -> ConsensusVersion | None:
    """The current finished version of the image's project, with its project's k
    (`overlap_k`) and whether the image is adjudicated (`adjudicated`), in one statement."""
    project = ConsensusVersion._meta.get_field("project").related_model._meta.db_table
    found = list(
        ConsensusVersion.objects.raw(
            f"SELECT v.*, p.overlap_k, EXISTS (SELECT 1 FROM {Adjudication._meta.db_table} a "
            "WHERE a.image_id = i.id AND a.is_active = %s) AS adjudicated "
            f"FROM {ConsensusVersion._meta.db_table} v JOIN {project} p ON p.id = v.project_id "
            f"JOIN {Image._meta.db_table} i ON i.project_id = v.project_id "
            "WHERE i.id = %s AND v.is_current = %s AND v.state = %s",
            [True, image_id, True, VersionState.DONE],
        )
    )
    return found[0] if found else None


def _row_lock(version_id: int, image_id: int) -> tuple[int, bool] | None:
    """The image's row in the version, locked until the transaction ends: (its id, whether
    the image is adjudicated), or None when it has none."""
    lock = f" {connection.ops.for_update_sql()}" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.id, EXISTS (SELECT 1 FROM {Adjudication._meta.db_table} a "
            "WHERE a.image_id = r.image_id AND a.is_active = %s) "
            f"FROM {ImageConsensus._meta.db_table} r WHERE r.version_id = %s AND r.image_id = %s{lock}",
            [True, version_id, image_id],
        )
        found = cursor.fetchone()
    return None if found is None else (found[0], bool(found[1]))


def _row_write(result) -> ImageConsensus:
    """One image's row and its boxes. On PostgreSQL in one statement, the boxes passed as
    one JSON array (binding each of their values would cost more than the insert);
    elsewhere by `_write`, as a whole version writes."""
    row, boxes, _ = result
    if connection.vendor != "postgresql":
        (row,) = _write([result])
        return row
    row.computed_at = timezone.now()
    data = json.dumps(
        [[b.x1, b.y1, b.x2, b.y2, b.support, b.score, b.spread, b.annotators, b.is_ignore, b.is_uncertain, b.source]
         for b in boxes],
        allow_nan=False,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH r AS (INSERT INTO {ImageConsensus._meta.db_table} "
            "(version_id, image_id, state, annotators, f1, mean_iou, uncertain, computed_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id), "
            f"b AS (INSERT INTO {GroundTruthBox._meta.db_table} (image_consensus_id, x1, y1, x2, y2, support, score, "
            "spread, annotators, is_ignore, is_uncertain, source) "
            "SELECT r.id, (b->>0)::float8, (b->>1)::float8, (b->>2)::float8, (b->>3)::float8, (b->>4)::int, "
            "(b->>5)::float8, b->6, b->7, (b->>8)::boolean, (b->>9)::boolean, b->>10 "
            "FROM r, jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(b, n) ORDER BY n) "
            "SELECT id FROM r",
            [row.version_id, row.image_id, row.state, row.annotators, row.f1, row.mean_iou, row.uncertain,
             row.computed_at, data],
        )  # fmt: skip
        (row.pk,) = cursor.fetchone()
    return row


def _rows_delete(image_consensus_id: int) -> None:
    """One image's consensus row and its boxes, in two plain statements (no row is read)."""
    statements = (
        f"DELETE FROM {GroundTruthBox._meta.db_table} WHERE image_consensus_id = %s",
        f"DELETE FROM {ImageConsensus._meta.db_table} WHERE id = %s",
    )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, [image_consensus_id])


@functools.lru_cache(maxsize=64)
def _reliability_of_version(version_id: int, data: str) -> Reliability | None:
    return _reliability_from_json(json.loads(data))


def _version_reliability(version: ConsensusVersion) -> Reliability | None:
    """The version's estimate, read once per process (a finished version's does not change)."""
    return _reliability_of_version(version.pk, json.dumps(version.reliability, sort_keys=True))


def adjudications_apply(version: ConsensusVersion, *, image_ids: list[int] | None = None) -> None:
    """Make every actively adjudicated image of the version (or of `image_ids`) carry its
    reviewer's boxes, state adjudicated."""
    adjudications = Adjudication.objects.filter(image__project=version.project, is_active=True)
    if image_ids is not None:
        adjudications = adjudications.filter(image_id__in=image_ids)
    for adjudication in adjudications:
        row = ImageConsensus.objects.filter(version=version, image_id=adjudication.image_id).first()
        if row is None:
            row = ImageConsensus.objects.create(
                version=version, image_id=adjudication.image_id, state=ImageState.ADJUDICATED, annotators=0
            )
        else:
            row.boxes.all().delete()
            row.state = ImageState.ADJUDICATED
            row.uncertain = 0
            row.save(update_fields=["state", "uncertain", "computed_at"])
        GroundTruthBox.objects.bulk_create(
            GroundTruthBox(
                image_consensus=row, x1=x1, y1=y1, x2=x2, y2=y2, support=0, score=1.0, spread=[0, 0, 0, 0],
                annotators=[], is_ignore=bool(ignore), source=BoxSource.REVIEWER,
            )
            for x1, y1, x2, y2, ignore in adjudication.boxes
        )  # fmt: skip


def _consolidate(version: ConsensusVersion, panel: Panel, reliability) -> ImageWork:
    """One image's consensus with the version's parameters and the boxes' ignore flags."""
    annotations = {a: boxes for a, (boxes, _) in panel.items()}
    quorum = None
    if reliability is None and version.quorum is not None:
        quorum = version.quorum * len(annotations)
    return consolidate_image(
        annotations,
        iou_threshold=version.iou_threshold,
        quorum=quorum,
        weights=reliability,
        fuse=version.fuse,
        ignored={a: flags for a, (_, flags) in panel.items()},
    )


def _image_boxes(work: ImageWork) -> tuple[list[GroundTruthBox], int, np.ndarray]:
    """The boxes of one image's consensus (unsaved, without their parent), how many
    clusters are below the quorum, and the IoU of each member of a kept cluster with the
    cluster's box."""
    consensus = work.consensus
    boxes = (
        [_box(cluster, is_ignore=False, is_uncertain=False) for cluster in consensus.kept]
        + [_box(cluster, is_ignore=True, is_uncertain=False) for cluster in consensus.ignore_regions]
        + [_box(cluster, is_ignore=cluster.is_ignore, is_uncertain=True) for cluster in consensus.uncertain]
    )
    kept = {id(cluster) for cluster in consensus.kept}
    is_kept = np.array([id(cluster) in kept for cluster in consensus.clusters], dtype=bool)
    members = is_kept[work.cluster] if len(work.cluster) else np.zeros(0, dtype=bool)
    fused = np.array([cluster.box for cluster in consensus.clusters], dtype=float).reshape(-1, 4)
    ious = iou_pairs(work.boxes[members], fused[work.cluster[members]]) if members.any() else np.zeros(0)
    return boxes, len(consensus.uncertain), ious


def _image_result(version, image_id: int, annotators: int, prepared: tuple, f1: float, mean_iou: float):
    """The ImageConsensus row (unsaved), its boxes and member IoUs (see `_image_boxes`)."""
    boxes, uncertain, ious = prepared
    f1 = None if np.isnan(f1) else float(f1)
    accepted = f1 is not None and f1 >= version.accept_f1 and not uncertain
    row = ImageConsensus(
        version=version,
        image_id=image_id,
        state=ImageState.AUTO_ACCEPTED if accepted else ImageState.NEEDS_REVIEW,
        annotators=annotators,
        f1=f1,
        mean_iou=None if np.isnan(mean_iou) else float(mean_iou),
        uncertain=uncertain,
    )
    return row, boxes, ious


def _box(cluster, *, is_ignore: bool, is_uncertain: bool) -> GroundTruthBox:
    x1, y1, x2, y2 = (float(v) for v in cluster.box)
    return GroundTruthBox(
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        support=cluster.support,
        score=float(cluster.score),
        spread=[float(v) for v in cluster.spread],
        annotators=sorted(int(annotator) for annotator, _ in cluster.members),
        is_ignore=is_ignore,
        is_uncertain=is_uncertain,
        source=BoxSource.CONSENSUS,
    )


def _write(results) -> list[ImageConsensus]:
    rows = ImageConsensus.objects.bulk_create([row for row, *_ in results], batch_size=1000)
    boxes = []
    for row, (_, image_boxes, _) in zip(rows, results, strict=True):
        for box in image_boxes:
            box.image_consensus = row
            boxes.append(box)
    GroundTruthBox.objects.bulk_create(boxes, batch_size=2000)
    return rows


def _reliability_json(reliability: Reliability | None) -> dict:
    if reliability is None:
        return {}
    return {
        "annotators": {
            str(annotator): dataclasses.asdict(rates) for annotator, rates in reliability.annotators.items()
        },
        "prior": reliability.prior,
        "log_likelihood": reliability.log_likelihood,
        "used": reliability.used,
        "reason": reliability.reason,
        "criterion": reliability.criterion,
        "iterations": reliability.iterations,
        "converged": reliability.converged,
        "coincidence": reliability.coincidence,
        "keep_above": reliability.keep_above,
    }


def _reliability_from_json(data: dict) -> Reliability | None:
    """The version's estimate, for its incremental updates (an image's k-th submission).
    Versions made before the soft EM stored the annotators' rates alone."""
    if not data:
        return None
    annotators = data.get("annotators", data)
    return Reliability(
        annotators={int(annotator): AnnotatorReliability(**rates) for annotator, rates in annotators.items()},
        iterations=data.get("iterations", 0),
        converged=data.get("converged", True),
        prior=data.get("prior", 0.5),
        log_likelihood=data.get("log_likelihood"),
        used=data.get("used", True),
        reason=data.get("reason", ""),
        criterion=data.get("criterion", {}),
        coincidence=data.get("coincidence"),  # None: an estimate made before the authored model
        keep_above=data.get("keep_above", 0.0),
    )


def _number(value) -> float | None:
    return None if value is None or np.isnan(value) else float(value)
