"""POST /api/v1/predict/batch/: many stored images predicted by a real worker on the
`inference` queue, polled by the caller; bad batches refused with nothing queued."""

import uuid

import pytest

from serving.cache import cache_clear
from serving.models import JobState, PredictionJob, PredictionLog
from serving.services import api_client_create
from tests.serving.conftest import register_model
from tests.training.conftest import trainable_project
from tests.workers import start_worker, stop_worker, wait_for
from training.models import ModelStage


@pytest.mark.worker
def test_a_batch_is_predicted_by_the_inference_worker(transactional_db, api_client, tiny_onnx, settings, tmp_path):
    cache_clear()
    trainable = trainable_project(images=8, name="Batch")
    champion = register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
    client, token = api_client_create(name="fleet", projects=[trainable.project], user=None)
    worker = start_worker(
        "inference",
        f"pytest-inference-{uuid.uuid4().hex[:8]}",
        env={"QUORUM_MODEL_CACHE_DIR": str(tmp_path / "cache")},
    )
    try:
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        image_ids = list(trainable.project.images.order_by("pk").values_list("pk", flat=True)[:5])
        response = api_client.post("/api/v1/predict/batch/", {"image_ids": image_ids, "conf": 0.01}, format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]

        done = wait_for(lambda: PredictionJob.objects.filter(pk=job_id, state=JobState.DONE).first(), worker)

        body = api_client.get(f"/api/v1/predict/batch/{job_id}/").json()
        assert body["state"] == "done" and body["done"] == 5 == len(body["results"])
        assert [result["image_id"] for result in body["results"]] == image_ids
        assert all(result["model"]["id"] == champion.pk and result["boxes"] for result in body["results"])
        assert done.finished_at is not None
        rows = wait_for(lambda: PredictionLog.objects.filter(client=client, status=200).count() == 5 or None, worker)
        assert rows
    finally:
        stop_worker(worker)
        cache_clear()


@pytest.mark.django_db
def test_bad_batches_are_refused_and_jobs_are_private(api_client, served, django_capture_on_commit_callbacks):
    trainable, _, _ = served
    elsewhere = trainable_project(images=4, name="Other")
    api_client.force_authenticate(trainable.reviewer)
    with django_capture_on_commit_callbacks() as callbacks:
        assert api_client.post("/api/v1/predict/batch/", {"image_ids": []}, format="json").status_code == 400
        foreign = elsewhere.project.images.first().pk
        response = api_client.post("/api/v1/predict/batch/", {"image_ids": [foreign]}, format="json")
        assert response.status_code == 404
        assert api_client.post("/api/v1/predict/batch/", {"image_ids": "all"}, format="json").status_code == 400
        api_client.force_authenticate(trainable.annotator)  # sees the images; may not ask the models
        mine = [trainable.project.images.first().pk]
        assert api_client.post("/api/v1/predict/batch/", {"image_ids": mine}, format="json").status_code == 403
        api_client.force_authenticate(trainable.reviewer)
    assert not PredictionJob.objects.exists() and callbacks == []

    mine = trainable.project.images.first().pk
    job_id = api_client.post("/api/v1/predict/batch/", {"image_ids": [mine]}, format="json").json()["id"]
    assert api_client.get(f"/api/v1/predict/batch/{job_id}/").json()["state"] == "queued"
    api_client.force_authenticate(trainable.admin)
    assert api_client.get(f"/api/v1/predict/batch/{job_id}/").status_code == 404
