"""serving/state.py: a process keeps API clients, rules and champions between predictions,
and drops them at the next request after any change, its own or another process's."""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from serving.models import ApiClient, RoutingRule
from serving.services import api_client_create
from serving.state import GENERATION_KEY
from tests.serving.test_predict import post_image, scene_jpeg
from training.models import ModelStage, ModelVersion

pytestmark = pytest.mark.django_db

LOOKUPS = re.compile(r'FROM "(serving_apiclient|serving_routingrule|training_modelversion|annotation_project)"')


@pytest.fixture
def kept(served, settings, api_client):
    """Served, with state kept 60 s, an API client of the project signed in, and one
    answer already given (the state is warm)."""
    settings.QUORUM_SERVING_STATE_SECONDS = 60
    cache.delete(GENERATION_KEY)
    trainable, champion, candidate = served
    client, token = api_client_create(name="camera", projects=[trainable.project], user=None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    data = scene_jpeg(trainable)
    assert post_image(api_client, data).status_code == 200
    return trainable, champion, candidate, client, data


def lookups(api_client, data) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = post_image(api_client, data)
    return response.status_code, [query["sql"] for query in queries if LOOKUPS.search(query["sql"])]


@pytest.mark.parametrize("seconds", [60, 0])
def test_a_warm_process_answers_without_reading_clients_rules_or_models(kept, settings, api_client, seconds):
    *_, data = kept
    settings.QUORUM_SERVING_STATE_SECONDS = seconds
    status, reads = lookups(api_client, data)
    assert status == 200
    if seconds:
        assert reads == []
    else:  # nothing kept: the client, its projects, the project, its rules and champion are read again
        assert len(reads) >= 4


def test_each_change_holds_from_the_next_request(kept, api_client):
    trainable, champion, candidate, client, data = kept

    rule = RoutingRule.objects.create(project=trainable.project, order=1, name="pin 2", model=candidate)
    body = post_image(api_client, data).json()
    assert (body["model"]["id"], body["chosen_by"], body["rule"]["id"]) == (candidate.pk, "rule", rule.pk)

    rule.delete()
    champion.stage = ModelStage.ARCHIVED
    champion.save(update_fields=["stage"])
    candidate.stage = ModelStage.CHAMPION
    candidate.save(update_fields=["stage"])
    body = post_image(api_client, data).json()
    assert (body["model"]["id"], body["chosen_by"]) == (candidate.pk, "champion")

    client.allowed_models.set([champion])
    assert post_image(api_client, data).status_code == 403

    client.is_active = False
    client.save(update_fields=["is_active"])
    assert post_image(api_client, data).status_code == 401


def test_another_processs_change_is_seen_through_the_shared_token(kept, api_client):
    _, champion, candidate, client, data = kept
    # another process promotes model 2: its rows change here with no signal in this process
    ModelVersion.objects.filter(pk=champion.pk).update(stage=ModelStage.ARCHIVED)
    ModelVersion.objects.filter(pk=candidate.pk).update(stage=ModelStage.CHAMPION)
    ApiClient.objects.filter(pk=client.pk).update(rate_limit_per_minute=1000)
    assert post_image(api_client, data).json()["model"]["id"] == champion.pk  # still the kept champion

    cache.set(GENERATION_KEY, "written by the other process's change")

    assert post_image(api_client, data).json()["model"]["id"] == candidate.pk
