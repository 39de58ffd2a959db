"""Reads of a project's images, scoped to the requesting user."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from datasets.models import Image
from projects.models import Project
from projects.selectors import project_list


def image_list(*, project: Project, split: str | None = None, conditions: dict | None = None) -> QuerySet[Image]:
    """Images of `project`, optionally of one split and with the given conditions."""
    images = Image.objects.filter(project=project).order_by("pk")
    if split:
        images = images.filter(split=split)
    for dimension, value in (conditions or {}).items():
        images = images.filter(**{f"conditions__{dimension}": value})
    return images


def image_get(*, image_id: int, user: AbstractBaseUser) -> Image:
    """The image if `user` may see its project; Http404 otherwise, whether or not it exists."""
    return get_object_or_404(
        Image.objects.select_related("project").filter(project__in=project_list(user=user)), pk=image_id
    )


def image_split_counts(*, project: Project) -> dict[str, int]:
    """How many images each split of `project` holds (train, val, test, in that order)."""
    counts = dict.fromkeys(("train", "val", "test"), 0)
    for row in Image.objects.filter(project=project).values("split").annotate(total=Count("pk")):
        counts[row["split"]] = row["total"]
    return counts
