"""Pre-annotation: the champion's boxes stored as suggestions for the images that still need
annotators, offered in the task only where the project allows it, and every box taken from
one marked as such."""

import io

import pytest

from annotation.assignments import assignment_lease_next, assignment_submit
from annotation.models import Suggestion
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.models import Box
from serving.services import preannotation_run
from tests import images

pytestmark = pytest.mark.django_db


def test_the_champion_suggests_boxes_for_images_that_need_annotators(api_client, served):
    trainable, champion, _ = served
    # two images still need annotators; the rest have all k
    two = list(Image.objects.filter(project=trainable.project).order_by("pk").values_list("pk", flat=True)[:2])
    Image.objects.filter(pk__in=two).update(submitted_count=1)
    expected = 2
    api_client.force_authenticate(trainable.reviewer)
    url = f"/api/v1/projects/{trainable.project.pk}/preannotate/"
    assert api_client.post(url).status_code == 403  # admins start it
    api_client.force_authenticate(trainable.admin)
    response = api_client.post(url)
    assert response.status_code == 202 and response.json() == {"images": expected, "shown": False}

    assert preannotation_run(project_id=trainable.project.pk) == expected  # the task's service
    suggestions = Suggestion.objects.filter(image__project=trainable.project)
    assert sorted(suggestions.values_list("image_id", flat=True)) == two
    assert {s.source for s in suggestions} == {f"model {champion.number}"}
    assert all(box["score"] >= 0.5 and box["label"] == "pedestrian" for s in suggestions for box in s.boxes)


def test_no_champion_no_preannotation(api_client, served):
    trainable, champion, _ = served
    champion.stage = "archived"
    champion.save(update_fields=["stage"])
    api_client.force_authenticate(trainable.admin)
    response = api_client.post(f"/api/v1/projects/{trainable.project.pk}/preannotate/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_champion"


def test_suggestions_reach_the_canvas_only_where_allowed_and_taken_boxes_are_marked(api_client, served):
    trainable, _, _ = served
    project = trainable.project
    data = images.image_bytes("PNG", size=(120, 100), seed=77)
    (stored,) = image_ingest(
        project=project, uploads=[IncomingImage("new.png", io.BytesIO(data), len(data))], user=None
    )
    Suggestion.objects.create(image_id=stored.image_id, source="model 1", boxes=[
        {"x1": 10, "y1": 10, "x2": 40, "y2": 90, "label": "pedestrian", "score": 0.8}
    ])  # fmt: skip
    api_client.force_authenticate(trainable.annotator)
    task = api_client.post(f"/api/v1/projects/{project.pk}/next-task/").json()
    assert task["suggestions"] == []  # blind by default
    project.allow_suggestions = True
    project.save(update_fields=["allow_suggestions"])
    task = api_client.get(f"/api/v1/assignments/{task['id']}/").json()
    assert task["suggestions"][0]["x1"] == 10

    lease = assignment_lease_next(project=project, user=trainable.annotator)
    box = {"x1": 10, "y1": 10, "x2": 40, "y2": 90, "label": "pedestrian", "is_from_suggestion": True}
    annotation = assignment_submit(
        assignment=lease, boxes=[box, {**box, "x1": 50, "x2": 80, "is_from_suggestion": False}]
    )
    assert list(
        Box.objects.filter(annotation=annotation).order_by("pk").values_list("is_from_suggestion", flat=True)
    ) == [True, False]
