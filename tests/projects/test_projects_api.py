"""Creating projects through the API: validation, conflicts and the error shape."""

import pytest
from django.urls import reverse

from projects.models import Project

pytestmark = pytest.mark.django_db


def test_staff_creates_a_project_with_defaults(api_client, people):
    api_client.force_login(people.staff)
    response = api_client.post(reverse("api-project-list"), {"name": "  Night walkers "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Night walkers"
    assert body["labels"] == ["pedestrian"]
    assert body["overlap_k"] == 3
    assert body["role"] == "admin"
    assert Project.objects.get(pk=body["id"]).created_by == people.staff


def test_duplicate_name_ignoring_case_is_a_409(api_client, people):
    api_client.force_login(people.staff)
    response = api_client.post(reverse("api-project-list"), {"name": "project a"}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "error": {"status": 409, "code": "duplicate_name", "message": "A project named 'project a' already exists."}
    }
    assert Project.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "X", "overlap_k": 0}, "overlap_k"),
        ({"name": "X", "overlap_k": "three"}, "overlap_k"),
        ({"name": "X", "labels": []}, "labels"),
        ({"name": "X", "labels": ["car", "car"]}, "labels"),
        ({"name": "X", "labels": [" "]}, "labels"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(api_client, people, body, field):
    api_client.force_login(people.staff)
    response = api_client.post(reverse("api-project-list"), body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert Project.objects.count() == 2


def test_unknown_api_path_answers_json_404(api_client, people):
    api_client.force_login(people.staff)
    response = api_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_schema_and_docs_are_served_without_a_cdn(client, db):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/projects/{project_id}/members/" in paths
    assert "/api/v1/auth/token/" in paths
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "https://" not in html and "http://" not in html.replace("http://testserver", "")


def test_project_split_and_condition_settings(api_client, people):
    api_client.force_login(people.staff)
    body = {
        "name": "Custom",
        "train_percent": 70,
        "val_percent": 15,
        "test_percent": 15,
        "split_seed": 99,
        "conditions": {"camera": ["dash", "pole"]},
    }
    response = api_client.post(reverse("api-project-list"), body, format="json")
    assert response.status_code == 201
    project = Project.objects.get(pk=response.json()["id"])
    assert (project.train_percent, project.val_percent, project.test_percent, project.split_seed) == (70, 15, 15, 99)
    assert project.conditions == {"camera": ["dash", "pole"]}
    # defaults: 80/10/10, a random seed and the street vocabulary
    default = api_client.post(reverse("api-project-list"), {"name": "Default"}, format="json").json()
    assert (default["train_percent"], default["val_percent"], default["test_percent"]) == (80, 10, 10)
    assert default["conditions"]["weather"] == ["sun", "overcast", "rain", "night"]
    assert default["conditions"]["resolution"] == ["hd", "low"]


@pytest.mark.parametrize(
    "body",
    [
        {"train_percent": 80, "val_percent": 10, "test_percent": 20},
        {"train_percent": 98, "val_percent": 2, "test_percent": 0},
        {"conditions": {"weather": ["rain", "rain"]}},
        {"conditions": {"weather": []}},
    ],
)
def test_bad_split_or_condition_settings_are_refused(api_client, people, body):
    api_client.force_login(people.staff)
    response = api_client.post(reverse("api-project-list"), {"name": "Bad", **body}, format="json")
    assert response.status_code == 400
    assert not Project.objects.filter(name="Bad").exists()


def test_annotators_are_sent_only_what_drawing_needs(api_client, people):
    detail = reverse("api-project-detail", args=[people.project.pk])
    needed = {"id", "name", "description", "labels", "created_at", "role"}
    api_client.force_login(people.annotator)
    assert set(api_client.get(detail).json()) == needed
    (listed,) = api_client.get(reverse("api-project-list")).json()["results"]
    assert set(listed) == needed  # never overlap_k (how many others label an image), splits or seed
    api_client.force_login(people.reviewer)
    body = api_client.get(detail).json()
    assert body["overlap_k"] == 3 and "split_seed" in body and "conditions" in body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Long", "description": "x" * 5001}, "description"),
        ({"name": "L" * 201}, "name"),
        ({"name": "Labels", "labels": ["p" * 65]}, "labels"),
        ({"name": "Many", "conditions": {f"d{i}": ["a"] for i in range(21)}}, "conditions"),
    ],
)
def test_text_fields_and_lists_have_limits(api_client, people, body, field):
    api_client.force_login(people.staff)
    response = api_client.post(reverse("api-project-list"), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Project.objects.count() == 2


def test_a_page_of_projects_holds_at_most_500(api_client, people):
    Project.objects.bulk_create(Project(name=f"Bulk {i}") for i in range(520))
    api_client.force_login(people.staff)
    body = api_client.get(reverse("api-project-list") + "?limit=100000").json()
    assert body["count"] == 522 and len(body["results"]) == 500
