"""Panels are blind: members who can see everyone's boxes (reviewers, admins, staff) are not
handed tasks unless the project allows it, and then their submissions are marked not blind,
fill none of an image's k places and stay out of the consensus and the human baseline
unless a version asks for them. A task never names its stored image."""

import io
import json

import pytest
from django.urls import reverse

from annotation.assignments import assignment_lease_next, assignment_submit
from annotation.models import Assignment
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.computing import consensus_version_compute
from groundtruth.models import AgreementReport, Annotation, GroundTruthBox
from groundtruth.services import consensus_version_create
from projects.models import Membership, Role
from tests import images
from tests.factories import UserFactory
from tests.storage import served

pytestmark = pytest.mark.django_db

BOX = {"x1": 10.0, "y1": 20.0, "x2": 40.0, "y2": 90.0, "label": "pedestrian"}
ELSEWHERE = {"x1": 120.0, "y1": 10.0, "x2": 160.0, "y2": 80.0, "label": "pedestrian"}


@pytest.fixture
def panel(people):
    """Project A (k = 2) with twelve images and a second annotator besides anna."""
    project = people.project
    project.overlap_k = 2
    project.save()
    uploads = [
        IncomingImage(name=f"street-{i}.jpg", file=io.BytesIO(data), size=len(data))
        for i, data in enumerate(images.image_bytes(size=(200, 100), seed=300 + i) for i in range(12))
    ]
    image_ingest(project=project, uploads=uploads, user=None)
    bea = UserFactory(username="bea")
    Membership.objects.create(project=project, user=bea, role=Role.ANNOTATOR)
    return project, people.annotator, bea


@pytest.mark.parametrize("who", ["reviewer", "project_admin", "staff"])
def test_members_with_review_rights_are_refused_tasks_with_the_reason(api_client, people, panel, who):
    project, *_ = panel
    api_client.force_authenticate(getattr(people, who))
    response = api_client.post(reverse("api-next-task", args=[project.pk]))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_blind" and "would not be blind" in error["message"]
    assert not Assignment.objects.exists()


def test_allowed_reviewers_annotate_but_fill_no_place_and_stay_out_of_the_consensus(api_client, client, people, panel):
    project, anna, bea = panel
    project.reviewers_annotate = True
    project.save()
    # given the reviewer annotates every image, boxing something nobody else sees
    api_client.force_authenticate(people.reviewer)
    for _ in range(12):
        task = api_client.post(reverse("api-next-task", args=[project.pk])).json()
        submitted = api_client.post(
            reverse("api-assignment-submit", args=[task["id"]]), {"boxes": [BOX, ELSEWHERE]}, format="json"
        )
        assert submitted.status_code == 201
    # then those submissions are marked, and no image counts them toward its k
    assert set(Annotation.objects.filter(annotator=people.reviewer).values_list("is_blind", flat=True)) == {False}
    assert set(Image.objects.filter(project=project).values_list("submitted_count", flat=True)) == {0}
    # and both blind annotators still get every image (the reviewer took none of the two places)
    for person in (anna, bea):
        while (task := assignment_lease_next(project=project, user=person)) is not None:
            assignment_submit(assignment=task, boxes=[BOX])
    assert Annotation.objects.filter(annotator__in=[anna, bea]).count() == 24
    # when a consensus version is computed with the defaults
    version = consensus_version_compute(version_id=consensus_version_create(project=project, user=people.reviewer).pk)
    # then the ground truth and the baseline are the blind panel's only, and the report says so
    assert not GroundTruthBox.objects.filter(image_consensus__version=version, x1=ELSEWHERE["x1"]).exists()
    assert all(set(box.annotators) <= {anna.pk, bea.pk} for box in GroundTruthBox.objects.all())
    data = AgreementReport.objects.get(version=version).data
    assert {row["id"] for row in data["baseline"]["annotators"]} == {anna.pk, bea.pk}
    assert data["not_blind"] == {"included": False, "submissions": 12, "annotators": 1}
    client.force_login(people.reviewer)
    page = client.get(reverse("consensus-report", args=[version.pk])).content.decode()
    assert "12 submissions by 1 member with review rights" in page and "were left out" in page
    # when a version asks for them, they count, and the report says that instead
    included = consensus_version_create(project=project, user=people.reviewer, include_not_blind=True)
    included = consensus_version_compute(version_id=included.pk)
    data = AgreementReport.objects.get(version=included).data
    assert {row["id"] for row in data["baseline"]["annotators"]} == {anna.pk, bea.pk, people.reviewer.pk}
    assert data["not_blind"]["included"] is True


def test_someone_given_review_rights_after_leasing_submits_not_blind(api_client, people, panel):
    project, anna, _ = panel
    task = assignment_lease_next(project=project, user=anna)
    Membership.objects.filter(project=project, user=anna).update(role=Role.REVIEWER)
    annotation = assignment_submit(assignment=task, boxes=[BOX])
    assert annotation.is_blind is False
    assert Image.objects.get(pk=task.image_id).submitted_count == 0


def test_a_task_never_names_its_stored_image(api_client, people, panel):
    project, anna, _ = panel
    api_client.force_authenticate(anna)
    task = api_client.post(reverse("api-next-task", args=[project.pk])).json()
    image = Assignment.objects.get(pk=task["id"]).image
    response = api_client.get(task["image_url"])  # on S3, a redirect to a presigned URL
    status, headers, _ = served(response)
    assert status == 200
    said = json.dumps(task) + json.dumps(dict(response.headers)) + json.dumps(dict(headers))
    assert image.sha256 not in said and image.sha256[:16] not in said
    assert image.original_name not in said and "street-" not in said
    assert headers["Content-Disposition"] == f'inline; filename="task-{task["id"]}.jpg"'


def test_imports_credit_only_the_projects_annotators(api_client, people, panel):
    project, *_ = panel
    export = json.dumps({
        "images": [{"id": 1, "file_name": "street-0.jpg", "width": 200, "height": 100}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 70]}],
        "categories": [{"id": 1, "name": "pedestrian"}],
    }).encode()  # fmt: skip
    api_client.force_authenticate(people.project_admin)
    url = reverse("api-project-import", args=[project.pk])
    for who in ("rita", "adam", "sam", "otto"):  # a reviewer, an admin, staff, another project's annotator
        upload = io.BytesIO(export)
        upload.name = "coco.json"
        response = api_client.post(url, {"file": upload, "format": "coco", "annotator": who}, format="multipart")
        assert response.status_code == 400, (who, response.content)
        assert "not an annotator of this project" in response.json()["error"]["message"]
    assert not Annotation.objects.exists()
    upload = io.BytesIO(export)
    upload.name = "coco.json"
    response = api_client.post(url, {"file": upload, "format": "coco", "annotator": "anna"}, format="multipart")
    assert response.status_code == 201, response.content
    assert Annotation.objects.get().is_blind is True
