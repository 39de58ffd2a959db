"""30 annotators hammer next-task and submit at once on PostgreSQL: overlap k holds."""

import threading
from collections import Counter

import factory
import pytest
from django.db import connection, connections

from annotation.assignments import assignment_lease_next, assignment_submit
from annotation.models import Assignment
from groundtruth.models import Annotation
from projects.models import Membership, Project, Role
from tests.factories import ImageFactory, UserFactory

IMAGES, ANNOTATORS, K = 20, 30, 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_thirty_annotators_at_once_never_break_overlap_k():
    # given a project with k = 3 and 20 images, and 30 annotators
    project = Project.objects.create(name="Concurrency", overlap_k=K)
    ImageFactory.create_batch(IMAGES, project=project, shuffle_key=factory.Sequence(int))
    users = [UserFactory(username=f"annotator{i:02d}") for i in range(ANNOTATORS)]
    Membership.objects.bulk_create(Membership(project=project, user=user, role=Role.ANNOTATOR) for user in users)
    start = threading.Barrier(ANNOTATORS)
    errors: list[BaseException] = []
    taken: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(user) -> None:
        try:
            start.wait()
            while True:
                assignment = assignment_lease_next(project=project, user=user)
                if assignment is None:
                    return
                with lock:
                    taken.append((assignment.image_id, user.pk))
                assignment_submit(assignment=assignment, boxes=[])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    # when they all ask for work and submit as fast as they can
    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # then nothing failed, nobody got an image twice, and every image has exactly k submissions
    assert connection.vendor == "postgresql"
    assert errors == []
    assert len(taken) == len(set(taken)) == IMAGES * K
    per_image = Counter(image_id for image_id, _ in taken)
    assert set(per_image.values()) == {K}
    submissions = Counter(Annotation.objects.filter(image__project=project).values_list("image_id", flat=True))
    assert set(submissions.values()) == {K} and len(submissions) == IMAGES
    assert not Assignment.objects.filter(image__project=project).exclude(state="submitted").exists()
