"""The sweeps that beat runs to catch up with work whose task was lost: image updates never
sent (the broker was down at the k-th submission), versions whose worker died."""

from datetime import timedelta

import pytest
from django.utils import timezone

from groundtruth.computing import (
    consensus_version_compute,
    consensus_versions_stalled,
    image_consensus_update,
    images_consensus_stalled,
)
from groundtruth.models import Adjudication, Annotation, Box, ConsensusVersion, VersionState
from groundtruth.services import consensus_version_create
from projects.models import Role
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db
NOW = timedelta(0)


def submit(image, annotator) -> Annotation:
    """A submission, or a revision superseding the annotator's earlier one."""
    earlier = Annotation.objects.filter(image=image, annotator=annotator).count()
    Annotation.objects.filter(image=image, annotator=annotator, is_current=True).update(is_current=False)
    annotation = Annotation.objects.create(image=image, annotator=annotator, revision=earlier + 1)
    Box.objects.create(annotation=annotation, x1=10, y1=10, x2=40, y2=90)
    return annotation


def test_an_image_whose_update_was_lost_is_found_until_it_is_computed_again():
    project = ProjectFactory(overlap_k=2)
    first, second = (MembershipFactory(project=project, role=Role.ANNOTATOR).user for _ in range(2))
    image, waiting = ImageFactory(project=project), ImageFactory(project=project)
    assert images_consensus_stalled(older_than=NOW) == []  # no current version: nothing to update
    consensus_version_compute(version_id=consensus_version_create(project=project, user=None).pk)
    submit(image, first)
    submit(waiting, first)  # one of k: nothing to do yet
    assert images_consensus_stalled(older_than=NOW) == []
    submit(image, second)
    assert images_consensus_stalled(older_than=NOW) == [image.pk]
    assert images_consensus_stalled(older_than=timedelta(minutes=2)) == []  # its own task may still come

    image_consensus_update(image_id=image.pk)
    assert images_consensus_stalled(older_than=NOW) == []

    submit(image, second)  # a revision after the result
    assert images_consensus_stalled(older_than=NOW) == [image.pk]
    Adjudication.objects.create(image=image, reviewer=first, boxes=[])  # settled: left as the reviewer made it
    assert images_consensus_stalled(older_than=NOW) == []


def test_a_version_running_past_the_queues_hard_limit_is_sent_again(settings):
    project = ProjectFactory()
    running = consensus_version_create(project=project, user=None)
    ConsensusVersion.objects.filter(pk=running.pk).update(state=VersionState.RUNNING, started_at=timezone.now())
    assert consensus_versions_stalled() == []  # at work
    _, hard_limit = settings.CELERY_QUEUE_TIME_LIMITS["groundtruth"]
    ConsensusVersion.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(seconds=hard_limit + 1))
    assert consensus_versions_stalled() == [running.pk]  # its worker is gone
