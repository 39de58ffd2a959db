"""Django admin registers every Quorum model, and each list page works for staff."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

QUORUM_APPS = ["ops", "annotation", "groundtruth", "training", "serving"]

pytestmark = pytest.mark.django_db


def quorum_models():
    return [model for label in QUORUM_APPS for model in apps.get_app_config(label).get_models()]


def test_every_quorum_model_is_registered_with_a_useful_list():
    models = quorum_models()
    assert models, "no models found"
    for model in models:
        assert admin.site.is_registered(model), model
        model_admin = admin.site._registry[model]
        assert model_admin.list_display != ("__str__",), f"{model.__name__} admin has no list_display"
        assert model_admin.list_filter, f"{model.__name__} admin has no list_filter"


@pytest.mark.parametrize("model", quorum_models(), ids=lambda model: model._meta.label)
def test_changelist_and_add_pages_answer_for_staff(admin_client, people, model):
    opts = model._meta
    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
    model_admin = admin.site._registry[model]
    add = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    assert add.status_code == (200 if model_admin.has_add_permission(add.wsgi_request) else 403)


def test_admin_is_staff_only(client, people):
    client.force_login(people.project_admin)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_an_image_becomes_gold_in_admin_only_with_reference_boxes(admin_client, people):
    from datasets.models import Image
    from groundtruth.services import gold_set, gold_unset
    from tests.factories import ImageFactory

    plain, was_gold = ImageFactory(project=people.project), ImageFactory(project=people.project)
    boxes = [{"x1": 10, "y1": 10, "x2": 50, "y2": 120, "label": "pedestrian"}]
    gold_set(image=was_gold, reviewer=people.reviewer, boxes=boxes)
    gold_unset(image=was_gold)

    response = admin_client.post(reverse("admin:datasets_image_change", args=[plain.pk]), {"is_gold": "on"})
    assert response.status_code == 200 and "A gold task needs reference boxes" in response.content.decode()
    assert not Image.objects.get(pk=plain.pk).is_gold
    # with its reference kept from before, it may go back in; and any gold task may be taken out
    url = reverse("admin:datasets_image_change", args=[was_gold.pk])
    assert admin_client.post(url, {"is_gold": "on"}).status_code == 302
    assert Image.objects.get(pk=was_gold.pk).is_gold
    assert admin_client.post(url, {}).status_code == 302
    assert not Image.objects.get(pk=was_gold.pk).is_gold


def test_an_admin_page_that_shows_a_new_client_token_is_never_stored(admin_client, people):
    response = admin_client.post(
        reverse("admin:serving_apiclient_add"),
        {"name": "gate cam", "rate_limit_per_minute": 60, "is_active": "on", "projects": [people.project.pk]},
        follow=True,
    )
    assert "(shown once, keep it now): qk_" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
