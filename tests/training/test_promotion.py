"""The promotion rule: a worse candidate is refused with the reason, a better one becomes the
champion and has the test split scored once (logged); an override records its reason; the
latency budget binds; the history of champions is kept."""

import pytest

from serving.state import generation_publish
from tests.training.conftest import make_model
from training.models import ModelStage, PromotionDecision, TestSetLook, TrainingPolicy

pytestmark = pytest.mark.django_db


def promote(api_client, user, model, **body):
    api_client.force_authenticate(user)
    return api_client.post(f"/api/v1/models/{model.pk}/promote/", body, format="json")


def test_a_worse_candidate_is_refused_with_the_reason(api_client, trainable):
    champion = make_model(trainable, ap50=0.60, stage=ModelStage.CHAMPION)
    worse = make_model(trainable, ap50=0.605)  # better, but not by the default margin of 0.01

    response = promote(api_client, trainable.reviewer, worse)

    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "Not better by the margin" in message and "0.6050" in message and "0.6000" in message
    champion.refresh_from_db()
    worse.refresh_from_db()
    assert champion.stage == ModelStage.CHAMPION and worse.stage == ModelStage.CANDIDATE
    decision = PromotionDecision.objects.get(model=worse)
    assert not decision.is_accepted and decision.reason == message and decision.decided_by == trainable.reviewer
    assert not TestSetLook.objects.exists()


def test_a_better_candidate_becomes_champion_and_the_test_set_is_scored_once(
    api_client, trainable, django_capture_on_commit_callbacks
):
    old = make_model(trainable, ap50=0.60, stage=ModelStage.CHAMPION)
    better = make_model(trainable, ap50=0.65)

    with django_capture_on_commit_callbacks() as callbacks:
        response = promote(api_client, trainable.reviewer, better)

    assert response.status_code == 200 and response.json()["is_accepted"] is True
    better.refresh_from_db()
    old.refresh_from_db()
    assert better.stage == ModelStage.CHAMPION and better.promoted_by == trainable.reviewer
    assert old.stage == ModelStage.ARCHIVED
    (look,) = TestSetLook.objects.all()
    assert look.model == better and look.looked_by == trainable.reviewer and "promotion" in look.reason
    # the scoring is sent to a worker after commit (beside the serving state's new generation)
    assert len([callback for callback in callbacks if callback is not generation_publish]) == 1
    body = api_client.get(f"/api/v1/models/{better.pk}/").json()
    assert body["test_looks"] == 1 and body["looks"][0]["reason"] == look.reason
    history = api_client.get(f"/api/v1/projects/{trainable.project.pk}/models/").json()["champions"]
    assert [(row["model_number"], row["previous_champion_number"]) for row in history] == [(better.number, old.number)]


def test_the_first_model_becomes_champion_with_nothing_to_beat(api_client, trainable):
    first = make_model(trainable, ap50=0.1)
    assert promote(api_client, trainable.reviewer, first).status_code == 200
    assert PromotionDecision.objects.get(model=first).reason.startswith("First champion")


def test_an_override_promotes_a_refused_model_and_records_the_reason(api_client, trainable):
    make_model(trainable, ap50=0.60, stage=ModelStage.CHAMPION)
    worse = make_model(trainable, ap50=0.50)

    empty = promote(api_client, trainable.reviewer, worse, override_reason="   ")
    assert empty.status_code == 409  # a blank reason is no override: the rule decides, and refuses

    response = promote(api_client, trainable.reviewer, worse, override_reason="Night recall matters more here.")
    assert response.status_code == 200
    decision = PromotionDecision.objects.filter(model=worse, is_accepted=True).get()
    assert decision.is_override and decision.reason == "Night recall matters more here."
    assert decision.figures["rule"].startswith("Not better by the margin")
    worse.refresh_from_db()
    assert worse.stage == ModelStage.CHAMPION


def test_the_latency_budget_binds(api_client, trainable):
    TrainingPolicy.objects.create(project=trainable.project, latency_budget_ms=20.0)
    slow = make_model(trainable, ap50=0.9, latency_ms=35.0)
    response = promote(api_client, trainable.reviewer, slow)
    assert response.status_code == 409
    assert "35.0 ms per image is over the budget of 20.0 ms" in response.json()["error"]["message"]


def test_a_lower_is_better_metric_compares_the_other_way(api_client, trainable):
    TrainingPolicy.objects.create(project=trainable.project, metric="mr2", margin=0.02)
    make_model(trainable, ap50=0.60, stage=ModelStage.CHAMPION)  # MR-2 0.40
    assert promote(api_client, trainable.reviewer, make_model(trainable, ap50=0.61)).status_code == 409  # 0.39
    assert promote(api_client, trainable.reviewer, make_model(trainable, ap50=0.63)).status_code == 200  # 0.37


def test_a_reviewer_can_ask_for_the_test_set_with_a_reason_and_it_is_logged(api_client, trainable):
    model = make_model(trainable, ap50=0.5)
    api_client.force_authenticate(trainable.reviewer)
    url = f"/api/v1/models/{model.pk}/test-evaluation/"
    assert api_client.post(url, {}, format="json").status_code == 400
    assert not TestSetLook.objects.exists()
    response = api_client.post(url, {"reason": "Checking the night images before the review."}, format="json")
    assert response.status_code == 202
    assert TestSetLook.objects.get().reason == "Checking the night images before the review."
    api_client.force_authenticate(trainable.annotator)
    assert api_client.post(url, {"reason": "curious"}, format="json").status_code == 403
    assert TestSetLook.objects.count() == 1


def test_the_policy_is_read_by_reviewers_and_changed_by_admins(api_client, trainable):
    url = f"/api/v1/projects/{trainable.project.pk}/training-policy/"
    api_client.force_authenticate(trainable.reviewer)
    assert api_client.get(url).json()["metric"] == "ap50"
    assert api_client.patch(url, {"margin": 0.05}, format="json").status_code == 403
    api_client.force_authenticate(trainable.admin)
    response = api_client.patch(url, {"margin": 0.05, "latency_budget_ms": 12.5}, format="json")
    assert response.status_code == 200 and response.json()["latency_budget_ms"] == 12.5
    assert api_client.patch(url, {"margin": -1}, format="json").status_code == 400
    assert api_client.patch(url, {"metric": "vibes"}, format="json").status_code == 400
    assert TrainingPolicy.objects.get(project=trainable.project).margin == 0.05
