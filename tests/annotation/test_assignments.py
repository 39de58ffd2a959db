"""The assignment engine through the API: leases, overlap k, order, drafts, submit, skip,
and blindness."""

import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Assignment
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.models import Annotation, Box
from projects.models import Membership, Role
from tests import images
from tests.factories import UserFactory
from tests.storage import served

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(people):
    """Project A with k = 2, three images and three more annotators."""
    project = people.project
    project.overlap_k = 2
    project.save()
    uploads = [
        IncomingImage(name=f"{i}.jpg", file=io.BytesIO(data), size=len(data))
        for i, data in enumerate(images.image_bytes(size=(200, 100), seed=200 + i) for i in range(3))
    ]
    image_ingest(project=project, uploads=uploads, user=None)
    annotators = [people.annotator]
    for name in ("bea", "cal", "dan"):
        user = UserFactory(username=name)
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
        annotators.append(user)
    return project, annotators


def next_task(client, project):
    return client.post(reverse("api-next-task", kwargs={"project_id": project.pk}))


def as_user(api_client, user):
    api_client.force_login(user)
    return api_client


BOX = {"x1": 10.0, "y1": 20.0, "x2": 40.0, "y2": 90.0, "label": "pedestrian"}


def test_next_task_leases_and_gives_the_same_task_back(api_client, panel):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    first = next_task(client, project)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {
        "id", "project", "image_url", "width", "height", "labels", "state", "version", "draft", "active_seconds",
        "lease_expires_at", "annotation", "suggestions",
    }  # fmt: skip
    assert body["state"] == "leased" and body["draft"] == [] and body["labels"] == ["pedestrian"]
    assert body["suggestions"] == []  # a model's boxes only where the project allows them
    assert next_task(client, project).json()["id"] == body["id"]
    status, headers, _ = served(client.get(body["image_url"]))
    assert status == 200 and headers["Content-Type"] == "image/jpeg"


def test_an_image_takes_at_most_k_annotators(api_client, panel):
    project, annotators = panel
    Image.objects.filter(project=project).exclude(pk=Image.objects.filter(project=project).first().pk).delete()
    got = [next_task(as_user(api_client, user), project).status_code for user in annotators]
    assert got == [200, 200, 204, 204]


def test_images_closest_to_k_come_first(api_client, panel):
    project, (anna, bea, *_) = panel
    task = next_task(as_user(api_client, anna), project).json()
    api_client.post(
        reverse("api-assignment-submit", kwargs={"assignment_id": task["id"]}), {"boxes": []}, format="json"
    )
    # the image anna finished has 1 of 2 submissions: the next annotator gets it first
    bea_task = next_task(as_user(api_client, bea), project).json()
    assert Assignment.objects.get(pk=bea_task["id"]).image_id == Assignment.objects.get(pk=task["id"]).image_id


def test_an_expired_lease_returns_the_slot_and_its_holder_can_resume(api_client, panel):
    project, (anna, bea, *_) = panel
    project.overlap_k = 1
    project.save()
    Image.objects.filter(project=project).exclude(pk=Image.objects.filter(project=project).first().pk).delete()
    task = next_task(as_user(api_client, anna), project).json()
    assert next_task(as_user(api_client, bea), project).status_code == 204
    Assignment.objects.filter(pk=task["id"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    # anna returns: her lease ran out but the slot is still free: she resumes it, draft kept
    resumed = next_task(as_user(api_client, anna), project).json()
    assert resumed["id"] == task["id"] and resumed["version"] == task["version"] + 1
    Assignment.objects.filter(pk=task["id"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    # now bea asks first and takes the slot
    assert next_task(as_user(api_client, bea), project).status_code == 200
    assert next_task(as_user(api_client, anna), project).status_code == 204


def test_drafts_use_versions_and_a_stale_tab_gets_412(api_client, panel):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    task = next_task(client, project).json()
    url = reverse("api-assignment-draft", kwargs={"assignment_id": task["id"]})
    saved = client.put(url, {"boxes": [BOX]}, format="json", HTTP_IF_MATCH=str(task["version"]))
    assert saved.status_code == 200 and saved.json()["version"] == task["version"] + 1
    assert saved["ETag"] == f'"{task["version"] + 1}"'
    # the other tab still holds the old version
    stale = client.put(url, {"boxes": []}, format="json", HTTP_IF_MATCH=str(task["version"]))
    assert stale.status_code == 412
    error = stale.json()["error"]
    assert error["fields"]["version"] == task["version"] + 1
    assert error["fields"]["draft"] == [BOX]
    assert "Another tab saved this task first" in error["message"]
    assert Assignment.objects.get(pk=task["id"]).draft == [BOX]
    assert client.put(url, {"boxes": []}, format="json").status_code == 428


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ({**BOX, "x1": "ten"}, "x1 must be a finite number"),
        ({**BOX, "x2": 5.0}, "x2 must be greater than x1"),
        ({**BOX, "x2": 203.0}, "reaches more than 2 px outside the 200x100 image"),
        ({**BOX, "y2": 21.0}, "at least 2x2 px"),
        ({**BOX, "label": "dog"}, "unknown label 'dog'"),
        ({**BOX, "is_occluded": "yes"}, "is_occluded must be true or false"),
        ({**BOX, "colour": "red"}, "unknown field(s): colour"),
    ],
)
def test_submit_refuses_bad_boxes_with_per_box_errors(api_client, panel, box, message):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    task = next_task(client, project).json()
    response = client.post(
        reverse("api-assignment-submit", kwargs={"assignment_id": task["id"]}), {"boxes": [BOX, box]}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "1 box(es) are invalid; nothing was saved."
    assert error["fields"]["boxes"][0]["index"] == 1
    assert any(message in text for text in error["fields"]["boxes"][0]["errors"])
    assert Annotation.objects.count() == 0
    assert Assignment.objects.get(pk=task["id"]).state == "leased"


def test_submit_limits_and_non_finite_numbers(api_client, panel):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    task = next_task(client, project).json()
    url = reverse("api-assignment-submit", kwargs={"assignment_id": task["id"]})
    response = client.post(url, {"boxes": [BOX] * 501}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid boxes: at most 500 boxes per image, got 501."
    response = client.post(
        url,
        '{"boxes": [{"x1": NaN, "y1": 0, "x2": 5, "y2": 5, "label": "pedestrian"}]}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert Annotation.objects.count() == 0


def test_submit_clips_small_overshoot_and_is_idempotent(api_client, panel):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    task = next_task(client, project).json()
    url = reverse("api-assignment-submit", kwargs={"assignment_id": task["id"]})
    boxes = [{**BOX, "x1": -1.5, "x2": 201.0, "is_occluded": True}]
    # the active time a client reports is capped by the time since the lease
    Assignment.objects.filter(pk=task["id"]).update(leased_at=timezone.now() - timedelta(seconds=60))
    first = client.post(url, {"boxes": boxes, "active_seconds": 12.5}, format="json")
    assert first.status_code == 201
    again = client.post(url, {"boxes": boxes}, format="json")
    assert again.status_code == 200 and again.json()["annotation"] == first.json()["annotation"]
    assert Annotation.objects.count() == 1
    box = Box.objects.get()
    assert (box.x1, box.x2, box.is_occluded) == (0.0, 200.0, True)
    assert Annotation.objects.get().active_seconds == pytest.approx(12.5)
    assert Assignment.objects.get(pk=task["id"]).active_seconds == pytest.approx(12.5)
    # submitted is final: drafts are closed
    draft = client.put(
        reverse("api-assignment-draft", kwargs={"assignment_id": task["id"]}),
        {"boxes": []},
        format="json",
        HTTP_IF_MATCH="1",
    )
    assert draft.status_code == 409


def test_an_empty_submission_is_an_answer_and_differs_from_a_skip(api_client, panel):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    first = next_task(client, project).json()
    assert (
        client.post(
            reverse("api-assignment-submit", kwargs={"assignment_id": first["id"]}), {"boxes": []}, format="json"
        ).status_code
        == 201
    )
    second = next_task(client, project).json()
    skip_url = reverse("api-assignment-skip", kwargs={"assignment_id": second["id"]})
    assert client.post(skip_url, {"reason": ""}, format="json").status_code == 400
    skipped = client.post(skip_url, {"reason": "too dark to tell"}, format="json")
    assert skipped.status_code == 200 and skipped.json()["state"] == "skipped"
    assert Annotation.objects.filter(annotator=anna).count() == 1
    assert Assignment.objects.get(pk=second["id"]).skip_reason == "too dark to tell"
    # neither image comes back to her; submitting the skipped one is a conflict
    third = next_task(client, project).json()
    assert third["id"] not in (first["id"], second["id"])
    assert (
        client.post(
            reverse("api-assignment-submit", kwargs={"assignment_id": second["id"]}), {"boxes": []}, format="json"
        ).status_code
        == 409
    )


def test_blind_another_annotators_task_is_a_404_everywhere(api_client, panel):
    project, (anna, bea, *_) = panel
    task = next_task(as_user(api_client, anna), project).json()
    api_client.put(
        reverse("api-assignment-draft", kwargs={"assignment_id": task["id"]}),
        {"boxes": [BOX]},
        format="json",
        HTTP_IF_MATCH="1",
    )
    client = as_user(api_client, bea)
    kwargs = {"assignment_id": task["id"]}
    responses = [
        client.get(reverse("api-assignment", kwargs=kwargs)),
        client.get(reverse("api-assignment-image", kwargs=kwargs)),
        client.put(reverse("api-assignment-draft", kwargs=kwargs), {"boxes": []}, format="json", HTTP_IF_MATCH="2"),
        client.post(reverse("api-assignment-submit", kwargs=kwargs), {"boxes": []}, format="json"),
        client.post(reverse("api-assignment-skip", kwargs=kwargs), {"reason": "x"}, format="json"),
    ]
    missing = client.get(reverse("api-assignment", kwargs={"assignment_id": 999_999}))
    for response in responses:
        assert response.status_code == 404
        assert response.json() == missing.json()
    # bea's own task on the same image shows only her (empty) draft and no count of others
    own = next_task(client, project).json()
    text = json.dumps(own)
    assert "40.0" not in text and "submitted" not in text.replace('"state": "leased"', "")
    assert Assignment.objects.get(pk=task["id"]).draft == [BOX]


def test_outsiders_get_no_task(api_client, panel, people):
    project, _ = panel
    assert next_task(as_user(api_client, people.outsider), project).status_code == 404


def test_expired_leases_are_marked_by_the_periodic_task(api_client, panel):
    from annotation.tasks import assignment_leases_expire_task

    project, (anna, bea, *_) = panel
    old = next_task(as_user(api_client, anna), project).json()
    fresh = next_task(as_user(api_client, bea), project).json()
    Assignment.objects.filter(pk=old["id"]).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    assert assignment_leases_expire_task() == 1
    assert Assignment.objects.get(pk=old["id"]).state == "expired"
    assert Assignment.objects.get(pk=fresh["id"]).state == "leased"


def test_annotator_home_shows_own_figures(client, api_client, panel):
    project, (anna, *_) = panel
    task = next_task(as_user(api_client, anna), project).json()
    Assignment.objects.filter(pk=task["id"]).update(leased_at=timezone.now() - timedelta(seconds=60))
    api_client.post(
        reverse("api-assignment-submit", kwargs={"assignment_id": task["id"]}),
        {"boxes": [], "active_seconds": 42},
        format="json",
    )
    client.force_login(anna)
    html = client.get(reverse("home")).content.decode()
    assert "1 done today, 1 in all, 42 s per image" in html
    assert f'href="/projects/{project.pk}/annotate/"' in html


def test_a_second_submit_with_other_boxes_is_a_409_naming_the_stored_annotation(api_client, panel):
    project, (anna, *_) = panel
    client = as_user(api_client, anna)
    task = next_task(client, project).json()
    url = reverse("api-assignment-submit", kwargs={"assignment_id": task["id"]})
    first = client.post(url, {"boxes": [BOX]}, format="json")
    assert first.status_code == 201
    # when the same task is submitted with different boxes (another tab, a script's bug)
    other = client.post(url, {"boxes": [BOX, {**BOX, "x1": 100.0, "x2": 150.0}]}, format="json")
    # then nothing is silently dropped: 409, naming what is stored
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "already_submitted"
    assert error["fields"] == {"annotation": first.json()["annotation"], "revision": 1}
    assert f"annotation {first.json()['annotation']}, revision 1, 1 boxes" in error["message"]
    assert Box.objects.count() == 1 and Annotation.objects.count() == 1
    # and the first boxes again are still the retry they always were
    assert client.post(url, {"boxes": [BOX]}, format="json").status_code == 200


def ahead_task(client, project):
    return client.post(reverse("api-next-task", kwargs={"project_id": project.pk}) + "?ahead=1")


def test_the_task_ahead_is_leased_while_the_current_one_is_worked_on(api_client, panel):
    """The canvas leases the next task early (to load its image); it is an ordinary lease
    that holds a place, given back on every call, and next-task hands it out once the
    current task is submitted."""
    project, (anna, bea, *_) = panel
    project.overlap_k = 1
    project.save()
    client = as_user(api_client, anna)
    assert ahead_task(client, project).status_code == 204  # on no task yet: nothing ahead
    current = next_task(client, project).json()
    ahead = ahead_task(client, project).json()
    image_of = {a.pk: a.image_id for a in Assignment.objects.all()}
    assert ahead["id"] != current["id"] and image_of[ahead["id"]] != image_of[current["id"]]
    assert ahead_task(client, project).json()["id"] == ahead["id"]  # the same one again
    assert next_task(client, project).json()["id"] == current["id"]  # the current task stays the current one
    # with k = 1 the task ahead holds its image: bea gets the third image, then nothing
    other = as_user(APIClient(), bea)
    third = next_task(other, project).json()
    image_of = {a.pk: a.image_id for a in Assignment.objects.all()}
    assert image_of[third["id"]] not in (image_of[current["id"]], image_of[ahead["id"]])
    submit_url = reverse("api-assignment-submit", kwargs={"assignment_id": third["id"]})
    assert other.post(submit_url, {"boxes": []}, format="json").status_code in (200, 201)
    assert next_task(other, project).status_code == 204
    # anna submits: her next task is the one leased ahead; nothing is left ahead of it
    client = as_user(api_client, anna)
    submit_url = reverse("api-assignment-submit", kwargs={"assignment_id": current["id"]})
    assert client.post(submit_url, {"boxes": [BOX]}, format="json").status_code in (200, 201)
    assert next_task(client, project).json()["id"] == ahead["id"]
    assert ahead_task(client, project).status_code == 204
    assert Assignment.objects.filter(annotator=anna, state="leased").count() == 1
