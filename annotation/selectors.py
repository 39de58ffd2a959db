"""Reads of the panel's work: an annotator's own figures, and the leases live (metrics)."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Avg, Count
from django.utils import timezone

from annotation.models import Assignment, AssignmentState
from groundtruth.models import Annotation, AnnotationKind
from projects.models import Project


@dataclass(frozen=True)
class AnnotatorStats:
    done_today: int
    done_total: int
    seconds_per_image: float | None


def annotator_stats(*, project: Project, user: AbstractBaseUser) -> AnnotatorStats:
    """The caller's own figures in `project`: submissions today and overall, mean active time."""
    mine = Annotation.objects.filter(
        image__project=project, annotator=user, kind=AnnotationKind.SUBMISSION, is_current=True
    )
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    figures = mine.aggregate(total=Count("pk"), seconds=Avg("active_seconds"))
    return AnnotatorStats(
        done_today=mine.filter(submitted_at__gte=start_of_day).count(),
        done_total=figures["total"],
        seconds_per_image=figures["seconds"],
    )


def assignment_leases_live() -> int:
    """Across every project (the operator's metrics, no user): leases not yet submitted,
    skipped or past their expiry."""
    return Assignment.objects.filter(state=AssignmentState.LEASED, lease_expires_at__gt=timezone.now()).count()
