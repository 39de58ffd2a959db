"""Exports take `version=N`: that version's ground truth, adjudications included."""

import json

import pytest
from django.urls import reverse

from groundtruth.models import GroundTruthBox
from groundtruth.services import adjudication_save, consensus_version_create

pytestmark = pytest.mark.django_db


def coco(api_client, project, **params) -> dict:
    response = api_client.get(reverse("api-project-export", args=[project.pk]), {"format": "coco", **params})
    assert response.status_code == 200, response.content
    return json.loads(b"".join(response.streaming_content))


def test_a_version_exports_its_ground_truth_with_support(api_client, people, project_with_disagreement):
    _, version = project_with_disagreement
    api_client.force_authenticate(people.reviewer)
    data = coco(api_client, people.project, version=1)
    assert len(data["images"]) == 4
    assert data["info"]["description"].endswith("ground truth of consensus version 1")
    # one agreed pedestrian per image; the 1-of-3 box on the last image is below quorum, left out
    assert len(data["annotations"]) == 4
    assert {a["attributes"]["support"] for a in data["annotations"]} == {3, 2}
    expected = sorted(
        GroundTruthBox.objects.filter(image_consensus__version=version, is_uncertain=False).values_list("x1", "y1")
    )
    assert sorted((a["bbox"][0], a["bbox"][1]) for a in data["annotations"]) == expected


def test_adjudicated_boxes_are_exported(api_client, people, project_with_disagreement):
    images, _ = project_with_disagreement
    settled = [{"x1": 400, "y1": 100, "x2": 440, "y2": 200, "label": "pedestrian", "is_ignored": True}]
    adjudication_save(image=images[3], reviewer=people.reviewer, boxes=settled)
    api_client.force_authenticate(people.reviewer)
    data = coco(api_client, people.project, version=1)
    last = max(image["id"] for image in data["images"])
    (box,) = [a for a in data["annotations"] if a["image_id"] == last]
    assert box["bbox"] == [400.0, 100.0, 40.0, 100.0] and box["iscrowd"] == 1


def test_unknown_or_unfinished_versions_are_refused(api_client, people, project_with_disagreement):
    api_client.force_authenticate(people.reviewer)
    url = reverse("api-project-export", args=[people.project.pk])
    assert api_client.get(url, {"format": "coco", "version": 7}).status_code == 400
    assert api_client.get(url, {"format": "coco", "version": "x"}).status_code == 400
    consensus_version_create(project=people.project, user=people.reviewer)
    response = api_client.get(url, {"format": "coco", "version": 2})
    assert response.status_code == 400 and "pending" in str(response.json())


def test_a_versions_ground_truth_goes_to_label_studio_as_ground_truth_annotations(
    api_client, people, project_with_disagreement
):
    from boxes.labelstudio import labelstudio_read

    _, version = project_with_disagreement
    api_client.force_authenticate(people.reviewer)
    response = api_client.get(
        reverse("api-project-export", args=[people.project.pk]), {"format": "labelstudio", "version": 1}
    )
    assert response.status_code == 200 and response["Content-Disposition"].endswith('-v1-labelstudio.json"')
    tasks = json.loads(b"".join(response.streaming_content))
    assert len(tasks) == 4
    assert all(len(task["annotations"]) == 1 and task["annotations"][0]["ground_truth"] for task in tasks)
    # Label Studio's percentages give back the ground truth's pixels (ignore regions left out)
    read = labelstudio_read(json.dumps(tasks))
    expected = GroundTruthBox.objects.filter(image_consensus__version=version, is_uncertain=False, is_ignore=False)
    assert sorted((box.x1, box.y1, box.x2, box.y2) for image in read.images for box in image.boxes) == sorted(
        expected.values_list("x1", "y1", "x2", "y2")
    )
