"""Writes of the groundtruth app: new consensus versions (computed by the worker,
groundtruth/computing.py), adjudications and gold tasks."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.shortcuts import get_object_or_404
from django.utils import timezone

from config.celery import send_quietly
from config.errors import Conflict, ValidationFailed
from datasets.models import Image
from groundtruth.computing import adjudications_apply, image_consensus_update
from groundtruth.models import Adjudication, Annotation, AnnotationKind, ConsensusVersion, ImageConsensus
from groundtruth.records import annotation_record, image_boxes_check
from groundtruth.tasks import consensus_version_compute_task
from projects.models import Membership, Project

CODE_VERSION = "boxes-consensus-1"
FUSE_METHODS = ("median", "mean")


def weighting_by_default(*, project: Project, quorum: float | None = None) -> bool:
    """Whether a new version weighs annotators by their estimated reliability unless told:
    yes for panels of three or more (where the estimate is identifiable and, on simulated
    panels, at least the plain majority and the best annotator), when no quorum is set."""
    return project.overlap_k >= 3 and quorum is None


def consensus_version_create(
    *,
    project: Project,
    user: AbstractBaseUser,
    iou_threshold: float = 0.5,
    quorum: float | None = None,
    fuse: str = "median",
    reliability_weighted: bool | None = None,
    accept_f1: float = 0.8,
    include_not_blind: bool = False,
) -> ConsensusVersion:
    """A new pending version, computed by a task on the `groundtruth` queue after commit.
    `reliability_weighted` None: `weighting_by_default`. ValidationFailed (400) for a
    parameter out of range; nothing is created then."""
    if reliability_weighted is None:
        reliability_weighted = weighting_by_default(project=project, quorum=quorum)
    problems = {}
    if not 0.05 <= iou_threshold <= 0.95:
        problems["iou_threshold"] = ["Must lie between 0.05 and 0.95."]
    if quorum is not None and not 0 < quorum <= 1:
        problems["quorum"] = ["A share of the annotators: more than 0, at most 1 (empty for a strict majority)."]
    elif quorum is not None and reliability_weighted:
        problems["quorum"] = [
            "Leave it empty with reliability weighting: a box is kept when the evidence for a pedestrian, "
            "from each annotator's estimated false-positive and miss rates, outweighs the evidence against."
        ]
    if fuse not in FUSE_METHODS:
        problems["fuse"] = [f"One of {', '.join(FUSE_METHODS)}."]
    if not 0 <= accept_f1 <= 1:
        problems["accept_f1"] = ["Must lie between 0 and 1."]
    if problems:
        named = "; ".join(f"{field.replace('_', ' ')}: {messages[0]}" for field, messages in problems.items())
        raise ValidationFailed(f"Invalid consensus parameters. {named}", fields=problems)
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # numbers are handed out one at a time
        number = (ConsensusVersion.objects.filter(project=project).aggregate(top=Max("number"))["top"] or 0) + 1
        version = ConsensusVersion.objects.create(
            project=project,
            number=number,
            iou_threshold=iou_threshold,
            quorum=quorum,
            fuse=fuse,
            reliability_weighted=reliability_weighted,
            accept_f1=accept_f1,
            include_not_blind=include_not_blind,
            code_version=CODE_VERSION,
            created_by=user,
        )
        transaction.on_commit(lambda: send_quietly(consensus_version_compute_task, version.pk))
    return version


def adjudication_save(*, image: Image, reviewer: AbstractBaseUser, boxes: object) -> Adjudication:
    """Settle an image: `boxes` (dicts x1, y1, x2, y2, label, is_ignored) become its ground
    truth in the current version and in every later one, until `adjudication_undo`.
    ValidationFailed (400) lists every invalid box; nothing is stored then."""
    checked = image_boxes_check(image=image, boxes=boxes)
    version = ConsensusVersion.objects.filter(project=image.project, is_current=True).first()
    if version is None:
        raise Conflict("This project has no consensus version yet; compute one first.", code="no_version")
    with transaction.atomic():
        Adjudication.objects.select_for_update().filter(image=image, is_active=True).update(is_active=False)
        adjudication = Adjudication.objects.create(
            image=image,
            reviewer=reviewer,
            boxes=[[b.x1, b.y1, b.x2, b.y2, b.is_ignored] for b in checked],
        )
        adjudications_apply(version, image_ids=[image.pk])
    return adjudication


def adjudication_undo(*, image: Image) -> ImageConsensus | None:
    """Drop the image's adjudication; the current version's consensus takes it back."""
    with transaction.atomic():
        changed = Adjudication.objects.filter(image=image, is_active=True).update(is_active=False)
    if not changed:
        raise Conflict("This image has no adjudication to redo.", code="not_adjudicated")
    return image_consensus_update(image_id=image.pk)


def gold_set(
    *, image: Image, reviewer: AbstractBaseUser, boxes: object = None, from_adjudication: bool = False
) -> Annotation:
    """Make `image` a gold task with reference boxes: the given ones (validated like a
    submission) or its active adjudication's. Annotators cannot tell gold images apart;
    `groundtruth.selectors.gold_scores` scores them."""
    if from_adjudication:
        adjudication = Adjudication.objects.filter(image=image, is_active=True).first()
        if adjudication is None:
            raise Conflict("This image has no adjudication to take the gold boxes from.", code="not_adjudicated")
        boxes = [
            {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": image.project.labels[0], "is_ignored": ignore}
            for x1, y1, x2, y2, ignore in adjudication.boxes
        ]
    checked = image_boxes_check(image=image, boxes=boxes)
    return annotation_record(image=image, annotator=reviewer, boxes=checked, kind=AnnotationKind.GOLD)


def gold_unset(*, image: Image) -> None:
    """Take `image` out of the gold tasks; its reference boxes are kept, unused."""
    Image.objects.filter(pk=image.pk).update(is_gold=False)


def gold_pause_clear(*, project: Project, user_id: int) -> Membership:
    """A reviewer lets a paused annotator continue (404 for someone not on the project)."""
    membership = get_object_or_404(Membership, project=project, user_id=user_id)
    membership.gold_cleared_at = timezone.now()
    membership.save(update_fields=["gold_cleared_at"])
    return membership
