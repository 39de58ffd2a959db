"""The data pages: upload (files and zip), gallery and split report, by role."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.models import Image
from tests import images

pytestmark = pytest.mark.django_db


def test_upload_page_stores_files_with_chosen_conditions_and_lists_results(client, people):
    client.force_login(people.project_admin)
    url = reverse("project-image-upload", kwargs={"project_id": people.project.pk})
    assert client.get(url).status_code == 200
    files = [
        SimpleUploadedFile("a.jpg", images.image_bytes(seed=1)),
        SimpleUploadedFile("b.jpg", images.truncated_jpeg()),
    ]
    response = client.post(url, {"files": files, "condition_weather": "rain", "condition_setting": ""})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 stored, 0 duplicates, 1 refused." in html
    assert "The image could not be decoded" in html
    assert Image.objects.get().conditions == {"weather": "rain"}
    # the chosen value stays selected for the next batch
    assert '<option value="rain" selected>' in html


def test_upload_page_takes_a_zip(client, people):
    client.force_login(people.project_admin)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("x/1.png", images.image_bytes("PNG", seed=5))
    url = reverse("project-image-upload", kwargs={"project_id": people.project.pk})
    response = client.post(url, {"archive": SimpleUploadedFile("set.zip", buffer.getvalue())})
    assert "1 stored" in response.content.decode()
    assert Image.objects.get().original_name == "x/1.png"


def test_upload_page_with_both_files_and_a_zip_uploads_neither(client, people):
    client.force_login(people.project_admin)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("x/1.png", images.image_bytes("PNG", seed=5))
    response = client.post(
        reverse("project-image-upload", kwargs={"project_id": people.project.pk}),
        {"archive": SimpleUploadedFile("set.zip", buffer.getvalue()),
         "files": [SimpleUploadedFile("a.jpg", images.image_bytes(seed=1))]},
    )  # fmt: skip
    assert response.status_code == 400 and "not both" in response.content.decode()
    assert not Image.objects.exists()


def test_upload_page_without_files_says_what_to_do(client, people):
    client.force_login(people.project_admin)
    response = client.post(reverse("project-image-upload", kwargs={"project_id": people.project.pk}), {})
    assert response.status_code == 400
    assert "Choose image files or a zip archive" in response.content.decode()


@pytest.mark.parametrize(
    ("role", "upload", "gallery", "splits"),
    [
        ("annotator", 403, 403, 403),
        ("reviewer", 403, 200, 200),
        ("project_admin", 200, 200, 200),
        ("staff", 200, 200, 200),
        ("outsider", 404, 404, 404),
    ],
)
def test_data_pages_by_role(client, people, role, upload, gallery, splits):
    client.force_login(getattr(people, role))
    kwargs = {"project_id": people.project.pk}
    assert client.get(reverse("project-image-upload", kwargs=kwargs)).status_code == upload
    assert client.get(reverse("project-images", kwargs=kwargs)).status_code == gallery
    assert client.get(reverse("project-splits", kwargs=kwargs)).status_code == splits


def test_annotators_never_see_splits_on_the_project_page(client, people):
    client.force_login(people.annotator)
    html = client.get(reverse("project-detail", kwargs={"project_id": people.project.pk})).content.decode()
    assert 'id="data"' not in html
    assert "train" not in html.lower()


def test_staff_create_a_project_on_its_page(client, people):
    from projects.models import Project

    client.force_login(people.staff)
    assert client.get(reverse("project-create")).status_code == 200
    response = client.post(
        reverse("project-create"),
        {
            "name": "Dash cams",
            "labels": "pedestrian, cyclist",
            "overlap_k": 5,
            "train_percent": 70,
            "val_percent": 15,
            "test_percent": 15,
            "split_seed": 7,
            "conditions": "camera: dash, pole\nlight: day, night\n",
        },
    )
    project = Project.objects.get(name="Dash cams")
    assert response.status_code == 302 and response["Location"] == reverse(
        "project-detail", kwargs={"project_id": project.pk}
    )
    assert project.labels == ["pedestrian", "cyclist"]
    assert (project.overlap_k, project.train_percent, project.split_seed) == (5, 70, 7)
    assert project.conditions == {"camera": ["dash", "pole"], "light": ["day", "night"]}


def test_project_page_errors_are_shown_and_nothing_is_created(client, people):
    from projects.models import Project

    client.force_login(people.staff)
    base = {"labels": "pedestrian", "overlap_k": 3, "val_percent": 10, "test_percent": 10, "conditions": "w: a"}
    response = client.post(reverse("project-create"), {**base, "name": "Project A", "train_percent": 80})
    assert response.status_code == 400
    assert "A project named &#x27;Project A&#x27; already exists." in response.content.decode()
    response = client.post(reverse("project-create"), {**base, "name": "Odd", "train_percent": 50})
    assert "Split percentages must each be at least 1 and sum to 100." in response.content.decode()
    assert not Project.objects.filter(name="Odd").exists()


@pytest.mark.parametrize("role", ["annotator", "reviewer", "project_admin"])
def test_only_staff_create_projects(client, people, role):
    client.force_login(getattr(people, role))
    assert client.get(reverse("project-create")).status_code == 403
