"""The project's serving page: its admins make API clients (token shown once), replace a
token, stop a client, and add, edit, switch off and delete routing rules; every id of
another project is a 404, and bad input a 400 that leaves nothing."""

import pytest
from rest_framework.test import APIClient

from serving.models import ApiClient, RoutingRule
from serving.services import api_client_create
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def url_of(project) -> str:
    return f"/projects/{project.pk}/serving/"


def predicts(token: str, image) -> int:
    caller = APIClient()
    caller.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return caller.post("/api/v1/predict/", {"image_id": image.pk}, format="json").status_code


def shown_token(client, project) -> str:
    response = client.get(url_of(project))
    assert "no-store" in response["Cache-Control"]  # the page shows a secret: never kept by a cache
    return response.content.decode().split('<code class="token">', 1)[1].split("</code>", 1)[0]


def test_an_admin_makes_a_client_replaces_its_token_and_stops_it(client, served):
    trainable, _, _ = served
    project, image = trainable.project, trainable.project.images.order_by("pk").first()
    client.force_login(trainable.admin)
    response = client.post(url_of(project), {"action": "client-create", "client-name": "gate cam",
                                             "client-rate_limit_per_minute": 120})  # fmt: skip
    assert response.status_code == 302
    token = shown_token(client, project)
    made = ApiClient.objects.get(name="gate cam")
    assert list(made.projects.all()) == [project] and made.rate_limit_per_minute == 120
    assert made.created_by == trainable.admin and token.startswith("qk_")
    assert '<code class="token">' not in client.get(url_of(project)).content.decode()  # shown once
    assert predicts(token, image) == 200

    client.post(url_of(project), {"action": "client-rotate", "client": made.pk})
    new = shown_token(client, project)
    assert new != token and predicts(token, image) == 401 and predicts(new, image) == 200

    client.post(url_of(project), {"action": "client-toggle", "client": made.pk})
    assert predicts(new, image) == 401
    client.post(url_of(project), {"action": "client-toggle", "client": made.pk})
    assert predicts(new, image) == 200


def test_clients_of_other_projects_are_out_of_reach(client, served):
    trainable, _, _ = served
    project = trainable.project
    elsewhere = ProjectFactory(name="Elsewhere")
    shared, _ = api_client_create(name="shared cam", projects=[project, elsewhere], user=None)
    foreign, _ = api_client_create(name="foreign cam", projects=[elsewhere], user=None)
    client.force_login(trainable.admin)
    page = client.get(url_of(project)).content.decode()
    assert "shared cam" in page and "staff manage it" in page and "foreign cam" not in page
    prefixes = {row.pk: row.token_prefix for row in ApiClient.objects.all()}
    for other in (shared, foreign):
        assert client.post(url_of(project), {"action": "client-rotate", "client": other.pk}).status_code == 404
        assert client.post(url_of(project), {"action": "client-toggle", "client": other.pk}).status_code == 404
    assert client.post(url_of(project), {"action": "client-rotate", "client": "x"}).status_code == 404
    assert {row.pk: row.token_prefix for row in ApiClient.objects.all()} == prefixes
    assert ApiClient.objects.filter(is_active=False).count() == 0


def test_bad_client_input_is_a_400_and_makes_nothing(client, served):
    trainable, _, _ = served
    client.force_login(trainable.admin)
    bad = client.post(url_of(trainable.project), {"action": "client-create", "client-name": "",
                                                  "client-rate_limit_per_minute": -1})  # fmt: skip
    assert bad.status_code == 400 and "This field is required" in bad.content.decode()
    assert client.post(url_of(trainable.project), {"action": "launch"}).status_code == 400
    assert not ApiClient.objects.exists()


def test_an_admin_adds_edits_switches_off_and_deletes_a_rule(client, served):
    trainable, champion, candidate = served
    project, image = trainable.project, trainable.project.images.order_by("pk").first()
    camera, token = api_client_create(name="night cam", projects=[project], user=None)
    client.force_login(trainable.admin)
    rule = {"action": "rule-save", "rule-order": 1, "rule-name": "night to model 2", "rule-is_active": "on",
            "rule-client": camera.pk, "rule-model": candidate.pk, "rule-canary_share": 0}  # fmt: skip
    assert client.post(url_of(project), rule).status_code == 302
    saved = RoutingRule.objects.get(project=project)
    assert (saved.client, saved.model, saved.is_active) == (camera, candidate, True)

    caller = APIClient()
    caller.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = caller.post("/api/v1/predict/", {"image_id": image.pk}, format="json").json()
    assert body["chosen_by"] == "rule" and body["model"]["id"] == candidate.pk

    edit = {**rule, "rule": saved.pk, "rule-name": "night to the champion", "rule-model": ""}
    assert client.post(url_of(project), edit).status_code == 302
    saved.refresh_from_db()
    assert saved.name == "night to the champion" and saved.model is None
    assert RoutingRule.objects.count() == 1  # edited, not added

    client.post(url_of(project), {"action": "rule-toggle", "rule": saved.pk})
    saved.refresh_from_db()
    assert saved.is_active is False
    body = caller.post("/api/v1/predict/", {"image_id": image.pk}, format="json").json()
    assert body["chosen_by"] == "champion" and body["model"]["id"] == champion.pk
    client.post(url_of(project), {"action": "rule-delete", "rule": saved.pk})
    assert not RoutingRule.objects.exists()


def test_bad_rules_are_a_400_and_other_projects_rules_a_404(client, served):
    trainable, _, _ = served
    project = trainable.project
    elsewhere = ProjectFactory(name="Other")
    other_rule = RoutingRule.objects.create(project=elsewhere, order=1, name="theirs")
    client.force_login(trainable.admin)
    base = {"action": "rule-save", "rule-order": 1, "rule-name": "r", "rule-canary_share": 0}
    no_canary = client.post(url_of(project), {**base, "rule-canary_share": 0.3})
    assert no_canary.status_code == 400 and "Name a canary model" in no_canary.content.decode()
    foreign_client, _ = api_client_create(name="not ours", projects=[elsewhere], user=None)
    assert client.post(url_of(project), {**base, "rule-client": foreign_client.pk}).status_code == 400
    assert client.post(url_of(project), {**base, "rule-order": -1}).status_code == 400
    assert RoutingRule.objects.filter(project=project).count() == 0
    for action in ("rule-save", "rule-toggle", "rule-delete"):
        assert client.post(url_of(project), {**base, "action": action, "rule": other_rule.pk}).status_code == 404
    other_rule.refresh_from_db()
    assert other_rule.name == "theirs" and other_rule.is_active
    assert client.get(f"{url_of(project)}?rule={other_rule.pk}").status_code == 404


def test_only_the_projects_admins_and_staff(client, served):
    trainable, _, _ = served
    for who, status in ((trainable.reviewer, 403), (trainable.annotator, 403), (trainable.outsider, 404)):
        client.force_login(who)
        assert client.get(url_of(trainable.project)).status_code == status
        create = {"action": "client-create", "client-name": "sneaky", "client-rate_limit_per_minute": 5}
        assert client.post(url_of(trainable.project), create).status_code == status
    assert not ApiClient.objects.exists()
    admin_elsewhere = MembershipFactory(user__username="admin-elsewhere", role="admin").user
    client.force_login(admin_elsewhere)
    assert client.get(url_of(trainable.project)).status_code == 404
