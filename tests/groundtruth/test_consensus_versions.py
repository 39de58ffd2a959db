"""Consensus versions: computed from the raw submissions, versioned, kept up to date image by image."""

import numpy as np
import pytest
from django.db import connection, transaction
from django.urls import reverse

from annotation.assignments import assignment_lease_next, assignment_submit
from boxes.consensus import consolidate
from boxes.matching import match
from demo.models import SyntheticTruth
from demo.simulation import panel_simulate, simulated_annotators
from demo.synthetic_data import synthetic_images_add
from groundtruth.computing import consensus_version_compute, image_consensus_update
from groundtruth.models import (
    Annotation,
    Box,
    ConsensusVersion,
    GroundTruthBox,
    ImageConsensus,
    ImageState,
    VersionState,
)
from groundtruth.records import image_consensus_enqueue
from groundtruth.selectors import image_panels, panels
from groundtruth.services import consensus_version_create
from projects.models import Project
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulated_project():
    project = Project.objects.create(name="Street", overlap_k=3, split_seed=7)
    synthetic_images_add(project=project, count=16, seed=3)
    panel_simulate(project=project, annotators=5, fraction=1.0, seed=1)
    reviewer = MembershipFactory(project=project, user__username="rita", role="reviewer").user
    return project, reviewer


def ground_truth(version: ConsensusVersion) -> dict[int, np.ndarray]:
    result = {}
    for row in version.images.prefetch_related("boxes"):
        kept = [b for b in row.boxes.all() if not b.is_uncertain and not b.is_ignore]
        result[row.image_id] = np.array([[b.x1, b.y1, b.x2, b.y2] for b in kept]).reshape(-1, 4)
    return result


def f1_against_truth(boxes_by_image: dict[int, np.ndarray]) -> float:
    tp = n_pred = n_truth = 0
    for image_id, boxes in boxes_by_image.items():
        truth = np.array(SyntheticTruth.objects.get(image_id=image_id).boxes, dtype=float).reshape(-1, 4)
        tp += match(boxes, truth).count
        n_pred, n_truth = n_pred + len(boxes), n_truth + len(truth)
    return 2 * tp / (n_pred + n_truth)


def test_a_version_is_the_consensus_of_every_fully_annotated_image(simulated_project):
    project, reviewer = simulated_project
    version = consensus_version_create(project=project, user=reviewer)
    assert version.number == 1 and version.state == VersionState.PENDING
    consensus_version_compute(version_id=version.pk)
    version.refresh_from_db()
    assert version.state == VersionState.DONE and version.is_current
    assert version.started_at <= version.finished_at
    assert set(version.timings) == {"plan", "load", "compute", "write", "report", "chunks", "peak_rss_mb"}
    assert version.images.count() == 16  # every image has its 3 submissions
    assert version.alpha_low < version.alpha < version.alpha_high
    assert 0.5 < version.pairwise_f1 <= 1
    by_image = panels(project=project)
    stored = ground_truth(version)
    for image_id, panel in by_image.items():
        expected = consolidate({a: b for a, (b, _) in panel.items()}, ignored={a: f for a, (_, f) in panel.items()})
        np.testing.assert_allclose(stored[image_id], expected.boxes)
        row = version.images.get(image_id=image_id)
        assert row.uncertain == len(expected.uncertain)
        auto = row.f1 is not None and row.f1 >= version.accept_f1 and not expected.uncertain
        assert row.state == (ImageState.AUTO_ACCEPTED if auto else ImageState.NEEDS_REVIEW)
    # the consensus is closer to the truth than the average annotator
    singles = []
    for annotator_id in {a for panel in by_image.values() for a in panel}:
        mine = {i: p[annotator_id][0] for i, p in by_image.items() if annotator_id in p}
        singles.append(f1_against_truth(mine))
    assert f1_against_truth(stored) > np.mean(singles)


def test_a_second_version_leaves_the_first_and_the_raw_annotations_alone(simulated_project):
    project, reviewer = simulated_project
    first = consensus_version_create(project=project, user=reviewer)
    consensus_version_compute(version_id=first.pk)
    coordinates = ("x1", "y1", "x2", "y2")
    raw = sorted(Box.objects.filter(annotation__image__project=project).values_list("id", *coordinates))

    def stored(version):
        return sorted(GroundTruthBox.objects.filter(image_consensus__version=version).values_list(*coordinates))

    first_boxes = stored(first)
    second = consensus_version_create(project=project, user=reviewer, iou_threshold=0.7, fuse="mean", quorum=0.3)
    consensus_version_compute(version_id=second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.number == 2 and second.is_current and not first.is_current
    assert stored(first) == first_boxes
    assert sorted(Box.objects.filter(annotation__image__project=project).values_list("id", *coordinates)) == raw
    assert stored(second) != first_boxes  # other parameters, another result
    assert consensus_version_compute(version_id=second.pk).state == VersionState.DONE  # running it again is a no-op


def consensus_updates(callbacks) -> list:
    """The after-commit callbacks that send an image's consensus update (others count the
    submission for the metrics)."""
    return [callback for callback in callbacks if getattr(callback, "func", None) is image_consensus_enqueue]


def test_the_kth_submission_updates_that_image_in_the_current_version(django_capture_on_commit_callbacks):
    project = Project.objects.create(name="Small", overlap_k=2)
    synthetic_images_add(project=project, count=3, seed=4)
    users = simulated_annotators(project=project, count=2)
    reviewer = UserFactory(username="lead", is_staff=True)
    version = consensus_version_create(project=project, user=reviewer)
    consensus_version_compute(version_id=version.pk)
    assert ImageConsensus.objects.filter(version=version).count() == 0  # nothing annotated yet
    boxes = [{"x1": 10, "y1": 10, "x2": 60, "y2": 150, "label": "pedestrian"}]
    first = assignment_lease_next(project=project, user=users[0])
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        assignment_submit(assignment=first, boxes=boxes)
    assert consensus_updates(callbacks) == []  # one submission of two: nothing to update yet
    second = assignment_lease_next(project=project, user=users[1])
    assert second.image_id == first.image_id
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        assignment_submit(assignment=second, boxes=[{"x1": 12, "y1": 10, "x2": 60, "y2": 152, "label": "pedestrian"}])
    assert len(consensus_updates(callbacks)) == 1  # the update is sent to the worker after commit
    row = image_consensus_update(image_id=first.image_id)
    assert row.version == version and row.annotators == 2 and row.state == ImageState.AUTO_ACCEPTED
    (box,) = row.boxes.all()
    assert (box.x1, box.y1, box.x2, box.y2, box.support) == (11, 10, 60, 151, 2)


def test_the_api_starts_lists_and_shows_versions(api_client, people, django_capture_on_commit_callbacks):
    url = reverse("api-project-consensus", args=[people.project.pk])
    api_client.force_authenticate(people.reviewer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client.post(url, {"iou_threshold": 0.6, "fuse": "mean"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "pending" and response.json()["number"] == 1
    assert len(callbacks) == 1  # the computation goes to the groundtruth queue after commit
    version_id = response.json()["id"]
    consensus_version_compute(version_id=version_id)
    detail = api_client.get(reverse("api-consensus-version", args=[version_id])).json()
    assert detail["state"] == "done" and detail["iou_threshold"] == 0.6
    assert detail["images"] == {"auto_accepted": 0, "needs_review": 0, "adjudicated": 0}
    assert [v["number"] for v in api_client.get(url).json()] == [1]


@pytest.mark.parametrize(
    ("k", "payload", "weighted"),
    [
        (3, {}, True),  # panels of three or more: weighted unless told
        (5, {"reliability_weighted": None}, True),
        (3, {"reliability_weighted": False}, False),  # the plain majority, one field away
        (3, {"quorum": 0.6}, False),  # a quorum is a plain rule: no weighting with it
        (2, {}, False),  # two annotators: the estimate is not identifiable
        (2, {"reliability_weighted": True}, True),
    ],
)
def test_weighting_is_the_default_for_panels_of_three_or_more(api_client, people, k, payload, weighted):
    Project.objects.filter(pk=people.project.pk).update(overlap_k=k)
    api_client.force_authenticate(people.reviewer)
    response = api_client.post(reverse("api-project-consensus", args=[people.project.pk]), payload, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["reliability_weighted"] is weighted
    assert ConsensusVersion.objects.get().reliability_weighted is weighted


@pytest.mark.parametrize("k", [2, 3])
def test_the_form_ticks_weighting_for_panels_of_three_and_unticked_it_keeps_the_plain_majority(client, people, k):
    Project.objects.filter(pk=people.project.pk).update(overlap_k=k)
    client.force_login(people.reviewer)
    url = reverse("project-consensus", args=[people.project.pk])
    page = client.get(url).content.decode()
    box = page[page.index('name="reliability_weighted"') :].split(">", 1)[0]
    assert ("checked" in box) is (k >= 3)
    # an unticked box sends nothing: that is the plain majority, whatever k is
    response = client.post(url, {"iou_threshold": "0.5", "quorum": "", "fuse": "median", "accept_f1": "0.8"})
    assert response.status_code == 302
    assert ConsensusVersion.objects.get().reliability_weighted is False
    client.post(url, {"iou_threshold": "0.5", "quorum": "", "fuse": "median", "accept_f1": "0.8",
                      "reliability_weighted": "on"})  # fmt: skip
    assert ConsensusVersion.objects.get(number=2).reliability_weighted is True


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"quorum": 0}, "quorum"),
        ({"quorum": 0.5, "reliability_weighted": True}, "quorum"),  # weighting decides by weight, not a share
        ({"fuse": "max"}, "fuse"),
        ({"accept_f1": -1}, "accept_f1"),
    ],
)
def test_bad_parameters_are_refused_and_leave_nothing(api_client, people, payload, field):
    api_client.force_authenticate(people.reviewer)
    response = api_client.post(reverse("api-project-consensus", args=[people.project.pk]), payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not ConsensusVersion.objects.exists()


def test_annotators_get_403_and_outsiders_404(api_client, people):
    version = consensus_version_create(project=people.project, user=people.reviewer)
    url = reverse("api-project-consensus", args=[people.project.pk])
    api_client.force_authenticate(people.annotator)
    assert api_client.post(url, {}, format="json").status_code == 403
    assert api_client.get(reverse("api-consensus-version", args=[version.pk])).status_code == 403
    api_client.force_authenticate(people.outsider)
    assert api_client.post(url, {}, format="json").status_code == 404
    assert api_client.get(reverse("api-consensus-version", args=[version.pk])).status_code == 404
    assert ConsensusVersion.objects.count() == 1


def test_pending_versions_whose_task_was_lost_are_swept(people):
    from datetime import timedelta

    from django.utils import timezone

    from groundtruth.computing import consensus_versions_stalled

    old = consensus_version_create(project=people.project, user=people.reviewer)
    fresh = consensus_version_create(project=people.project, user=people.reviewer)
    ConsensusVersion.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=30))
    assert consensus_versions_stalled() == [old.pk]
    consensus_version_compute(version_id=old.pk)
    assert consensus_versions_stalled() == []
    assert ConsensusVersion.objects.get(pk=fresh.pk).state == VersionState.PENDING


def test_panels_hold_the_current_submissions_of_complete_images_only():
    from datasets.models import Image
    from groundtruth.models import Annotation, AnnotationKind
    from tests.factories import ImageFactory, MembershipFactory

    project = Project.objects.create(name="Panels", overlap_k=3)
    people = [MembershipFactory(project=project, user__username=f"panel{i}").user for i in range(3)]
    complete, partial = ImageFactory(project=project), ImageFactory(project=project)
    Image.objects.filter(pk=complete.pk).update(submitted_count=3)

    def submission(image, user, boxes, **fields):
        annotation = Annotation.objects.create(image=image, annotator=user, **fields)
        for x1, y1, x2, y2, ignored in boxes:
            Box.objects.create(annotation=annotation, x1=x1, y1=y1, x2=x2, y2=y2, is_ignored=ignored)

    submission(complete, people[0], [(10, 10, 50, 120, False), (200, 10, 240, 120, True)])
    submission(complete, people[0], [(0, 0, 9, 9, False)], is_current=False, revision=0)  # superseded
    submission(complete, people[1], [])  # nobody there, says this one
    submission(complete, people[2], [(12, 11, 52, 121, False)])
    submission(complete, people[1], [(1, 1, 5, 5, False)], kind=AnnotationKind.GOLD)  # not a submission
    submission(partial, people[0], [(30, 30, 60, 90, False)])
    submission(partial, people[1], [(31, 30, 61, 90, False)])

    by_image = panels(project=project)
    assert list(by_image) == [complete.pk]  # the partial image has 2 of its 3
    panel = by_image[complete.pk]
    assert set(panel) == {user.pk for user in people}
    boxes, ignored = panel[people[0].pk]
    np.testing.assert_array_equal(boxes, [[10, 10, 50, 120], [200, 10, 240, 120]])
    assert ignored.tolist() == [False, True]
    assert panel[people[1].pk][0].shape == (0, 4)
    # asked for by id, an image comes whatever its count
    assert set(panels(project=project, image_ids=[partial.pk])[partial.pk]) == {people[0].pk, people[1].pk}


BOX_COLUMNS = (
    "x1",
    "y1",
    "x2",
    "y2",
    "support",
    "score",
    "spread",
    "annotators",
    "is_ignore",
    "is_uncertain",
    "source",
)


def rows_of(version: ConsensusVersion) -> dict:
    return {
        row.image_id: (
            row.state,
            row.annotators,
            row.f1,
            row.mean_iou,
            row.uncertain,
            [tuple(getattr(b, column) for column in BOX_COLUMNS) for b in row.boxes.order_by("pk")],
        )
        for row in version.images.all()
    }


@pytest.mark.parametrize("include_not_blind", [False, True])
def test_an_image_updated_alone_equals_its_row_in_the_whole_version(
    simulated_project, include_not_blind, django_assert_max_num_queries
):
    # given panels with an annotator who drew nothing, an ignore region, and a reviewer's
    # submission that is not blind
    project, reviewer = simulated_project
    images = list(project.images.order_by("pk"))
    empty = Annotation.objects.filter(image=images[0]).order_by("annotator_id").first()
    Box.objects.filter(annotation=empty).delete()
    Box.objects.filter(pk=Box.objects.filter(annotation__image=images[1]).order_by("pk").first().pk).update(
        is_ignored=True
    )
    seen = Annotation.objects.create(image=images[2], annotator=reviewer, is_blind=False)
    Box.objects.create(annotation=seen, x1=5, y1=5, x2=40, y2=90)
    version = consensus_version_create(project=project, user=reviewer, include_not_blind=include_not_blind)
    consensus_version_compute(version_id=version.pk)
    version.refresh_from_db()
    whole = rows_of(version)
    assert len(whole) == 16
    # then each image's panel read alone is the one the version read, and its update (six
    # plain statements on PostgreSQL, seven elsewhere, and here the savepoint and its release
    # around the transaction) writes the same row and boxes
    statements = 8 if connection.vendor == "postgresql" else 9
    for image in images:
        blind, everyone = image_panels(image_id=image.pk)
        expected = panels(project=project, image_ids=[image.pk], include_not_blind=include_not_blind)[image.pk]
        got = everyone if include_not_blind else blind
        assert list(got) == list(expected)
        for annotator, (boxes, flags) in expected.items():
            np.testing.assert_array_equal(got[annotator][0], boxes)
            np.testing.assert_array_equal(got[annotator][1], flags)
        with django_assert_max_num_queries(statements):
            image_consensus_update(image_id=image.pk)
    assert rows_of(version) == whole
    assert whole[images[2].pk][1] == (4 if include_not_blind else 3)
