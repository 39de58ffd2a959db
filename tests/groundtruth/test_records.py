"""One write path (groundtruth/records.py): a submission from the canvas, an import from
another tool and a gold reference leave the same rows for the same boxes, and each keeps
its earlier revision the same way."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.assignments import assignment_lease_next, assignment_submit
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind, AnnotationSource
from groundtruth.services import gold_set
from projects.models import Role
from tests.factories import ImageFactory, MembershipFactory

pytestmark = pytest.mark.django_db

# Every flag a box can carry, on three boxes; coordinates exact in binary floating point.
BOXES = [
    {"x1": 10.5, "y1": 20.25, "x2": 60.0, "y2": 150.0, "label": "pedestrian"},
    {"x1": 100.0, "y1": 30.0, "x2": 140.0, "y2": 130.5, "label": "pedestrian", "is_occluded": True},
    {"x1": 200.0, "y1": 10.0, "x2": 260.0, "y2": 90.0, "label": "pedestrian", "is_truncated": True,
     "is_ignored": True},
]  # fmt: skip
ROW = ("revision", "supersedes_id", "is_current", "is_blind")
BOX = ("x1", "y1", "x2", "y2", "label", "is_occluded", "is_truncated", "is_ignored", "is_from_suggestion")


def _coco_box(index: int, box: dict) -> dict:
    x1, y1, x2, y2 = box["x1"], box["y1"], box["x2"], box["y2"]
    flags = {"occluded": box.get("is_occluded", False), "truncated": box.get("is_truncated", False)}
    return {
        "id": index + 1,
        "image_id": 1,
        "category_id": 1,
        "bbox": [x1, y1, x2 - x1, y2 - y1],
        "iscrowd": int(box.get("is_ignored", False)),
        "attributes": flags,
    }


def _coco(image, boxes) -> bytes:
    document = {
        "images": [{"id": 1, "file_name": image.original_name, "width": image.width, "height": image.height}],
        "categories": [{"id": 1, "name": "pedestrian"}],
        "annotations": [_coco_box(index, box) for index, box in enumerate(boxes)],
    }
    return json.dumps(document).encode()


def _rows(annotation: Annotation) -> tuple:
    row = tuple(getattr(annotation, field) for field in ROW)
    return row, sorted(annotation.boxes.values_list(*BOX))


def _import(client, project, image, boxes, username):
    url = reverse("api-project-import", kwargs={"project_id": project.pk})
    upload = SimpleUploadedFile("labels.json", _coco(image, boxes))
    response = client.post(
        url, {"file": upload, "format": "coco", "target": "annotator", "annotator": username}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return Annotation.objects.get(image=image, annotator__username=username, is_current=True)


def test_submit_import_and_gold_leave_the_same_rows(people, api_client):
    project = people.project
    project.overlap_k = 3
    project.save()
    images = [ImageFactory(project=project, width=640, height=480, original_name=f"street_{i}.jpg") for i in range(3)]
    bert = MembershipFactory(project=project, user__username="bert", role=Role.ANNOTATOR).user

    # the canvas: anna leases an image and submits
    assignment = assignment_lease_next(project=project, user=people.annotator)
    submitted = assignment_submit(assignment=assignment, boxes=BOXES)
    image = assignment.image
    # another tool's export, for bert on the same image; a gold reference on it by rita
    api_client.force_login(people.project_admin)
    imported = _import(api_client, project, image, BOXES, "bert")
    gold = gold_set(image=image, reviewer=people.reviewer, boxes=BOXES)

    assert _rows(submitted) == _rows(imported) == _rows(gold)
    assert _rows(submitted)[0] == (1, None, True, True)
    assert len(_rows(gold)[1]) == 3 and any(box[5] for box in _rows(gold)[1])  # flags kept on gold too
    assert [a.kind for a in (submitted, imported, gold)] == [AnnotationKind.SUBMISSION] * 2 + [AnnotationKind.GOLD]
    assert [a.source for a in (submitted, imported, gold)] == [
        AnnotationSource.PANEL, AnnotationSource.IMPORT, AnnotationSource.PANEL
    ]  # fmt: skip
    # both submissions count toward the image's k; the gold reference makes it a gold task
    image.refresh_from_db()
    assert (image.submitted_count, image.is_gold) == (2, True)
    assert {i.submitted_count for i in Image.objects.filter(pk__in=[i.pk for i in images]).exclude(pk=image.pk)} == {0}

    # a second import and a second gold reference each supersede the first the same way
    moved = [{**box, "x1": box["x1"] + 1} for box in BOXES]
    again = _import(api_client, project, image, moved, "bert")
    gold_again = gold_set(image=image, reviewer=people.reviewer, boxes=moved)
    assert _rows(again) == ((2, imported.pk, True, True), sorted(gold_again.boxes.values_list(*BOX))) and _rows(
        gold_again
    )[0] == (2, gold.pk, True, True)
    assert not Annotation.objects.get(pk=imported.pk).is_current and not Annotation.objects.get(pk=gold.pk).is_current
    image.refresh_from_db()
    assert image.submitted_count == 2  # a revision is not another annotator
    assert bert.annotations.filter(image=image).count() == 2
