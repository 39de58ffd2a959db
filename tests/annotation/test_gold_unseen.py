"""Gold tasks cannot be told apart: they come at the project's gold rate among the others,
never as a run at the end of the queue, and an annotator's own figures do not move with a
gold submission differently from any other."""

from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from scipy import stats

from annotation.assignments import assignment_lease_next, assignment_skip, assignment_submit
from annotation.models import Assignment
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind
from groundtruth.selectors import GOLD_FIGURES_MIN_IMAGES
from groundtruth.services import gold_set
from projects.models import Project
from tests.factories import ImageFactory, MembershipFactory

pytestmark = pytest.mark.django_db

GOLD_RATE = 0.1
REFERENCE = [{"x1": 100, "y1": 100, "x2": 140, "y2": 200, "label": "pedestrian"}]


def images(project: Project, count: int, *, gold: bool) -> None:
    start = Image.objects.count()
    Image.objects.bulk_create(
        ImageFactory.build(project=project, sha256=f"{start + i:064x}", shuffle_key=(start + i) * 7919 % 100_003,
                           is_gold=gold)
        for i in range(count)
    )  # fmt: skip


def test_gold_tasks_come_at_the_gold_rate_among_the_others_over_500_calls():
    # given 400 ordinary images and 100 gold ones, each wanted once (k = 1), gold rate 0.1
    project = Project.objects.create(name="Long queue", overlap_k=1, gold_rate=GOLD_RATE)
    annotator = MembershipFactory(project=project, user__username="steady").user
    images(project, 400, gold=False)
    images(project, 100, gold=True)
    # when the annotator asks for a task 500 times, finishing each (a skip is the quickest way)
    handed, empty = [], 0
    for _ in range(500):
        task = assignment_lease_next(project=project, user=annotator)
        if task is None:
            empty += 1
            continue
        handed.append(task.image.is_gold)
        assignment_skip(assignment=task, reason="done")
    gold = np.flatnonzero(handed)
    # then the gold share is the gold rate's (a binomial 99.9% interval)
    low, high = stats.binom.interval(0.999, len(handed), GOLD_RATE)
    assert low <= len(gold) <= high, (len(gold), len(handed))
    # and gold tasks sit anywhere along the queue, not bunched (Kolmogorov-Smirnov against uniform)
    assert stats.kstest((gold + 0.5) / len(handed), "uniform").pvalue > 0.001
    # and once the ordinary images are done nothing more is handed out: no run of gold at the end
    assert not handed[-1]
    assert len(handed) - len(gold) == 400 and empty == 500 - len(handed) > 0
    assert Assignment.objects.filter(image__is_gold=True).count() < 100  # gold images were left over


def test_without_a_gold_rate_no_gold_task_is_handed_out():
    project = Project.objects.create(name="No gold", overlap_k=1, gold_rate=0.0)
    annotator = MembershipFactory(project=project, user__username="plain").user
    images(project, 5, gold=False)
    images(project, 5, gold=True)
    leased = []
    while (task := assignment_lease_next(project=project, user=annotator)) is not None:
        leased.append(task.image.is_gold)
        assignment_submit(assignment=task, boxes=[])
    assert leased == [False] * 5


@pytest.fixture
def twins():
    """Two annotators with the same past: the same boxes on six gold images, yesterday."""
    project = Project.objects.create(name="Twins", overlap_k=2, gold_rate=0.5)
    reviewer = MembershipFactory(project=project, user__username="lead", role="reviewer").user
    people = [MembershipFactory(project=project, user__username=name).user for name in ("left", "right")]
    gold = [ImageFactory(project=project, width=640, height=480) for _ in range(8)]
    plain = ImageFactory(project=project, width=640, height=480)
    for image in gold:
        gold_set(image=image, reviewer=reviewer, boxes=REFERENCE)
    yesterday = timezone.now() - timedelta(days=1)
    for person in people:
        for index, image in enumerate(gold[:6]):
            boxes = REFERENCE if index % 2 else []  # half right, half missed
            task = _lease(project, person, image)
            assignment_submit(assignment=task, boxes=boxes, active_seconds=30)
    Annotation.objects.filter(kind=AnnotationKind.SUBMISSION).update(submitted_at=yesterday)
    return project, people, gold[6], plain


def _lease(project, user, image):
    now = timezone.now()
    return Assignment.objects.create(
        image=image, annotator=user, leased_at=now - timedelta(hours=1), lease_expires_at=now + timedelta(hours=1)
    )


def test_an_annotators_figures_are_identical_before_and_after_a_gold_submission(api_client, twins):
    project, (left, right), gold_image, plain_image = twins
    api_client.force_authenticate(left)
    url = reverse("api-my-figures", args=[project.pk])
    before = api_client.get(url).json()
    # the gold figures count yesterday's six gold images
    assert before["gold"]["images"] == 6 >= GOLD_FIGURES_MIN_IMAGES
    assert before["gold"]["recall"] == 0.5
    # when one annotator submits a gold image today and the other an ordinary one, the same way
    assignment_submit(assignment=_lease(project, left, gold_image), boxes=[], active_seconds=30)
    assignment_submit(assignment=_lease(project, right, plain_image), boxes=[], active_seconds=30)
    after = api_client.get(url).json()
    # then the gold figures have not moved, and both annotators' figures are the same
    assert after["gold"] == before["gold"]
    api_client.force_authenticate(right)
    assert after == api_client.get(url).json()
    assert after["images"] == before["images"] + 1  # the work count moves with every submission alike


def test_gold_figures_appear_only_after_enough_checked_images_before_today(api_client, client, twins):
    project, (left, _), _, _ = twins
    # given two of the six gold submissions made today: four count, fewer than the minimum
    mine = Annotation.objects.filter(annotator=left, kind=AnnotationKind.SUBMISSION).order_by("pk")
    Annotation.objects.filter(pk__in=list(mine.values_list("pk", flat=True)[:2])).update(submitted_at=timezone.now())
    assert GOLD_FIGURES_MIN_IMAGES > 6 - 2
    # then neither the API nor the page shows gold figures
    api_client.force_authenticate(left)
    assert api_client.get(reverse("api-my-figures", args=[project.pk])).json()["gold"] is None
    client.force_login(left)
    page = client.get(reverse("project-my-figures", args=[project.pk])).content.decode()
    assert "Not enough checked images before today yet." in page
