"""API clients' rate limit counts images, not requests: a batch of 300 is 300; a client
that may never call gets 403, and a batch over the whole limit a 400 saying so, never a 429
whose Retry-After no wait would satisfy. Refused requests take nothing from the limit."""

import pytest
from django.core.cache import cache

from serving import authentication
from serving.models import PredictionJob, PredictionLog
from serving.services import api_client_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    cache.clear()
    now = [1_800_000_000.0 + 5]  # 5 s into a clock minute
    monkeypatch.setattr(authentication, "_clock", lambda: now[0])
    return now


def as_client(api_client, trainable, rate: int):
    _, token = api_client_create(
        name=f"cam {rate}", projects=[trainable.project], user=None, rate_limit_per_minute=rate
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def batch(api_client, image_ids):
    return api_client.post("/api/v1/predict/batch/", {"image_ids": image_ids}, format="json")


def predict(api_client, image_id):
    return api_client.post("/api/v1/predict/", {"image_id": image_id}, format="json")


def test_each_image_of_a_batch_counts(api_client, served, clock):
    trainable, _, _ = served
    client = as_client(api_client, trainable, rate=5)
    ids = list(trainable.project.images.order_by("pk").values_list("pk", flat=True))
    # three images, then three more: the second batch would make six of five
    assert batch(client, ids[:3]).status_code == 202
    refused = batch(client, ids[3:6])
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 60  # when the first batch leaves the last 60 seconds
    assert PredictionJob.objects.count() == 1
    # the refused batch took nothing: two single predictions still fit (four, five), a third does not
    assert [predict(client, ids[0]).status_code for _ in range(3)] == [200, 200, 429]
    assert PredictionLog.objects.filter(status=429).count() == 1  # the refused prediction, logged
    # 60 seconds on, the window holds none of them
    clock[0] += 60.01
    assert batch(client, ids[:5]).status_code == 202


def test_a_batch_over_the_whole_limit_is_a_400_that_says_so(api_client, served, clock):
    trainable, _, _ = served
    client = as_client(api_client, trainable, rate=4)
    ids = list(trainable.project.images.order_by("pk").values_list("pk", flat=True))[:6]
    response = batch(client, ids)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "over_rate_limit" and "4 images a minute" in error["message"]
    assert not PredictionJob.objects.exists()
    assert batch(client, ids[:4]).status_code == 202  # the refused batch took nothing


def test_a_client_that_may_never_call_gets_403(api_client, served, clock):
    trainable, _, _ = served
    client = as_client(api_client, trainable, rate=0)
    image = trainable.project.images.first()
    for response in (predict(client, image.pk), batch(client, [image.pk])):
        assert response.status_code == 403
        assert "Retry-After" not in response
        assert "limit is 0 images a minute" in response.json()["error"]["message"]
    assert not PredictionJob.objects.exists()
    assert list(PredictionLog.objects.values_list("status", "error")) == [(403, "not_allowed")]


@pytest.mark.parametrize("start", [0.5, 30.0, 59.9])  # seconds into a clock minute
def test_a_client_at_its_rate_waits_whenever_its_window_started(api_client, served, clock, start):
    """No double burst at a minute's edge: the window is the last 60 seconds, not the clock
    minute, so a client that used its whole limit is refused until its images age out."""
    trainable, _, _ = served
    client = as_client(api_client, trainable, rate=4)
    ids = list(trainable.project.images.order_by("pk").values_list("pk", flat=True))
    clock[0] = 1_800_000_000.0 + start
    assert batch(client, ids[:3]).status_code == 202
    clock[0] += 20
    assert predict(client, ids[0]).status_code == 200  # four of four
    clock[0] += 1  # one second on (past the clock minute's edge when it started at 59.9)
    refused = predict(client, ids[0])
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 39  # the batch leaves the window 60 s after it came
    clock[0] += 39.01
    assert predict(client, ids[0]).status_code == 200  # the batch's three left; the single one stays
    assert batch(client, ids[:3]).status_code == 429
    assert PredictionJob.objects.count() == 1
