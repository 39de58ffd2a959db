"""Reads of the groundtruth app."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from string import ascii_uppercase

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Avg, Count, Exists, F, OuterRef, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from boxes.geometry import ioa_matrix
from boxes.metrics import OperatingPoint, score_boxes
from datasets.models import Image
from groundtruth.models import (
    Adjudication,
    Annotation,
    AnnotationKind,
    Box,
    ChunkState,
    ConsensusVersion,
    ImageConsensus,
    ImageState,
)
from projects.models import Membership, Project
from projects.selectors import project_list

Panel = dict[int, tuple[np.ndarray, np.ndarray]]  # annotator id -> (n x 4 boxes, n ignore flags)


def panels(
    *,
    project: Project,
    image_ids: list[int] | None = None,
    include_not_blind: bool = False,
    submitted_before: datetime | None = None,
) -> dict[int, Panel]:
    """The current submissions of every image that has all of its k blind annotators (or of
    `image_ids`, whatever their count), as boxes per annotator; an annotator who drew
    nothing has an empty array. Submissions of members with review rights (not blind) are
    left out unless `include_not_blind`; they never count toward an image's k. With
    `submitted_before`, only submissions made before then."""
    # Plain joins, counted here: a subquery that counts per image is planned as a quadratic
    # nested loop while the tables' statistics predate a bulk import (9 s for 3,000 images).
    # Joins, not id lists: a large project would pass the database's parameter limit.
    annotations = Annotation.objects.filter(image__project=project, kind=AnnotationKind.SUBMISSION, is_current=True)
    boxes = Box.objects.filter(
        annotation__image__project=project, annotation__kind=AnnotationKind.SUBMISSION, annotation__is_current=True
    )
    if image_ids is not None:
        annotations = annotations.filter(image_id__in=image_ids)
        boxes = boxes.filter(annotation__image_id__in=image_ids)
    if submitted_before is not None:
        annotations = annotations.filter(submitted_at__lt=submitted_before)
        boxes = boxes.filter(annotation__submitted_at__lt=submitted_before)
    if not include_not_blind:
        annotations = annotations.filter(is_blind=True)
        boxes = boxes.filter(annotation__is_blind=True)
    seen = list(annotations.values_list("id", "image_id", "annotator_id", "is_blind"))
    if image_ids is None:
        blind = Counter(image_id for _, image_id, _, is_blind in seen if is_blind)
        seen = [row for row in seen if blind[row[1]] >= project.overlap_k]
    wanted = {annotation_id for annotation_id, *_ in seen}
    rows = defaultdict(list)
    for annotation_id, x1, y1, x2, y2, ignored in boxes.values_list(
        "annotation_id", "x1", "y1", "x2", "y2", "is_ignored"
    ).order_by("annotation_id", "id"):
        if annotation_id in wanted:
            rows[annotation_id].append((x1, y1, x2, y2, ignored))
    result: dict[int, Panel] = defaultdict(dict)
    for annotation_id, image_id, annotator_id, _ in seen:
        array = np.array(rows.get(annotation_id, []), dtype=float).reshape(-1, 5)
        result[image_id][annotator_id] = (array[:, :4], array[:, 4].astype(bool))
    return dict(result)


def image_panels(*, image_id: int) -> tuple[Panel, Panel]:
    """One image's current submissions as `panels` gives them, (the blind ones, all of them),
    in one query: an image's incremental update runs after every k-th submission."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.id, a.annotator_id, a.is_blind, b.x1, b.y1, b.x2, b.y2, b.is_ignored "
            f"FROM {Annotation._meta.db_table} a LEFT JOIN {Box._meta.db_table} b ON b.annotation_id = a.id "
            "WHERE a.image_id = %s AND a.kind = %s AND a.is_current = %s ORDER BY a.annotator_id, b.id",
            [image_id, AnnotationKind.SUBMISSION, True],
        )
        found = cursor.fetchall()
    rows: dict[tuple[int, bool], list] = defaultdict(list)
    for _, annotator_id, is_blind, *box in found:
        boxes = rows[(annotator_id, bool(is_blind))]
        if box[0] is not None:  # an annotation without boxes: its one row has no box
            boxes.append(box)
    blind, everyone = {}, {}
    for (annotator_id, is_blind), boxes in rows.items():
        array = np.array(boxes, dtype=float).reshape(-1, 5)
        everyone[annotator_id] = (array[:, :4], array[:, 4].astype(bool))
        if is_blind:
            blind[annotator_id] = everyone[annotator_id]
    return blind, everyone


def complete_image_ids(*, project: Project) -> list[int]:
    """The images that have all k blind current submissions, in id order: those `panels`
    loads when it is given no image ids. Grouped in the database, no box read."""
    return list(
        Annotation.objects.filter(
            image__project=project, kind=AnnotationKind.SUBMISSION, is_current=True, is_blind=True
        )
        .values("image_id")
        .annotate(submissions=Count("id"))
        .filter(submissions__gte=project.overlap_k)
        .order_by("image_id")
        .values_list("image_id", flat=True)
    )


def consensus_versions(*, project: Project) -> QuerySet[ConsensusVersion]:
    return ConsensusVersion.objects.filter(project=project).order_by("-number")


def consensus_version_get(*, version_id: int, user: AbstractBaseUser) -> ConsensusVersion:
    """The version if `user` may see its project (404 otherwise, whether or not it exists)."""
    return get_object_or_404(
        ConsensusVersion.objects.select_related("project").filter(project__in=project_list(user=user)), pk=version_id
    )


def chunk_progress(*, version: ConsensusVersion) -> dict[str, int]:
    """How far a version's chunks are: total, done, running, and the worker processes that ran them."""
    states = dict(version.chunks.values_list("state").annotate(count=Count("id")).values_list("state", "count"))
    return {
        "total": sum(states.values()),
        "done": states.get(ChunkState.DONE, 0),
        "running": states.get(ChunkState.RUNNING, 0),
        "workers": version.chunks.exclude(worker="").values("worker").distinct().count(),
    }


def image_state_counts(*, version: ConsensusVersion) -> dict[str, int]:
    counts = dict(version.images.values_list("state").annotate(count=Count("id")).values_list("state", "count"))
    return {state.value: counts.get(state.value, 0) for state in ImageState}


def review_queue(*, project: Project) -> QuerySet[ImageConsensus]:
    """Images of the current version that need a reviewer, least agreed first."""
    return (
        ImageConsensus.objects.filter(version__project=project, version__is_current=True, state=ImageState.NEEDS_REVIEW)
        .select_related("image")
        .order_by(F("f1").asc(nulls_first=True), "-uncertain", "image_id")
    )


def adjudication_view(*, image: Image) -> dict:
    """What a reviewer needs to settle an image: each annotator's boxes under an anonymous
    letter, the current version's proposal, and the active adjudication if any."""
    panel = panels(project=image.project, image_ids=[image.pk]).get(image.pk, {})
    annotators = []
    for letter, annotator in zip(ascii_uppercase * 10, sorted(panel), strict=False):
        boxes, flags = panel[annotator]
        annotators.append(
            {
                "name": letter,
                "boxes": [
                    {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "is_ignored": bool(flag)}
                    for (x1, y1, x2, y2), flag in zip(boxes.tolist(), flags.tolist(), strict=True)
                ],
            }
        )
    row = (
        ImageConsensus.objects.filter(version__project=image.project, version__is_current=True, image=image)
        .select_related("version")
        .first()
    )
    adjudication = Adjudication.objects.filter(image=image, is_active=True).first()
    return {
        "image": {"id": image.pk, "width": image.width, "height": image.height},
        "annotators": annotators,
        "consensus": None
        if row is None
        else {
            "version": row.version.number,
            "state": row.state,
            "f1": row.f1,
            "uncertain": row.uncertain,
            "boxes": [
                {
                    "id": b.pk,
                    "x1": b.x1,
                    "y1": b.y1,
                    "x2": b.x2,
                    "y2": b.y2,
                    "support": b.support,
                    "is_uncertain": b.is_uncertain,
                    "is_ignore": b.is_ignore,
                    "source": b.source,
                }
                for b in row.boxes.all()
            ],
        },
        "adjudication": None
        if adjudication is None
        else {"reviewer": adjudication.reviewer_id, "created_at": adjudication.created_at, "boxes": adjudication.boxes},
    }


@dataclass(frozen=True)
class GoldScore:
    """An annotator's submissions on gold images against the gold reference boxes."""

    point: OperatingPoint
    iou_sum: float

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.point.true_positives if self.point.true_positives else None

    def as_dict(self) -> dict:
        point = self.point
        return {
            "images": point.images,
            "precision": point.precision,
            "recall": point.recall,
            "f1": point.f1,
            "mean_iou": self.mean_iou,
        }


def gold_references(
    *, project: Project, image_ids: list[int] | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each gold image's reference: the latest current gold annotation's boxes, and which of
    them are ignore regions."""
    annotations = Annotation.objects.filter(
        image__project=project, image__is_gold=True, kind=AnnotationKind.GOLD, is_current=True
    ).order_by("image_id", "-submitted_at", "-pk")
    if image_ids is not None:
        annotations = annotations.filter(image_id__in=image_ids)
    latest = {}
    for annotation_id, image_id in annotations.values_list("pk", "image_id"):
        latest.setdefault(image_id, annotation_id)
    rows = defaultdict(list)
    for annotation_id, *values in Box.objects.filter(annotation_id__in=latest.values()).values_list(
        "annotation_id", "x1", "y1", "x2", "y2", "is_ignored"
    ):
        rows[annotation_id].append(values)
    references = {}
    for image_id, annotation_id in latest.items():
        array = np.array(rows.get(annotation_id, []), dtype=float).reshape(-1, 5)
        references[image_id] = (array[:, :4], array[:, 4].astype(bool))
    return references


def gold_scores(
    *, project: Project, annotator_id: int | None = None, submitted_before: datetime | None = None
) -> dict[int, GoldScore]:
    """Per annotator (or only `annotator_id`): their current submissions on gold images
    (made before `submitted_before`, if given) scored against the references, matched one to
    one at IoU 0.5 (`boxes.metrics.score_boxes`; a box inside a reference ignore region
    counts neither way)."""
    references = gold_references(project=project)
    if not references:
        return {}
    by_image = panels(project=project, image_ids=list(references), submitted_before=submitted_before)
    totals: dict[int, list] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for image_id, panel in by_image.items():
        truth, ignored = references[image_id]
        for user_id, (boxes, _) in panel.items():
            if annotator_id is not None and user_id != annotator_id:
                continue
            result, false_positives = score_boxes(truth[~ignored], boxes, ignore=truth[ignored])
            total = totals[user_id]
            total[0] += 1
            total[1] += result.count
            total[2] += false_positives
            total[3] += int((~ignored).sum()) - result.count
            total[4] += float(result.ious.sum())
    return {
        user_id: GoldScore(OperatingPoint(tp, fp, fn, images=images), iou_sum)
        for user_id, (images, tp, fp, fn, iou_sum) in totals.items()
    }


def suggestions_taken(*, project: Project) -> bool:
    """Whether any box of the project began as a model's suggestion."""
    return Box.objects.filter(annotation__image__project=project, is_from_suggestion=True).exists()


def suggestion_bias(*, project: Project) -> dict:
    """What the model's suggestions do to the annotators' boxes, read on gold images: every
    current submission's boxes against the image's reference (one to one at IoU 0.5, as
    `gold_scores`), the boxes taken from a suggestion apart from those drawn by hand (how
    many, the share that match the reference, their mean IoU), and the submissions that
    took at least one suggestion apart from those that took none (precision, recall, F1).
    A model's wrong box that annotators keep shows as a lower precision of taken boxes; an
    anchoring of the panel on the model, as a gap between the two kinds of submissions.
    The groups are not randomised: read a gap with their sizes."""
    references = gold_references(project=project)
    annotations = list(
        Annotation.objects.filter(
            image_id__in=list(references), kind=AnnotationKind.SUBMISSION, is_current=True
        ).values_list("pk", "image_id")
    )
    rows = defaultdict(list)
    for annotation_id, *values in Box.objects.filter(
        annotation_id__in=[pk for pk, _ in annotations], is_ignored=False
    ).values_list("annotation_id", "x1", "y1", "x2", "y2", "is_from_suggestion"):
        rows[annotation_id].append(values)
    boxes = {kind: [0, 0, 0.0] for kind in ("taken", "drawn")}  # boxes, matched, IoU sum
    submissions = {kind: [0, 0, 0, 0] for kind in ("with", "without")}  # images, tp, fp, fn
    for annotation_id, image_id in annotations:
        truth, ignored = references[image_id]
        array = np.array(rows.get(annotation_id, []), dtype=float).reshape(-1, 5)
        taken = array[:, 4].astype(bool)
        result, false_positives = score_boxes(truth[~ignored], array[:, :4], ignore=truth[ignored])
        matched_iou = dict(zip(result.pairs[:, 0].tolist(), result.ious.tolist(), strict=True))
        unmatched, regions = result.unmatched_a, truth[ignored]
        in_region = set()  # unmatched boxes inside an ignore region count neither way (as in score_boxes)
        if len(unmatched) and len(regions):
            in_region = set(unmatched[ioa_matrix(array[unmatched, :4], regions).max(axis=1) >= 0.5].tolist())
        for index, is_taken in enumerate(taken.tolist()):
            if index in in_region:
                continue
            total = boxes["taken" if is_taken else "drawn"]
            total[0] += 1
            if index in matched_iou:
                total[1] += 1
                total[2] += matched_iou[index]
        total = submissions["with" if taken.any() else "without"]
        total[0] += 1
        total[1] += result.count
        total[2] += false_positives
        total[3] += int((~ignored).sum()) - result.count
    return {
        "gold_images": len(references),
        "boxes": {
            kind: {
                "boxes": count,
                "matched_share": matched / count if count else None,
                "mean_iou": iou_sum / matched if matched else None,
            }
            for kind, (count, matched, iou_sum) in boxes.items()
        },
        "submissions": {
            kind: {"images": images, **_point_figures(OperatingPoint(tp, fp, fn, images=images))}
            for kind, (images, tp, fp, fn) in submissions.items()
        },
    }


def _point_figures(point: OperatingPoint) -> dict:
    if not point.images:
        return {"precision": None, "recall": None, "f1": None}
    return {"precision": point.precision, "recall": point.recall, "f1": point.f1}


# An annotator's gold figures appear once this many of their gold tasks count.
GOLD_FIGURES_MIN_IMAGES = 5


def gold_figures_cutoff(now: datetime | None = None) -> datetime:
    """Where an annotator's own gold figures stop: the start of the current day (UTC)."""
    now = now or timezone.now()
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def my_figures(*, project: Project, user) -> dict:
    """One annotator's own figures: their gold score, their row of the current version's
    report (agreement with the others' consensus, habits) and their speed. Nothing about
    anyone else.

    The gold score must not tell which task was gold: figures that moved right after a
    submission would give that submission away. So it counts only the gold tasks submitted
    before the start of the current day (UTC), all of a day's at once, and shows nothing
    until at least `GOLD_FIGURES_MIN_IMAGES` count (`gold_as_of` says from when)."""
    cutoff = gold_figures_cutoff()
    score = gold_scores(project=project, annotator_id=user.pk, submitted_before=cutoff).get(user.pk)
    if score is not None and score.point.images < GOLD_FIGURES_MIN_IMAGES:
        score = None
    version = ConsensusVersion.objects.filter(project=project, is_current=True).select_related("report").first()
    report = getattr(version, "report", None) if version is not None else None
    agreement = habits = None
    if report is not None:
        agreement = next((row for row in report.data["baseline"]["annotators"] if row["id"] == user.pk), None)
        habits = next((row for row in report.data["annotators"] if row["id"] == user.pk), None)
    submitted = Annotation.objects.filter(
        image__project=project, annotator=user, kind=AnnotationKind.SUBMISSION, is_current=True
    )
    seconds = submitted.aggregate(seconds=Avg("active_seconds"))["seconds"]
    return {
        "images": submitted.count(),
        "seconds_per_image": seconds,
        "gold": score.as_dict() if score is not None else None,
        "gold_as_of": cutoff.isoformat(),
        "version": version.number if report is not None else None,
        "agreement": None
        if agreement is None
        else {name: agreement[name] for name in ("images", "precision", "recall", "f1", "fppi", "intervals")},
        "habits": None
        if habits is None
        else {name: habits[name] for name in ("edge_offsets_heights", "shift_heights", "boxes_matched")},
    }


def gold_pause_reason(*, project: Project, user, references: dict | None = None) -> str | None:
    """Why `user` may not take new tasks in `project`, or None: with the project's
    gold_pause_after = N > 0, an annotator whose last N gold tasks (since a reviewer last let
    them continue) all scored below gold_min_f1 is paused. `references`: the project's
    `gold_references`, when the caller has them already."""
    count = project.gold_pause_after
    if not count:
        return None
    cleared = Membership.objects.filter(project=project, user=user).values_list("gold_cleared_at", flat=True).first()
    if references is None:
        references = gold_references(project=project)
    recent = Annotation.objects.filter(
        image_id__in=list(references), annotator=user, kind=AnnotationKind.SUBMISSION, is_current=True
    )
    if cleared is not None:
        recent = recent.filter(submitted_at__gt=cleared)
    last = list(recent.order_by("-submitted_at", "-pk").values_list("pk", "image_id")[:count])
    if len(last) < count:
        return None
    rows = defaultdict(list)
    for annotation_id, *values in Box.objects.filter(annotation_id__in=[a for a, _ in last]).values_list(
        "annotation_id", "x1", "y1", "x2", "y2"
    ):
        rows[annotation_id].append(values)
    for annotation_id, image_id in last:
        truth, ignored = references[image_id]
        boxes = np.array(rows.get(annotation_id, []), dtype=float).reshape(-1, 4)
        result, false_positives = score_boxes(truth[~ignored], boxes, ignore=truth[ignored])
        point = OperatingPoint(result.count, false_positives, int((~ignored).sum()) - result.count, images=1)
        if point.f1 >= project.gold_min_f1:
            return None
    return (
        f"You are paused in this project: your last {count} checked images all scored below "
        f"F1 {project.gold_min_f1:.2f} against their reference boxes. A reviewer can let you continue."
    )


@dataclass(frozen=True)
class MemberWork:
    """One member's row of the annotators page."""

    membership: Membership
    submissions: int
    gold: GoldScore | None
    paused: bool


def members_work(*, project: Project) -> list[MemberWork]:
    """Every member of the project, by username: their current submitted images, their gold
    score, and whether their gold tasks have paused them (`gold_pause_reason`)."""
    submitted = dict(
        Annotation.objects.filter(image__project=project, kind=AnnotationKind.SUBMISSION, is_current=True)
        .values("annotator")
        .annotate(count=Count("pk"))
        .values_list("annotator", "count")
    )
    scores = gold_scores(project=project)
    memberships = list(Membership.objects.filter(project=project).select_related("user").order_by("user__username"))
    paused = gold_paused(project=project, users=[m.user for m in memberships if m.user_id in scores])
    return [MemberWork(m, submitted.get(m.user_id, 0), scores.get(m.user_id), m.user_id in paused) for m in memberships]


def gold_paused(*, project: Project, users: list) -> set[int]:
    """The ids of those of `users` whom their gold tasks have paused (`gold_pause_reason`)."""
    if not project.gold_pause_after or not users:
        return set()
    references = gold_references(project=project)
    return {user.pk for user in users if gold_pause_reason(project=project, user=user, references=references)}


def current_version_summary(*, project: Project) -> dict | None:
    """The project's current consensus version and its images per state, for the project page."""
    version = ConsensusVersion.objects.filter(project=project, is_current=True).first()
    if version is None:
        return None
    return {"version": version, "states": image_state_counts(version=version)}


def images_waiting_for_consensus() -> dict[str, int]:
    """Across every project (the operator's metrics, no user): images with their k panel
    submissions and no result in their project's current consensus version, by why:
    `no_current_version` (nobody has computed one yet) or `not_in_current_version` (the
    version is still computing, or the image's update has not run). An image a reviewer
    adjudicated is settled, not waiting."""
    current = ConsensusVersion.objects.filter(project=OuterRef("project"), is_current=True)
    computed = ImageConsensus.objects.filter(
        image=OuterRef("pk"), version__project=OuterRef("project"), version__is_current=True
    )
    complete = Image.objects.filter(submitted_count__gte=F("project__overlap_k")).exclude(
        Exists(Adjudication.objects.filter(image=OuterRef("pk"), is_active=True))
    )
    return {
        "no_current_version": complete.exclude(Exists(current)).count(),
        "not_in_current_version": complete.filter(Exists(current)).exclude(Exists(computed)).count(),
    }
