"""Review queue and adjudication: a reviewer settles an image, and it stays settled."""

import numpy as np
import pytest
from django.urls import reverse

from groundtruth.computing import consensus_version_compute
from groundtruth.models import Adjudication, ImageConsensus, ImageState
from groundtruth.services import consensus_version_create

pytestmark = pytest.mark.django_db

PERSON = (100.0, 100.0, 140.0, 200.0)


def test_the_queue_lists_what_needs_review_least_agreed_first(api_client, people, project_with_disagreement):
    images, _ = project_with_disagreement
    api_client.force_authenticate(people.reviewer)
    queue = api_client.get(reverse("api-review-queue", args=[people.project.pk])).json()
    assert [row["image"] for row in queue["results"]] == [images[3].pk]
    assert queue["results"][0]["uncertain"] == 1


def test_a_reviewer_settles_an_image_and_a_new_version_keeps_it(api_client, people, project_with_disagreement):
    images, version = project_with_disagreement
    image = images[3]
    api_client.force_authenticate(people.reviewer)
    url = reverse("api-adjudication", args=[image.pk])
    view = api_client.get(url).json()
    assert [a["name"] for a in view["annotators"]] == ["A", "B", "C"]  # anonymous
    assert "anna" not in str(view)
    assert {(b["is_uncertain"], b["support"]) for b in view["consensus"]["boxes"]} == {(False, 2), (True, 1)}
    settled = [
        {"x1": 100, "y1": 100, "x2": 140, "y2": 200, "label": "pedestrian"},
        {"x1": 400, "y1": 100, "x2": 440, "y2": 200, "label": "pedestrian"},  # the one the others missed
    ]
    response = api_client.post(url, {"boxes": settled}, format="json")
    assert response.status_code == 201, response.content
    row = ImageConsensus.objects.get(version=version, image=image)
    assert row.state == ImageState.ADJUDICATED
    assert sorted((b.x1, b.source) for b in row.boxes.all()) == [(100, "reviewer"), (400, "reviewer")]
    # a second version with other parameters keeps the adjudication
    second = consensus_version_create(project=people.project, user=people.reviewer, iou_threshold=0.7)
    consensus_version_compute(version_id=second.pk)
    kept = ImageConsensus.objects.get(version=second, image=image)
    assert kept.state == ImageState.ADJUDICATED and kept.boxes.count() == 2
    assert ImageConsensus.objects.filter(version=second, state=ImageState.AUTO_ACCEPTED).count() == 3
    # until the reviewer asks for it to be redone
    redo = api_client.delete(url)
    assert redo.status_code == 200
    back = ImageConsensus.objects.get(version=second, image=image)
    assert back.state == ImageState.NEEDS_REVIEW
    assert not Adjudication.objects.filter(is_active=True).exists()
    assert api_client.delete(url).status_code == 409  # nothing left to redo


def test_invalid_boxes_are_refused_and_leave_nothing(api_client, people, project_with_disagreement):
    images, version = project_with_disagreement
    api_client.force_authenticate(people.reviewer)
    url = reverse("api-adjudication", args=[images[3].pk])
    bad = [{"x1": 100, "y1": 100, "x2": 90, "y2": 200, "label": "pedestrian"}]
    response = api_client.post(url, {"boxes": bad}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["boxes"][0]["index"] == 0
    assert api_client.post(url, {"boxes": "nope"}, format="json").status_code == 400
    assert not Adjudication.objects.exists()
    assert ImageConsensus.objects.get(version=version, image=images[3]).state == ImageState.NEEDS_REVIEW


def test_roles_and_scoping(api_client, people, project_with_disagreement):
    images, _ = project_with_disagreement
    url = reverse("api-adjudication", args=[images[3].pk])
    body = {"boxes": [{"x1": 1, "y1": 1, "x2": 40, "y2": 90, "label": "pedestrian"}]}
    api_client.force_authenticate(people.annotator)
    assert api_client.get(url).status_code == 403
    assert api_client.post(url, body, format="json").status_code == 403
    assert api_client.get(reverse("api-review-queue", args=[people.project.pk])).status_code == 403
    api_client.force_authenticate(people.outsider)
    assert api_client.get(url).status_code == 404
    assert api_client.post(url, body, format="json").status_code == 404
    assert not Adjudication.objects.exists()


def test_the_kth_submission_does_not_undo_an_adjudication(people, project_with_disagreement):
    from groundtruth.computing import image_consensus_update
    from groundtruth.services import adjudication_save

    images, _ = project_with_disagreement
    adjudication_save(
        image=images[3],
        reviewer=people.reviewer,
        boxes=[{**dict(zip(("x1", "y1", "x2", "y2"), PERSON, strict=True)), "label": "pedestrian"}],
    )
    row = image_consensus_update(image_id=images[3].pk)
    assert row.state == ImageState.ADJUDICATED
    assert np.allclose([[b.x1, b.y1, b.x2, b.y2] for b in row.boxes.all()], [PERSON])
