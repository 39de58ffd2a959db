"""The agreement report through the API (JSON, downloads) and its pages."""

import csv
import io

import numpy as np
import pytest
from django.urls import reverse

from datasets.models import Image
from groundtruth.computing import consensus_version_compute
from groundtruth.models import Annotation, Box, ConsensusVersion
from groundtruth.services import consensus_version_create
from tests.factories import ImageFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def computed(people):
    """Three annotators on 12 images of people.project, a version computed over them."""
    annotators = [people.annotator] + [
        MembershipFactory(project=people.project, user__username=f"ann{i}").user for i in range(2)
    ]
    rng = np.random.default_rng(0)
    for index in range(12):
        image = ImageFactory(project=people.project, conditions={"weather": ["sun", "rain"][index % 2]})
        truth = rng.uniform(20, 800, (3, 2))
        for annotator in annotators:
            annotation = Annotation.objects.create(image=image, annotator=annotator)
            for x, y in truth + rng.normal(0, 2, (3, 2)):
                Box.objects.create(annotation=annotation, x1=x, y1=y, x2=x + 40, y2=y + 100)
    Image.objects.filter(project=people.project).update(submitted_count=3)
    version = consensus_version_create(project=people.project, user=people.reviewer)
    consensus_version_compute(version_id=version.pk)
    return version


def test_report_json_and_downloads(api_client, people, computed):
    api_client.force_authenticate(people.reviewer)
    url = reverse("api-consensus-report", args=[computed.pk])
    data = api_client.get(url).json()
    assert data["dataset"]["images"] == 12 and data["dataset"]["alpha"] > 0.8
    assert data["by_condition"]["weather"]["rain"]["images"] == 6
    download = api_client.get(url, {"download": "csv"})
    assert download["Content-Disposition"] == f'attachment; filename="agreement-{people.project.pk}-v1.csv"'
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert {row["annotator"] for row in rows} == {"anna", "ann0", "ann1"}
    assert all(float(row["f1"]) > 0.9 for row in rows)
    assert api_client.get(url, {"download": "json"}).json()["version"] == 1
    assert api_client.get(url, {"download": "xml"}).status_code == 400


def test_a_report_that_is_not_ready_is_a_409(api_client, people):
    version = consensus_version_create(project=people.project, user=people.reviewer)
    api_client.force_authenticate(people.reviewer)
    response = api_client.get(reverse("api-consensus-report", args=[version.pk]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_ready"


def test_report_permissions(api_client, client, people, computed):
    url = reverse("api-consensus-report", args=[computed.pk])
    api_client.force_authenticate(people.annotator)
    assert api_client.get(url).status_code == 403
    api_client.force_authenticate(people.outsider)
    assert api_client.get(url).status_code == 404
    client.force_login(people.annotator)
    assert client.get(reverse("consensus-report", args=[computed.pk])).status_code == 403
    assert client.get(reverse("project-consensus", args=[people.project.pk])).status_code == 403
    assert client.get(reverse("project-review", args=[people.project.pk])).status_code == 403
    client.force_login(people.outsider)
    assert client.get(reverse("consensus-report", args=[computed.pk])).status_code == 404
    assert client.get(reverse("project-review", args=[people.project.pk])).status_code == 404


def test_pages_show_versions_and_the_report(client, people, computed):
    client.force_login(people.reviewer)
    page = client.get(reverse("project-consensus", args=[people.project.pk])).content.decode()
    assert "v1" in page and "current" in page and reverse("consensus-report", args=[computed.pk]) in page
    report = client.get(reverse("consensus-report", args=[computed.pk])).content.decode()
    assert "Krippendorff" in report and "<svg" in report and "anna" in report and "panel mean" in report
    assert "<script" not in report.split("</header>")[-1]  # charts are drawn on the server


def test_the_form_starts_a_version_and_refuses_bad_input(client, people):
    client.force_login(people.reviewer)
    url = reverse("project-consensus", args=[people.project.pk])
    response = client.post(url, {"iou_threshold": "0.6", "fuse": "mean", "accept_f1": "0.7", "quorum": ""})
    assert response.status_code == 302
    version = ConsensusVersion.objects.get()
    assert (version.iou_threshold, version.fuse, version.quorum, version.accept_f1) == (0.6, "mean", None, 0.7)
    refused = client.post(url, {"iou_threshold": "2", "fuse": "mean", "accept_f1": "0.7"})
    page = refused.content.decode()
    assert refused.status_code == 400 and ConsensusVersion.objects.count() == 1
    assert "Invalid consensus parameters. iou threshold: Must lie between 0.05 and 0.95." in page
    weighted = {"iou_threshold": "0.5", "fuse": "mean", "accept_f1": "0.7", "quorum": "0.5"}
    weighted["reliability_weighted"] = "on"
    page = client.post(url, weighted).content.decode()
    assert "quorum: Leave it empty with reliability weighting" in page and ConsensusVersion.objects.count() == 1
    refused = client.post(url, {"iou_threshold": "abc", "fuse": "mean", "accept_f1": "0.7"})
    assert refused.status_code == 400 and "must be a number" in refused.content.decode()
    assert ConsensusVersion.objects.count() == 1


def test_the_project_page_shows_images_per_state_to_reviewers(client, people, computed):
    client.force_login(people.reviewer)
    page = client.get(reverse("project-detail", args=[people.project.pk])).content.decode()
    counts = computed.images.values_list("state", flat=True)
    accepted = sum(state == "auto_accepted" for state in counts)
    assert f"Version 1: {accepted} images auto-accepted" in page
    assert reverse("consensus-report", args=[computed.pk]) in page
    client.force_login(people.annotator)
    assert "auto-accepted" not in client.get(reverse("project-detail", args=[people.project.pk])).content.decode()
