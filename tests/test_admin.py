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
