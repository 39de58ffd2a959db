"""The one write path for a person's boxes on an image.

Submissions from the canvas (`annotation.assignments`), imports from other tools
(`transfer.imports`) and gold references (`groundtruth.services.gold_set`) all record them
with `annotation_record`, so that each leaves the same rows for the same boxes: the
person's earlier annotation of that kind kept as a superseded revision, every box field
written, the image's count of panel submissions, and the consensus update once the image
has its k; and each is counted for Prometheus once committed (ops/metrics.py).
"""

from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from boxes.validation import boxes_check
from config.celery import send_quietly
from config.errors import ValidationFailed
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind, AnnotationSource, Box, ConsensusVersion
from groundtruth.tasks import image_consensus_update_task
from ops.metrics import annotation_recorded

# What a box carries, besides its annotation; a box given without one of the flags takes
# the field's default (False).
BOX_FIELDS = ("x1", "y1", "x2", "y2", "label", "is_occluded", "is_truncated", "is_ignored", "is_from_suggestion")


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


def annotation_record(
    *,
    image: Image,
    annotator: AbstractBaseUser,
    boxes: list,
    kind: str = AnnotationKind.SUBMISSION,
    source: str = AnnotationSource.PANEL,
    is_blind: bool = True,
    active_seconds: float | None = None,
) -> Annotation:
    """Record `boxes` (checked already: objects with the `BOX_FIELDS` as attributes) as
    `annotator`'s current annotation of `kind` on `image`, and return it.

    - Their current annotation of that kind, if any, is kept, marked not current, and
      superseded by this one (its next revision).
    - A gold reference makes the image a gold task.
    - A blind submission that is the person's first blind one on the image counts toward
      its k; any blind submission on an image that has its k is taken into the project's
      current consensus version after commit.
    """
    with transaction.atomic():
        previous = (
            Annotation.objects.select_for_update()
            .filter(image=image, annotator=annotator, kind=kind, is_current=True)
            .first()
        )
        if previous is not None:
            previous.is_current = False
            previous.save(update_fields=["is_current"])
        annotation = Annotation.objects.create(
            image=image,
            annotator=annotator,
            kind=kind,
            source=source,
            revision=previous.revision + 1 if previous else 1,
            supersedes=previous,
            is_blind=is_blind,
            active_seconds=active_seconds,
        )
        Box.objects.bulk_create(
            Box(annotation=annotation, **{field: getattr(box, field) for field in BOX_FIELDS if hasattr(box, field)})
            for box in boxes
        )
        # counted once written for good; labels from the model's choices only
        labels = {
            "kind": kind if kind in AnnotationKind.values else "other",
            "source": source if source in AnnotationSource.values else "other",
        }
        transaction.on_commit(partial(annotation_recorded, **labels))
        if kind == AnnotationKind.GOLD:
            Image.objects.filter(pk=image.pk, is_gold=False).update(is_gold=True)
        elif is_blind:
            if previous is None or not previous.is_blind:
                Image.objects.filter(pk=image.pk).update(submitted_count=F("submitted_count") + 1)
            project = image.project
            if Image.objects.filter(pk=image.pk, submitted_count__gte=project.overlap_k).exists():
                transaction.on_commit(partial(image_consensus_enqueue, image_id=image.pk, project_id=project.pk))
    return annotation


def image_consensus_enqueue(*, image_id: int, project_id: int) -> None:
    """Ask the worker to update an image in its project's current version, if there is one."""
    if ConsensusVersion.objects.filter(project_id=project_id, is_current=True).exists():
        send_quietly(image_consensus_update_task, image_id)
