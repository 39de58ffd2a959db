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

from annotation.models import Assignment, AssignmentState
from config.errors import Conflict, PreconditionFailed, ValidationFailed
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationSource
from groundtruth.records import BOX_FIELDS, annotation_record, image_boxes_check
from groundtruth.selectors import gold_pause_reason
from projects.models import Project, Role
from projects.selectors import project_role, role_at_least

# Candidates looked at per attempt; a caller whose candidates are all locked by others
# looks further down the queue.
CANDIDATES = 16
# Scans of the queue when every free image was locked by other callers at that moment.
LOCK_RETRIES = 50
# Within gold images and within the others: served images a model was unsure of first,
# then those closest to their k submissions, then the project's seeded shuffle.
QUEUE_ORDER = ("-priority", "-submitted_count", "shuffle_key")


def _holding_slot(now) -> Q:
    """Assignments that occupy one of an image's k slots: a blind annotator's, submitted, or
    leased and still live. A member with review rights (not blind) holds none."""
    return Q(is_blind=True) & (
        Q(state=AssignmentState.SUBMITTED) | Q(state=AssignmentState.LEASED, lease_expires_at__gt=now)
    )


def _eligible(project: Project, user: AbstractBaseUser, now) -> QuerySet[Image]:
    """Images with a free slot that `user` has not submitted or skipped, in queue order.

    Submissions are counted on the image row; live leases by a correlated count that the
    database runs only for the rows it walks through in index order, until it has enough.
    """
    live = (
        Assignment.objects.filter(
            image=OuterRef("pk"), is_blind=True, state=AssignmentState.LEASED, lease_expires_at__gt=now
        )
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


NOT_BLIND_MESSAGE = (
    "You review this project: you can see the panel's boxes, so your annotations would not be blind. "
    "A project admin can let reviewers annotate; their submissions are then marked not blind, fill none of "
    "an image's places and are left out of the consensus and the human baseline."
)


def assignment_is_blind(*, project: Project, user: AbstractBaseUser) -> bool:
    """Whether `user`'s tasks in `project` are blind: True for annotators. Members with review
    rights (reviewers, admins, staff) see everyone's boxes: False when the project lets them
    annotate, Conflict (409, `not_blind`) otherwise."""
    if not role_at_least(project_role(project=project, user=user), Role.REVIEWER):
        return True
    if not project.reviewers_annotate:
        raise Conflict(NOT_BLIND_MESSAGE, code="not_blind")
    return False


def _live_leases(project: Project, user: AbstractBaseUser) -> QuerySet[Assignment]:
    """The caller's live leases in `project`, oldest first: the task they are on, then the one
    the canvas leased ahead (`assignment_lease_ahead`), if any."""
    return (
        Assignment.objects.filter(
            image__project=project, annotator=user, state=AssignmentState.LEASED, lease_expires_at__gt=timezone.now()
        )
        .select_related("image")
        .order_by("leased_at", "pk")
    )


def assignment_live(*, project: Project, user: AbstractBaseUser) -> Assignment | None:
    """The task the caller is on: their oldest live lease."""
    return _live_leases(project, user).first()


def assignment_lease_next(*, project: Project, user: AbstractBaseUser) -> Assignment | None:
    """Lease the caller's next image, or give back their live lease; None when none is left.

    Members with review rights are refused (409 `not_blind`) unless the project lets them
    annotate; their leases then hold none of an image's k places.

    Gold images come only among the others, at the project's gold rate: each lease draws,
    seeded by the caller, the project and the caller's count of tasks, whether it is a gold
    one; a gold draw takes a gold image if the caller has one left, any other lease a normal
    image. Once the caller has no normal image left, nothing is handed out: a run of gold
    images at the end of the queue would tell them apart. Within each kind: images sent back by serving (priority),
    then those closest to k submissions (so consensus comes early), then the project's
    seeded shuffle.
    """
    is_blind = assignment_is_blind(project=project, user=user)
    live = assignment_live(project=project, user=user)
    if live is not None:
        return live
    return _lease_new(project=project, user=user, is_blind=is_blind)


def assignment_lease_ahead(*, project: Project, user: AbstractBaseUser) -> Assignment | None:
    """The task after the one the caller is on, leased now so that the canvas can load its
    image while they work; None when they are on no task or nothing else is left.

    It is an ordinary lease (it holds one of the image's k places until it expires, and
    `assignment_lease_next` hands it out once the current task is submitted or skipped); a
    caller holds at most two, the second given back on every call."""
    is_blind = assignment_is_blind(project=project, user=user)
    live = list(_live_leases(project, user)[:2])
    if not live:
        return None
    if len(live) == 2:
        return live[1]
    return _lease_new(project=project, user=user, is_blind=is_blind, besides=live[0].image_id)


def _lease_new(
    *, project: Project, user: AbstractBaseUser, is_blind: bool, besides: int | None = None
) -> Assignment | None:
    """A new lease for the caller (the queue's rules, the gold draw and pause); `besides`:
    an image they hold already, left out."""
    if project.gold_pause_after:
        reason = gold_pause_reason(project=project, user=user)
        if reason is not None:
            raise Conflict(reason, code="paused")
    now = timezone.now()
    eligible = _eligible(project, user, now)
    if besides is not None:
        eligible = eligible.exclude(pk=besides)
    normal = eligible.filter(is_gold=False)
    queues = [normal]
    if project.gold_rate > 0:
        # the caller's tasks so far, anywhere (one index scan, no join): a new draw each lease
        done = Assignment.objects.filter(annotator=user).count()
        if random.Random(f"{user.pk}:{project.pk}:{done}").random() < project.gold_rate and normal.exists():
            queues.insert(0, eligible.filter(is_gold=True))
    for attempt in range(LOCK_RETRIES):
        saw_locked = False
        for queue in queues:
            skip = 0
            while True:
                candidates = list(queue.order_by(*QUEUE_ORDER).values_list("pk", flat=True)[skip : skip + CANDIDATES])
                if not candidates:
                    break
                assignment, was_locked = _lease_one(
                    project=project, user=user, candidates=candidates, is_blind=is_blind
                )
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
    *, project: Project, user: AbstractBaseUser, candidates: list[int], is_blind: bool
) -> tuple[Assignment | None, bool]:
    """Lease the first candidate, in queue order, that still has a free slot; also says
    whether candidates were passed over because other callers held their locks.

    One row is locked at a time (PostgreSQL: FOR UPDATE SKIP LOCKED, LIMIT 1), so callers
    racing for the head of the queue each take a different image instead of waiting.
    """
    remaining = list(candidates)
    while remaining:
        with transaction.atomic():
            locking = Image.objects.filter(pk__in=remaining).order_by(*QUEUE_ORDER)
            if connection.features.has_select_for_update_skip_locked:
                locking = locking.select_for_update(skip_locked=True)
            image = locking.first()
            if image is None:  # every remaining candidate is held by another caller
                return None, True
            remaining.remove(image.pk)
            now = timezone.now()
            slots = Assignment.objects.filter(image=image).filter(_holding_slot(now))
            if is_blind and slots.count() >= project.overlap_k:
                continue
            mine = Assignment.objects.filter(image=image, annotator=user).first()
            if mine is not None and mine.state in (AssignmentState.SUBMITTED, AssignmentState.SKIPPED):
                continue
            expires = now + timedelta(minutes=project.lease_minutes)
            if mine is None:
                created = Assignment.objects.create(
                    image=image, annotator=user, leased_at=now, lease_expires_at=expires, is_blind=is_blind
                )
                return created, False
            # An expired lease of this caller's own: take the image up again, draft kept.
            mine.state, mine.leased_at, mine.lease_expires_at = AssignmentState.LEASED, now, expires
            mine.version += 1
            mine.is_blind = is_blind
            mine.save(update_fields=["state", "leased_at", "lease_expires_at", "version", "is_blind"])
            return mine, False
    return None, False


def assignment_get(*, assignment_id: int, user: AbstractBaseUser) -> Assignment:
    """The caller's own assignment; any other id answers 404, whoever it belongs to."""
    return get_object_or_404(Assignment.objects.select_related("image__project"), pk=assignment_id, annotator=user)


def _check_boxes(assignment: Assignment, boxes: object):
    return image_boxes_check(image=assignment.image, boxes=boxes)


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
    """Submit the boxes (an empty list means "no pedestrians here"). The same boxes again (a
    retried request) give back the same annotation; other boxes on a submitted task are a
    Conflict (409, `already_submitted`) naming the stored annotation and its revision.
    ValidationFailed (400) lists every invalid box.

    A blind annotator's submission fills one of the image's k places; a member with review
    rights (who can see others' boxes, or has come to since leasing) submits a not-blind
    annotation that fills none."""
    with transaction.atomic():
        current = Assignment.objects.select_for_update().select_related("image__project").get(pk=assignment.pk)
        if current.state == AssignmentState.SKIPPED:
            raise Conflict("This task was skipped; it cannot be submitted.", code="skipped")
        checked = _check_boxes(current, boxes)
        if current.state == AssignmentState.SUBMITTED:
            return _submitted_again(current, checked)
        project = current.image.project
        is_blind = current.is_blind and not role_at_least(
            project_role(project=project, user=current.annotator), Role.REVIEWER
        )
        now = timezone.now()
        # An expired lease (state leased past its time, or marked expired) may still submit
        # while the image has a free slot.
        if is_blind and current.lease_expires_at <= now:
            # The lease ran out: the slot may have gone to someone else meanwhile.
            Image.objects.select_for_update().get(pk=current.image_id)
            others = current.image.assignments.exclude(pk=current.pk).filter(_holding_slot(now))
            if others.count() >= project.overlap_k:
                raise Conflict("Your lease ran out and the image went to others; take the next task.", code="expired")
        annotation = annotation_record(
            image=current.image,
            annotator=current.annotator,
            boxes=checked,
            source=source,
            is_blind=is_blind,
            active_seconds=_active_seconds(current, active_seconds),
        )
        current.state, current.annotation, current.finished_at = AssignmentState.SUBMITTED, annotation, now
        current.is_blind = is_blind
        current.draft = boxes
        current.active_seconds = annotation.active_seconds
        current.save(update_fields=["state", "annotation", "finished_at", "draft", "active_seconds", "is_blind"])
        return annotation


def _submitted_again(assignment: Assignment, checked: list) -> Annotation:
    """The stored annotation of a submitted task, when `checked` holds the same boxes (a
    retried request); a Conflict naming it otherwise: a submission is never changed silently."""
    annotation = assignment.annotation
    stored = sorted(_box_key(box) for box in annotation.boxes.all())
    if stored == sorted(_box_key(box) for box in checked):
        return annotation
    raise Conflict(
        f"This task was submitted already (annotation {annotation.pk}, revision {annotation.revision}, "
        f"{len(stored)} boxes); a submission is not changed. Take the next task.",
        code="already_submitted",
        fields={"annotation": annotation.pk, "revision": annotation.revision},
    )


def _box_key(box) -> tuple:
    """A box's fields, coordinates rounded to 1/1000 px as stored boxes are compared."""
    return tuple(
        round(value, 3) if isinstance(value, float) else value for value in (getattr(box, f) for f in BOX_FIELDS)
    )


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
