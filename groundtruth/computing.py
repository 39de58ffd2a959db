"""Computing the ground truth: a consensus version over every complete image, and the
current version kept up to date image by image.

A version is computed from the raw submissions (never changed here) by `boxes.consensus`
with the version's parameters; `boxes.agreement.measure` gives the agreement figures. When
an image receives its k-th submission, `image_consensus_update` recomputes that image only.
The Celery tasks (groundtruth/tasks.py) run these; nothing here sends a task.
"""

import dataclasses
import logging
import time
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from boxes.agreement import measure
from boxes.consensus import ImageWork, consolidate_image
from boxes.estimates import AnnotatorReliability, Reliability
from boxes.geometry import iou_pairs
from boxes.reliability import estimate_reliability
from datasets.models import Image
from groundtruth.models import (
    Adjudication,
    AnnotationKind,
    BoxSource,
    ConsensusVersion,
    GroundTruthBox,
    ImageConsensus,
    ImageState,
    VersionState,
)
from groundtruth.reports import agreement_report_build
from groundtruth.selectors import Panel, gold_references, panels

logger = logging.getLogger(__name__)


def consensus_version_compute(*, version_id: int) -> ConsensusVersion | None:
    """Compute a version over every image with all k submissions, and make it current.
    Safe to run again: a finished version is left as it is, an unfinished one redone."""
    version = ConsensusVersion.objects.select_related("project").filter(pk=version_id).first()
    if version is None or version.state == VersionState.DONE:
        return version
    version.state, version.started_at = VersionState.RUNNING, timezone.now()
    version.save(update_fields=["state", "started_at"])
    try:
        clock = time.perf_counter()
        timings = {}
        by_image = panels(project=version.project, include_not_blind=version.include_not_blind)
        image_ids = sorted(by_image)
        annotations = [{a: boxes for a, (boxes, _) in by_image[i].items()} for i in image_ids]
        timings["load"], clock = time.perf_counter() - clock, time.perf_counter()
        reliability = None
        if version.reliability_weighted and annotations:
            # gold images anchor the estimate: there the truth of a candidate is observed
            references = gold_references(project=version.project)
            gold = {
                index: truth[~ignored]
                for index, image_id in enumerate(image_ids)
                if image_id in references
                for truth, ignored in [references[image_id]]
            }
            reliability = estimate_reliability(annotations, iou_threshold=version.iou_threshold, gold=gold)
        prepared: dict[int, tuple] = {}

        def consolidator(index: int, image: dict) -> ImageWork:
            # the version's own consensus of each image, made in the agreement pass
            work = _consolidate(version, by_image[image_ids[index]], reliability)
            prepared[index] = _image_boxes(work)
            return work

        report = (
            measure(annotations, iou_threshold=version.iou_threshold, bootstrap=1000, consolidator=consolidator)
            if annotations
            else None
        )
        results = [
            _image_result(version, image_id, len(by_image[image_id]), prepared[index], report.images.f1[index],
                          report.images.mean_iou[index])
            for index, image_id in enumerate(image_ids)
        ]  # fmt: skip
        timings["compute"], clock = time.perf_counter() - clock, time.perf_counter()
        with transaction.atomic():
            ImageConsensus.objects.filter(version=version).delete()
            _write(results)
            adjudications_apply(version)
            timings["write"], clock = time.perf_counter() - clock, time.perf_counter()
            if report is not None:
                agreement_report_build(
                    version=version,
                    by_image=by_image,
                    reliability=reliability,
                    report=report,
                    member_ious=np.concatenate([ious for *_, ious in results]) if results else np.zeros(0),
                )
            timings["report"] = time.perf_counter() - clock
            version.state = VersionState.DONE
            version.finished_at = timezone.now()
            version.reliability = _reliability_json(reliability)
            version.timings = {name: round(seconds, 3) for name, seconds in timings.items()}
            if report is not None:
                version.alpha = _number(report.alpha)
                version.alpha_low, version.alpha_high = (_number(v) for v in report.intervals.get("alpha", (None,) * 2))
                version.pairwise_f1 = _number(report.f1)
                version.mean_iou = _number(report.mean_iou)
            ConsensusVersion.objects.filter(project=version.project, is_current=True).update(is_current=False)
            version.is_current = True
            version.save()
    except Exception as error:
        logger.exception("Consensus version %s failed", version.pk)
        ConsensusVersion.objects.filter(pk=version.pk).update(
            state=VersionState.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
        raise
    return version


def consensus_versions_stalled(*, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Versions still pending `older_than` after they were made (their task was never sent
    or never taken), and versions running for longer than the groundtruth queue's hard time
    limit (their worker died: nothing of theirs was written, computing again is safe)."""
    cutoff = timezone.now() - older_than
    _, hard_limit = settings.CELERY_QUEUE_TIME_LIMITS["groundtruth"]
    dead_before = timezone.now() - timedelta(seconds=hard_limit)
    return list(
        ConsensusVersion.objects.filter(
            Q(state=VersionState.PENDING, created_at__lt=cutoff)
            | Q(state=VersionState.RUNNING, started_at__lt=dead_before)
        ).values_list("pk", flat=True)
    )


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
    to do: no current version, or fewer than k submissions."""
    image = Image.objects.select_related("project").filter(pk=image_id).first()
    if image is None:
        return None
    version = ConsensusVersion.objects.filter(project=image.project, is_current=True, state=VersionState.DONE).first()
    if version is None:
        return None
    panel = panels(project=image.project, image_ids=[image.pk]).get(image.pk, {})
    if len(panel) < image.project.overlap_k:  # k blind submissions, whatever the version includes
        return None
    if version.include_not_blind:
        panel = panels(project=image.project, image_ids=[image.pk], include_not_blind=True)[image.pk]
    with transaction.atomic():
        existing = ImageConsensus.objects.select_for_update().filter(version=version, image=image).first()
        if existing is not None and Adjudication.objects.filter(image=image, is_active=True).exists():
            return existing  # a reviewer settled it; only they can ask for it to be redone
        if existing is not None:
            existing.delete()
        reliability = _reliability_from_json(version.reliability)
        work = _consolidate(version, panel, reliability)
        figures = measure(
            [{a: boxes for a, (boxes, _) in panel.items()}],
            iou_threshold=version.iou_threshold,
            bootstrap=0,
            consolidator=lambda index, image: work,
        ).images
        result = _image_result(version, image.pk, len(panel), _image_boxes(work), figures.f1[0], figures.mean_iou[0])
        (row,) = _write([result])
        adjudications_apply(version, image_ids=[image.pk])
        row.refresh_from_db()
    return row


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
