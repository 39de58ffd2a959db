"""The assignment engine: blind overlap leasing, drafts, submissions and skips.

An image takes at most the project's k annotators, counting submissions and live leases.
`assignment_lease_next` holds the chosen image's row lock (PostgreSQL: FOR UPDATE SKIP
LOCKED, so concurrent callers take different images instead of waiting) while it counts
that image's slots again and writes the lease, so no image ever gets a (k+1)-th annotator.
"""

import random
import time
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationKind,
    AnnotationSource,
    Assignment,
    AssignmentState,
    Box,
    Image,
    Project,
)
from boxes.validation import boxes_check
from config.errors import Conflict, PreconditionFailed, ValidationFailed

# Candidates looked at per attempt; a caller whose candidates are all locked by others
# looks further down the queue.
CANDIDATES = 16
# Scans of the queue when every free image was locked by other callers at that moment.
LOCK_RETRIES = 50


def _holding_slot(now) -> Q:
    """Assignments that occupy one of an image's k slots: submitted, or leased and still live."""
    return Q(state=AssignmentState.SUBMITTED) | Q(state=AssignmentState.LEASED, lease_expires_at__gt=now)


def _eligible(project: Project, user: AbstractBaseUser, now) -> QuerySet[Image]:
    """Images with a free slot that `user` has not submitted or skipped, in queue order.

    Submissions are counted on the image row; live leases by a correlated count that the
    database runs only for the rows it walks through in index order, until it has enough.
    """
    live = (
        Assignment.objects.filter(image=OuterRef("pk"), state=AssignmentState.LEASED, lease_expires_at__gt=now)
        .order_by()
        .values("image")
        .annotate(total=Count("pk"))
        .values("total")
    )
    finished = Assignment.objects.filter(
        image=OuterRef("pk"), annotator=user, state__in=[AssignmentState.SUBMITTED, AssignmentState.SKIPPED]
    )
    return (
        Image.objects.filter(project=project, submitted_count__lt=project.overlap_k)
        .annotate(live=Coalesce(Subquery(live), 0))
        .filter(live__lt=project.overlap_k - F("submitted_count"))
        .exclude(Exists(finished))
    )


def assignment_live(*, project: Project, user: AbstractBaseUser) -> Assignment | None:
    return (
        Assignment.objects.filter(
            image__project=project, annotator=user, state=AssignmentState.LEASED, lease_expires_at__gt=timezone.now()
        )
        .select_related("image")
        .first()
    )


def assignment_lease_next(*, project: Project, user: AbstractBaseUser) -> Assignment | None:
    """Lease the caller's next image, or give back their live lease; None when none is left.

    Order: a gold image at the project's gold rate, then images sent back by serving
    (priority), then the images closest to k submissions (so consensus comes early), then
    the project's seeded shuffle.
    """
    live = assignment_live(project=project, user=user)
    if live is not None:
        return live
    if project.gold_pause_after:
        from groundtruth.selectors import gold_pause_reason

        reason = gold_pause_reason(project=project, user=user)
        if reason is not None:
            raise Conflict(reason, code="paused")
    now = timezone.now()
    eligible = _eligible(project, user, now)
    wants_gold = False
    if project.gold_rate > 0:
        done = Assignment.objects.filter(annotator=user, image__project=project).count()
        wants_gold = random.Random(f"{user.pk}:{project.pk}:{done}").random() < project.gold_rate
    orders = [("-is_gold", "-submitted_count", "shuffle_key")] if wants_gold else []
    orders.append(("is_gold", "-priority", "-submitted_count", "shuffle_key"))
    for attempt in range(LOCK_RETRIES):
        saw_locked = False
        for order in orders:
            skip = 0
            while True:
                candidates = list(eligible.order_by(*order).values_list("pk", flat=True)[skip : skip + CANDIDATES])
                if not candidates:
                    break
                assignment, was_locked = _lease_one(project=project, user=user, candidates=candidates, order=order)
                if assignment is not None:
                    return assignment
                saw_locked |= was_locked
                skip += CANDIDATES
        if not saw_locked:
            return None
        # Every free image was being leased by someone else just now: look again shortly.
        time.sleep(0.005 * (attempt + 1))
    return None


def _lease_one(
    *, project: Project, user: AbstractBaseUser, candidates: list[int], order: tuple[str, ...]
) -> tuple[Assignment | None, bool]:
    """Lease the first candidate, in queue order, that still has a free slot; also says
    whether candidates were passed over because other callers held their locks.

    One row is locked at a time (PostgreSQL: FOR UPDATE SKIP LOCKED, LIMIT 1), so callers
    racing for the head of the queue each take a different image instead of waiting.
    """
    remaining = list(candidates)
    while remaining:
        with transaction.atomic():
            locking = Image.objects.filter(pk__in=remaining).order_by(*order)
            if connection.features.has_select_for_update_skip_locked:
                locking = locking.select_for_update(skip_locked=True)
            image = locking.first()
            if image is None:  # every remaining candidate is held by another caller
                return None, True
            remaining.remove(image.pk)
            now = timezone.now()
            slots = Assignment.objects.filter(image=image).filter(_holding_slot(now))
            if slots.count() >= project.overlap_k:
                continue
            mine = Assignment.objects.filter(image=image, annotator=user).first()
            if mine is not None and mine.state in (AssignmentState.SUBMITTED, AssignmentState.SKIPPED):
                continue
            expires = now + timedelta(minutes=project.lease_minutes)
            if mine is None:
                created = Assignment.objects.create(
                    image=image, annotator=user, leased_at=now, lease_expires_at=expires
                )
                return created, False
            # An expired lease of this caller's own: take the image up again, draft kept.
            mine.state, mine.leased_at, mine.lease_expires_at = AssignmentState.LEASED, now, expires
            mine.version += 1
            mine.save(update_fields=["state", "leased_at", "lease_expires_at", "version"])
            return mine, False
    return None, False


def assignment_get(*, assignment_id: int, user: AbstractBaseUser) -> Assignment:
    """The caller's own assignment; any other id answers 404, whoever it belongs to."""
    return get_object_or_404(Assignment.objects.select_related("image__project"), pk=assignment_id, annotator=user)


def _check_boxes(assignment: Assignment, boxes: object):
    return image_boxes_check(image=assignment.image, boxes=boxes)


def image_boxes_check(*, image: Image, boxes: object) -> list:
    """`boxes` (the canvas's dicts) checked against `image` and its project's labels; a
    ValidationFailed (400) listing every invalid box otherwise. Submissions, adjudications
    and gold references all go through it."""
    checked, problems, whole = boxes_check(boxes, width=image.width, height=image.height, labels=image.project.labels)
    if whole:
        raise ValidationFailed(f"Invalid boxes: {whole}.", fields={"boxes": [whole]})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} box(es) are invalid; nothing was saved.",
            fields={"boxes": [{"index": p.index, "errors": list(p.messages)} for p in problems]},
        )
    return checked


def _active_seconds(assignment: Assignment, reported: float | None) -> float:
    """The client's count of active seconds, never less than before nor more than wall time."""
    if reported is None:
        return assignment.active_seconds
    wall = (timezone.now() - assignment.leased_at).total_seconds() + 1
    return max(assignment.active_seconds, min(float(reported), wall))


def assignment_draft_save(
    *, assignment: Assignment, boxes: object, expected_version: int, active_seconds: float | None = None
) -> Assignment:
    """Save the canvas's boxes so far; PreconditionFailed (412) when another tab saved first."""
    with transaction.atomic():
        current = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if current.state != AssignmentState.LEASED:
            raise Conflict(f"This task is {current.get_state_display().lower()}; drafts are closed.", code="not_leased")
        if current.version != expected_version:
            raise PreconditionFailed(
                f"Another tab saved this task first (version {current.version}); reload it before saving.",
                fields={"version": current.version, "draft": current.draft},
            )
        _check_boxes(current, boxes)
        current.draft = boxes
        current.version += 1
        current.active_seconds = _active_seconds(current, active_seconds)
        current.save(update_fields=["draft", "version", "active_seconds"])
        return current


def assignment_submit(
    *,
    assignment: Assignment,
    boxes: object,
    active_seconds: float | None = None,
    source: str = AnnotationSource.PANEL,
) -> Annotation:
    """Submit the boxes (an empty list means "no pedestrians here"); the same annotation
    again for a retried request. ValidationFailed (400) lists every invalid box."""
    with transaction.atomic():
        current = Assignment.objects.select_for_update().select_related("image__project").get(pk=assignment.pk)
        if current.state == AssignmentState.SUBMITTED:
            return current.annotation
        if current.state == AssignmentState.SKIPPED:
            raise Conflict("This task was skipped; it cannot be submitted.", code="skipped")
        # An expired lease (state leased past its time, or marked expired) may still submit
        # while the image has a free slot.
        checked = _check_boxes(current, boxes)
        now = timezone.now()
        if current.lease_expires_at <= now:
            # The lease ran out: the slot may have gone to someone else meanwhile.
            Image.objects.select_for_update().get(pk=current.image_id)
            others = current.image.assignments.exclude(pk=current.pk).filter(_holding_slot(now))
            if others.count() >= current.image.project.overlap_k:
                raise Conflict("Your lease ran out and the image went to others; take the next task.", code="expired")
        previous = Annotation.objects.filter(
            image=current.image, annotator=current.annotator, kind=AnnotationKind.SUBMISSION, is_current=True
        ).first()
        if previous is not None:
            previous.is_current = False
            previous.save(update_fields=["is_current"])
        annotation = Annotation.objects.create(
            image=current.image,
            annotator=current.annotator,
            kind=AnnotationKind.SUBMISSION,
            source=source,
            revision=previous.revision + 1 if previous else 1,
            supersedes=previous,
            active_seconds=_active_seconds(current, active_seconds),
        )
        Box.objects.bulk_create(
            Box(annotation=annotation, **{field: getattr(box, field) for field in BOX_FIELDS}) for box in checked
        )
        current.state, current.annotation, current.finished_at = AssignmentState.SUBMITTED, annotation, now
        Image.objects.filter(pk=current.image_id).update(submitted_count=F("submitted_count") + 1)
        if Image.objects.filter(pk=current.image_id, submitted_count__gte=current.image.project.overlap_k).exists():
            # the k-th submission: the current consensus version takes this image in
            from groundtruth.services import image_consensus_enqueue

            image_id, project_id = current.image_id, current.image.project_id
            transaction.on_commit(lambda: image_consensus_enqueue(image_id=image_id, project_id=project_id))
        current.draft = boxes
        current.active_seconds = annotation.active_seconds
        current.save(update_fields=["state", "annotation", "finished_at", "draft", "active_seconds"])
        return annotation


BOX_FIELDS = ("x1", "y1", "x2", "y2", "label", "is_occluded", "is_truncated", "is_ignored", "is_from_suggestion")


def assignment_skip(*, assignment: Assignment, reason: str) -> Assignment:
    """Give the image back with a reason; the caller will not be offered it again."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why you skip this image.", fields={"reason": ["This field is required."]})
    with transaction.atomic():
        current = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if current.state == AssignmentState.SUBMITTED:
            raise Conflict("This task was submitted; it cannot be skipped.", code="submitted")
        if current.state != AssignmentState.SKIPPED:
            current.state, current.skip_reason, current.finished_at = (
                AssignmentState.SKIPPED,
                reason[:500],
                timezone.now(),
            )
            current.save(update_fields=["state", "skip_reason", "finished_at"])
        return current


def assignment_leases_expire() -> int:
    """Mark leases past their time as expired (eligibility already ignores them)."""
    return Assignment.objects.filter(state=AssignmentState.LEASED, lease_expires_at__lte=timezone.now()).update(
        state=AssignmentState.EXPIRED
    )
