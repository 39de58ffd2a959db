"""A project's settings change through one service (projects.services.project_update),
whether through the API, the settings page or Django admin, and each of the project's
invariants is refused with 400 naming the setting, leaving the project as it was."""

import json

import pytest
from django.urls import reverse

from datasets.models import Image
from groundtruth.models import Annotation, Box
from projects.models import Project
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db

# Each invariant: (a change the project refuses once it has images and submissions, the
# setting the refusal names). The project below has images, an image with 3 submissions,
# a box labelled "pedestrian" and conditions in use.
REFUSED = [
    ({"train_percent": 70, "val_percent": 20}, "train_percent"),
    ({"split_seed": 12345}, "split_seed"),
    ({"overlap_k": 2}, "overlap_k"),
    ({"gold_pause_after": 3}, "gold_pause_after"),  # pausing on gold with no gold rate
    ({"labels": ["cyclist"]}, "labels"),  # "pedestrian" is on a box already
    ({"conditions": {"weather": ["sun"]}}, "conditions"),  # drops values images are split by
]


@pytest.fixture
def busy(people):
    """people.project with images, 3 submissions on one of them, and a box."""
    project = people.project
    project.overlap_k = 3
    project.save()
    image = ImageFactory(project=project)
    ImageFactory(project=project)
    Image.objects.filter(pk=image.pk).update(submitted_count=3)
    annotation = Annotation.objects.create(image=image, annotator=people.annotator)
    Box.objects.create(annotation=annotation, x1=1, y1=1, x2=20, y2=60, label="pedestrian")
    return people


WATCHED = ("train_percent", "split_seed", "overlap_k", "gold_pause_after", "labels", "conditions", "gold_rate",
           "lease_minutes")  # fmt: skip


def _settings(project: Project) -> dict:
    project.refresh_from_db()
    return {name: getattr(project, name) for name in WATCHED}


def _patch(client, project, data):
    url = reverse("api-project-detail", kwargs={"project_id": project.pk})
    return client.patch(url, data, format="json")


def test_a_project_admin_who_is_not_staff_changes_settings_through_the_api(api_client, busy):
    api_client.force_login(busy.project_admin)
    response = _patch(api_client, busy.project, {"gold_rate": 0.1, "gold_pause_after": 3, "lease_minutes": 45})
    assert response.status_code == 200, response.content
    assert (response.json()["gold_rate"], response.json()["lease_minutes"]) == (0.1, 45)
    settings = _settings(busy.project)
    assert (settings["gold_rate"], settings["gold_pause_after"], settings["lease_minutes"]) == (0.1, 3, 45)
    # k may grow, and new condition values may join
    conditions = {**busy.project.conditions, "weather": [*busy.project.conditions["weather"], "snow"]}
    assert _patch(api_client, busy.project, {"overlap_k": 5, "conditions": conditions}).status_code == 200
    assert _settings(busy.project)["overlap_k"] == 5


@pytest.mark.parametrize(("change", "field"), REFUSED)
def test_each_invariant_is_refused_through_the_api(api_client, busy, change, field):
    api_client.force_login(busy.project_admin)
    before = _settings(busy.project)
    response = _patch(api_client, busy.project, change)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert _settings(busy.project) == before


def test_split_settings_are_free_before_the_first_image(api_client, people):
    api_client.force_login(people.project_admin)
    response = _patch(api_client, people.project, {"train_percent": 70, "val_percent": 20, "split_seed": 7})
    assert response.status_code == 200, response.content
    assert (_settings(people.project)["train_percent"], _settings(people.project)["split_seed"]) == (70, 7)
    bad = _patch(api_client, people.project, {"train_percent": 70, "val_percent": 25})  # sums to 105
    assert bad.status_code == 400 and "train_percent" in bad.json()["error"]["fields"]


@pytest.mark.parametrize(("who", "status"), [("reviewer", 403), ("annotator", 403), ("outsider", 404)])
def test_only_the_project_admins_change_settings(api_client, people, who, status):
    api_client.force_login(getattr(people, who))
    assert _patch(api_client, people.project, {"gold_rate": 0.2}).status_code == status
    assert _settings(people.project)["gold_rate"] == 0.0


def test_unknown_settings_are_refused(api_client, people):
    api_client.force_login(people.project_admin)
    response = _patch(api_client, people.project, {"created_by": 1})
    assert response.status_code == 400 and "created_by" in response.json()["error"]["fields"]


def _page_data(project: Project, **changes) -> dict:
    from projects.forms import ProjectSettingsForm

    data = {**ProjectSettingsForm.initial_for(project), **changes}
    return {name: value for name, value in data.items() if value is not False}


def test_the_settings_page_works_for_a_project_admin_who_is_not_staff(client, busy):
    client.force_login(busy.project_admin)
    url = reverse("project-settings", kwargs={"project_id": busy.project.pk})
    page = client.get(url)
    assert page.status_code == 200 and 'name="gold_pause_after"' in page.content.decode()
    response = client.post(url, _page_data(busy.project, gold_rate=0.25, lease_minutes=20))
    assert response.status_code == 302
    assert (_settings(busy.project)["gold_rate"], _settings(busy.project)["lease_minutes"]) == (0.25, 20)
    detail = client.get(reverse("project-detail", kwargs={"project_id": busy.project.pk})).content.decode()
    assert f'href="{url}"' in detail


@pytest.mark.parametrize(("change", "field"), [(c, f) for c, f in REFUSED if f not in ("labels", "conditions")])
def test_each_invariant_is_refused_on_the_page(client, busy, change, field):
    client.force_login(busy.project_admin)
    before = _settings(busy.project)
    url = reverse("project-settings", kwargs={"project_id": busy.project.pk})
    response = client.post(url, _page_data(busy.project, **change))
    assert response.status_code == 400
    assert f'data-field="{field}"' in response.content.decode()
    assert _settings(busy.project) == before


def test_the_page_refuses_dropped_labels_and_conditions(client, busy):
    client.force_login(busy.project_admin)
    before = _settings(busy.project)
    url = reverse("project-settings", kwargs={"project_id": busy.project.pk})
    for change, field in [({"labels": "cyclist"}, "labels"), ({"conditions": "weather: sun"}, "conditions")]:
        response = client.post(url, _page_data(busy.project, **change))
        assert response.status_code == 400 and f'data-field="{field}"' in response.content.decode()
    assert _settings(busy.project) == before


@pytest.mark.parametrize("who", ["reviewer", "annotator"])
def test_the_settings_page_is_for_admins(client, people, who):
    client.force_login(getattr(people, who))
    url = reverse("project-settings", kwargs={"project_id": people.project.pk})
    assert client.get(url).status_code == 403


def _admin_data(project: Project, **changes) -> dict:
    project.refresh_from_db()
    data = {
        "name": project.name, "description": project.description, "labels": json.dumps(project.labels),
        "overlap_k": project.overlap_k, "lease_minutes": project.lease_minutes,
        "train_percent": project.train_percent, "val_percent": project.val_percent,
        "test_percent": project.test_percent, "split_seed": project.split_seed,
        "conditions": json.dumps(project.conditions), "gold_rate": project.gold_rate,
        "gold_pause_after": project.gold_pause_after, "gold_min_f1": project.gold_min_f1,
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0,
        "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000,
    }  # fmt: skip
    for name, value in changes.items():
        data[name] = json.dumps(value) if isinstance(value, list | dict) else value
    return data


@pytest.mark.parametrize(("change", "field"), REFUSED)
def test_each_invariant_is_refused_in_django_admin(admin_client, busy, change, field):
    url = reverse("admin:projects_project_change", args=[busy.project.pk])
    before = _settings(busy.project)
    response = admin_client.post(url, _admin_data(busy.project, **change))
    assert response.status_code == 400
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert _settings(busy.project) == before


def test_django_admin_saves_through_the_service(admin_client, busy):
    url = reverse("admin:projects_project_change", args=[busy.project.pk])
    response = admin_client.post(url, _admin_data(busy.project, gold_rate=0.3, overlap_k=4))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert (_settings(busy.project)["gold_rate"], _settings(busy.project)["overlap_k"]) == (0.3, 4)
