"""Reads of the groundtruth app."""

from collections import defaultdict
from string import ascii_uppercase

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, QuerySet
from django.shortcuts import get_object_or_404

from annotation.models import Annotation, AnnotationKind, Box, Image, Project
from annotation.selectors import project_list
from groundtruth.models import Adjudication, ConsensusVersion, ImageConsensus, ImageState

Panel = dict[int, tuple[np.ndarray, np.ndarray]]  # annotator id -> (n x 4 boxes, n ignore flags)


def panels(*, project: Project, image_ids: list[int] | None = None) -> dict[int, Panel]:
    """The current submissions of every image that has all of its k annotators (or of
    `image_ids`, whatever their count), as boxes per annotator; an annotator who drew
    nothing has an empty array."""
    annotations = Annotation.objects.filter(image__project=project, kind=AnnotationKind.SUBMISSION, is_current=True)
    if image_ids is None:
        complete = (
            annotations.values("image_id").annotate(count=Count("id")).filter(count__gte=project.overlap_k)
        ).values_list("image_id", flat=True)
        annotations = annotations.filter(image_id__in=list(complete))
    else:
        annotations = annotations.filter(image_id__in=image_ids)
    seen = list(annotations.values_list("id", "image_id", "annotator_id"))
    rows = defaultdict(list)
    for annotation_id, x1, y1, x2, y2, ignored in (
        Box.objects.filter(annotation_id__in=[a for a, _, _ in seen])
        .values_list("annotation_id", "x1", "y1", "x2", "y2", "is_ignored")
        .order_by("annotation_id", "id")
    ):
        rows[annotation_id].append((x1, y1, x2, y2, ignored))
    result: dict[int, Panel] = defaultdict(dict)
    for annotation_id, image_id, annotator_id in seen:
        array = np.array(rows.get(annotation_id, []), dtype=float).reshape(-1, 5)
        result[image_id][annotator_id] = (array[:, :4], array[:, 4].astype(bool))
    return dict(result)


def consensus_versions(*, project: Project) -> QuerySet[ConsensusVersion]:
    return ConsensusVersion.objects.filter(project=project).order_by("-number")


def consensus_version_get(*, version_id: int, user: AbstractBaseUser) -> ConsensusVersion:
    """The version if `user` may see its project (404 otherwise, whether or not it exists)."""
    return get_object_or_404(
        ConsensusVersion.objects.select_related("project").filter(project__in=project_list(user=user)), pk=version_id
    )


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
