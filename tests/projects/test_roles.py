"""The role table of DESIGN.md: what each role's home page shows, and which API endpoints
answer 200 / 201 / 204 / 401 / 403 / 404 to whom. Later issues add their rows here."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.ingest import IncomingImage, image_ingest_one
from datasets.models import Image
from projects.models import Membership, Role
from tests import images
from tests.storage import served

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "outsider", "annotator", "reviewer", "project_admin", "staff"]


def login(client, people, role):
    if role != "anonymous":
        client.force_login(getattr(people, role))


# (method, url name, url kwargs from people, body, expected status per role)
# url kwargs: "project" is project A, where annotator / reviewer / project_admin are members;
# the outsider is only a member of project B.
API_TABLE = [
    ("get", "api-me", {}, None, dict(anonymous=401, outsider=200, annotator=200, reviewer=200, project_admin=200, staff=200)),
    ("get", "api-project-list", {}, None, dict(anonymous=401, outsider=200, annotator=200, reviewer=200, project_admin=200, staff=200)),
    ("post", "api-project-list", {}, {"name": "New"}, dict(anonymous=401, outsider=403, annotator=403, reviewer=403, project_admin=403, staff=201)),
    ("get", "api-project-detail", {"project": True}, None, dict(anonymous=401, outsider=404, annotator=200, reviewer=200, project_admin=200, staff=200)),
    ("get", "api-membership-list", {"project": True}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=200, project_admin=200, staff=200)),
    ("post", "api-membership-list", {"project": True}, "new-member", dict(anonymous=401, outsider=404, annotator=403, reviewer=403, project_admin=201, staff=201)),
    ("put", "api-membership-detail", {"project": True, "member": "annotator"}, {"role": "reviewer"}, dict(anonymous=401, outsider=404, annotator=403, reviewer=403, project_admin=200, staff=200)),
    ("delete", "api-membership-detail", {"project": True, "member": "annotator"}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=403, project_admin=204, staff=204)),
    ("get", "api-project-images", {"project": True}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=200, project_admin=200, staff=200)),
    ("post", "api-project-images", {"project": True}, "image-upload", dict(anonymous=401, outsider=404, annotator=403, reviewer=403, project_admin=201, staff=201)),
    ("post", "api-project-images-zip", {"project": True}, "zip-upload", dict(anonymous=401, outsider=404, annotator=403, reviewer=403, project_admin=201, staff=201)),
    ("get", "api-project-export", {"project": True, "query": {"format": "coco"}}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=200, project_admin=200, staff=200)),
    ("post", "api-project-import", {"project": True}, "coco-import", dict(anonymous=401, outsider=404, annotator=403, reviewer=403, project_admin=201, staff=201)),
    ("post", "api-next-task", {"project": True}, None, dict(anonymous=401, outsider=404, annotator=204, reviewer=409, project_admin=409, staff=409)),
    ("get", "api-split-report", {"project": True}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=200, project_admin=200, staff=200)),
    ("get", "api-image-thumbnail", {"image": True}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=404, project_admin=404, staff=404)),
    ("get", "api-image-detail", {"image": True}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=200, project_admin=200, staff=200)),
    ("get", "api-image-file", {"image": True}, None, dict(anonymous=401, outsider=404, annotator=403, reviewer=200, project_admin=200, staff=200)),
]  # fmt: skip


def _url(people, name, kwargs):
    resolved = {}
    if kwargs.get("project"):
        resolved["project_id"] = people.project.pk
    if kwargs.get("member"):
        resolved["user_id"] = getattr(people, kwargs["member"]).pk
    if kwargs.get("image"):
        resolved["image_id"] = _an_image(people).pk
    query = "?" + "&".join(f"{k}={v}" for k, v in kwargs["query"].items()) if kwargs.get("query") else ""
    return reverse(name, kwargs=resolved) + query


def _an_image(people):
    data = images.image_bytes(seed=1)
    upload = IncomingImage(name="a.jpg", file=io.BytesIO(data), size=len(data))
    return Image.objects.get(pk=image_ingest_one(project=people.project, upload=upload, user=None).image_id)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "name", "kwargs", "body", "expected"), API_TABLE, ids=lambda v: str(v)[:30])
def test_api_role_table(api_client, people, role, method, name, kwargs, body, expected):
    # given a person of `role`
    login(api_client, people, role)
    body_format = "json"
    if body == "new-member":
        body = {"user": people.outsider.pk, "role": "annotator"}
    if body == "image-upload":
        body, body_format = {"files": [SimpleUploadedFile("a.jpg", images.image_bytes(seed=2))]}, "multipart"
    if body == "coco-import":
        coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "pedestrian"}]}
        body = {"file": SimpleUploadedFile("c.json", json.dumps(coco).encode()), "format": "coco", "target": "gold"}
        body_format = "multipart"
    if body == "zip-upload":
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("z.jpg", images.image_bytes(seed=3))
        body, body_format = {"archive": SimpleUploadedFile("a.zip", archive.getvalue())}, "multipart"
    # when they call the endpoint
    response = getattr(api_client, method)(_url(people, name, kwargs), body, format=body_format)
    # then the status is the table's, and every error has the Quorum error shape
    assert served(response)[0] == expected[role], response.content  # on S3 an image redirects to the storage
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["status"] == response.status_code
        assert error["message"]


def test_foreign_project_answers_404_exactly_like_a_missing_one(api_client, people):
    api_client.force_login(people.outsider)
    foreign = api_client.get(reverse("api-project-detail", kwargs={"project_id": people.project.pk}))
    missing = api_client.get(reverse("api-project-detail", kwargs={"project_id": 999_999}))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_project_list_is_scoped_to_memberships(api_client, people):
    api_client.force_login(people.annotator)
    names = {p["name"]: p["role"] for p in api_client.get(reverse("api-project-list")).json()["results"]}
    assert names == {"Project A": "annotator"}
    api_client.force_login(people.staff)
    names = {p["name"]: p["role"] for p in api_client.get(reverse("api-project-list")).json()["results"]}
    assert names == {"Project A": "admin", "Project B": "admin"}


# What the home page shows each role: the sections they work in, and none of the others.
HOME_TABLE = {
    "annotator": ({"annotate"}, ["Project A"], ["Project B"]),
    "reviewer": ({"review"}, ["Project A"], ["Project B"]),
    "project_admin": ({"administer"}, ["Project A"], ["Project B", "New project"]),
    "staff": ({"administer"}, ["Project A", "Project B", "New project"], []),
    "outsider": ({"annotate"}, ["Project B"], ["Project A"]),
}
SECTIONS = {"annotate", "review", "administer", "no-projects"}


@pytest.mark.parametrize("role", list(HOME_TABLE))
def test_home_page_shows_each_role_its_work(client, people, role):
    sections, shown, hidden = HOME_TABLE[role]
    login(client, people, role)
    html = client.get(reverse("home")).content.decode()
    for section in SECTIONS:
        assert (f'id="{section}"' in html) == (section in sections), section
    for text in shown:
        assert text in html
    for text in hidden:
        assert text not in html


def test_home_page_of_a_person_without_projects_says_whom_to_ask(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="newcomer"))
    html = client.get(reverse("home")).content.decode()
    assert 'id="no-projects"' in html
    assert "Ask a Quorum admin" in html


def test_anonymous_home_page_redirects_to_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("role", "status", "sees_panel"),
    [("annotator", 200, False), ("reviewer", 200, True), ("project_admin", 200, True), ("staff", 200, True), ("outsider", 404, False)],
)  # fmt: skip
def test_project_page_by_role(client, people, role, status, sees_panel):
    login(client, people, role)
    response = client.get(reverse("project-detail", kwargs={"project_id": people.project.pk}))
    assert response.status_code == status
    html = response.content.decode()
    # annotators work blind: the panel (who else annotates) is not shown to them
    assert ('id="members"' in html) == sees_panel
    assert ("rita" in html) == sees_panel


def test_membership_changes_take_effect(api_client, people):
    # given a project admin
    api_client.force_login(people.project_admin)
    url = reverse("api-membership-list", kwargs={"project_id": people.project.pk})
    # when they add the outsider as a reviewer
    response = api_client.post(url, {"user": people.outsider.pk, "role": "reviewer"}, format="json")
    # then the outsider can now read the project and its panel
    assert response.status_code == 201
    assert Membership.objects.get(project=people.project, user=people.outsider).role == Role.REVIEWER
    api_client.force_login(people.outsider)
    assert api_client.get(url).status_code == 200


def test_adding_an_unknown_user_is_a_400_and_writes_nothing(api_client, people):
    api_client.force_login(people.project_admin)
    url = reverse("api-membership-list", kwargs={"project_id": people.project.pk})
    before = Membership.objects.count()
    response = api_client.post(url, {"user": 987_654, "role": "annotator"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"user": ["No active user with that id."]}
    assert Membership.objects.count() == before
