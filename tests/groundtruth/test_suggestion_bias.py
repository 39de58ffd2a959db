"""The suggestions' bias, read on gold images: boxes taken from a model's suggestion against
boxes drawn by hand, and submissions that took suggestions against those that did not."""

import pytest
from django.urls import reverse

from groundtruth.models import Annotation, Box
from groundtruth.services import gold_set
from tests.factories import ImageFactory, MembershipFactory

pytestmark = pytest.mark.django_db

PERSON = {"x1": 100, "y1": 100, "x2": 140, "y2": 200, "label": "pedestrian"}
REGION = {"x1": 300, "y1": 100, "x2": 400, "y2": 250, "label": "pedestrian", "is_ignored": True}


def submit(image, annotator, boxes):
    annotation = Annotation.objects.create(image=image, annotator=annotator)
    for (x1, y1, x2, y2), is_from_suggestion in boxes:
        Box.objects.create(annotation=annotation, x1=x1, y1=y1, x2=x2, y2=y2, is_from_suggestion=is_from_suggestion)


def test_taken_and_drawn_boxes_and_submissions_are_scored_apart(api_client, people):
    images = [ImageFactory(project=people.project) for _ in range(3)]
    for image in images:
        gold_set(image=image, reviewer=people.reviewer, boxes=[PERSON] + ([REGION] if image == images[2] else []))
    taker, drawer = people.annotator, MembershipFactory(project=people.project, user__username="dora").user
    person, off_by_8 = (100, 100, 140, 200), (100, 108, 140, 208)  # IoU 92/108
    submit(images[0], taker, [(person, True), ((500, 100, 540, 200), True)])  # kept the model's wrong box
    submit(images[1], taker, [(off_by_8, False)])
    submit(images[2], taker, [((320, 120, 360, 220), True)])  # inside the ignore region: neither way
    submit(images[0], drawer, [(person, False)])
    submit(images[1], drawer, [(person, False)])
    submit(images[2], drawer, [])
    api_client.force_authenticate(people.reviewer)

    response = api_client.get(reverse("api-suggestion-bias", args=[people.project.pk]))

    assert response.status_code == 200
    body = response.json()
    assert body["gold_images"] == 3
    assert body["boxes"]["taken"] == {"boxes": 2, "matched_share": 0.5, "mean_iou": 1.0}
    drawn = body["boxes"]["drawn"]
    assert (drawn["boxes"], drawn["matched_share"]) == (3, 1.0)
    assert drawn["mean_iou"] == pytest.approx((92 / 108 + 2) / 3)
    # with suggestions: images 0 and 2 of the taker (1 hit, 1 false positive, 1 miss)
    assert body["submissions"]["with"] == {"images": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    # without: the taker's image 1 and the drawer's three (3 hits, 1 miss)
    without = body["submissions"]["without"]
    assert (without["images"], without["precision"], without["recall"]) == (4, 1.0, 0.75)
    assert without["f1"] == pytest.approx(6 / 7)


def test_only_the_projects_reviewers_read_it(api_client, people):
    url = reverse("api-suggestion-bias", args=[people.project.pk])
    api_client.force_authenticate(people.annotator)
    assert api_client.get(url).status_code == 403
    api_client.force_authenticate(people.outsider)
    assert api_client.get(url).status_code == 404
    api_client.force_authenticate(people.reviewer)
    body = api_client.get(url).json()
    assert body["gold_images"] == 0 and body["boxes"]["taken"]["matched_share"] is None


def test_the_report_page_shows_it_once_a_suggestion_was_taken(client, people, project_with_disagreement):
    images, version = project_with_disagreement  # every annotator boxed PERSON on image 0
    gold_set(image=images[0], reviewer=people.reviewer, boxes=[PERSON])
    client.force_login(people.reviewer)
    url = reverse("consensus-report", args=[version.pk])
    assert 'id="suggestions"' not in client.get(url).content.decode()  # nothing taken, suggestions off

    Box.objects.filter(annotation__image=images[0], annotation__annotator=people.annotator).update(
        is_from_suggestion=True
    )

    page = client.get(url).content.decode()
    assert 'id="suggestions"' in page and "Taken from a suggestion</td><td>1</td><td>1.000</td>" in page
    # it says that, unlike the report around it, it is live and where the API gives it
    assert "not frozen with version" in page and f"/api/v1/projects/{people.project.pk}/suggestion-bias/" in page
