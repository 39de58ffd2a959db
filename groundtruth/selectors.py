"""Reads of the groundtruth app."""

from collections import defaultdict

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from annotation.models import Annotation, AnnotationKind, Box, Project
from annotation.selectors import project_list
from groundtruth.models import ConsensusVersion, ImageState

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
