"""Consensus through a real Celery worker on the groundtruth queue: a new version, then the
k-th submission of an image updating that image, both sent after commit by the services."""

import uuid

import pytest

from annotation.assignments import assignment_lease_next, assignment_submit
from demo.simulation import simulated_annotators
from demo.synthetic_data import synthetic_images_add
from groundtruth.models import ConsensusVersion, ImageConsensus, VersionState
from groundtruth.services import consensus_version_create
from projects.models import Project
from tests.factories import UserFactory
from tests.workers import start_worker, stop_worker, wait_for

BOX = {"x1": 100, "y1": 50, "x2": 150, "y2": 200, "label": "pedestrian"}


@pytest.fixture
def groundtruth_worker(transactional_db):
    process = start_worker("groundtruth", f"pytest-groundtruth-{uuid.uuid4().hex[:8]}")
    yield process
    stop_worker(process)


def submit_both(project, users, box):
    first = assignment_lease_next(project=project, user=users[0])
    assignment_submit(assignment=first, boxes=[box])
    second = assignment_lease_next(project=project, user=users[1])
    assert second.image_id == first.image_id
    assignment_submit(assignment=second, boxes=[{**box, "x2": box["x2"] + 2}])
    return first.image_id


@pytest.mark.worker
def test_versions_and_incremental_updates_run_on_the_worker(groundtruth_worker):
    project = Project.objects.create(name="Worker", overlap_k=2)
    synthetic_images_add(project=project, count=2, seed=8)
    users = simulated_annotators(project=project, count=2)
    first_image = submit_both(project, users, BOX)

    version = consensus_version_create(project=project, user=UserFactory(username="lead", is_staff=True))
    done = wait_for(
        lambda: ConsensusVersion.objects.filter(pk=version.pk, state=VersionState.DONE).first(),
        groundtruth_worker,
        what="finished consensus version",
    )
    assert done.is_current
    assert list(ImageConsensus.objects.filter(version=done).values_list("image_id", flat=True)) == [first_image]

    second_image = submit_both(project, users, {**BOX, "x1": 300, "x2": 360})
    row = wait_for(
        lambda: ImageConsensus.objects.filter(version=done, image_id=second_image).first(),
        groundtruth_worker,
        what="update of the second image",
    )
    (box,) = row.boxes.all()
    assert (box.x1, box.x2, box.support) == (300, 361, 2)
