"""Training through a real Celery worker (Redis in CI): a run from the API to a registered,
evaluated model; a worker killed mid-epoch; a cancelled run."""

import hashlib
import os
import signal
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from ops.models import WorkerHeartbeat
from tests.training.conftest import QUICK_RUN, trainable_project
from tests.workers import start_worker, stop_worker, wait_for
from training.models import FINISHED_RUN_STATES, ModelStage, ModelVersion, RunState, TestSetLook, TrainingRun
from training.starter import starter_register
from training.tasks import training_runs_reap_task

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_env(settings, tmp_path) -> dict[str, str]:
    settings.QUORUM_TRAINING_DIR = tmp_path / "training"
    return {
        "QUORUM_TRAINING_DIR": str(settings.QUORUM_TRAINING_DIR),
        "QUORUM_TRAINING_HEARTBEAT_SECONDS": "1",
    }


@pytest.fixture
def training_worker(transactional_db, worker_env):
    process = start_worker("training", f"pytest-training-{uuid.uuid4().hex[:8]}", env=worker_env)
    yield process
    stop_worker(process)


def start_run(client, project, admin, **settings) -> TrainingRun:
    client.force_authenticate(admin)
    response = client.post(f"/api/v1/projects/{project.pk}/training-runs/", {**QUICK_RUN, **settings}, format="json")
    assert response.status_code == 202, response.content
    return TrainingRun.objects.get(pk=response.json()["id"])


def finished(run: TrainingRun) -> TrainingRun | None:
    return TrainingRun.objects.filter(pk=run.pk, state__in=FINISHED_RUN_STATES).first()


def sha256_of(name: str) -> str:
    with default_storage.open(name, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def test_a_run_trains_evaluates_and_registers_a_model(training_worker, api_client):
    # given a project with ground truth and an admin who starts a quick run from the API,
    # from the starter checkpoint: a model that detects, so that the two scorers have
    # something to disagree about
    trainable = trainable_project()
    starter = starter_register()
    run = start_run(api_client, trainable.project, trainable.admin, init="base", base_weights=starter.pk)

    # when the worker has run it
    done = wait_for(lambda: finished(run), training_worker, seconds=240, what="finished training run")

    # then it succeeded, with every epoch recorded as it went
    assert done.state == RunState.SUCCEEDED, (done.error, done.log_tail[-2000:])
    assert done.epoch == 3 and [h["epoch"] for h in done.history] == [1, 2, 3]
    for entry in done.history:
        assert {"box_loss", "cls_loss"} <= set(entry["losses"]) and entry["map50"] is not None
        assert entry["elapsed"] > 0 and entry["lr"] is not None
    assert [h["elapsed"] for h in done.history] == sorted(h["elapsed"] for h in done.history)
    assert done.attempts == 1 and done.train_images == done.snapshot.images["train"]
    assert done.train_seconds > 0 and done.images_per_second > 0
    assert "Ultralytics" in done.log_tail

    # and a model version with weights and ONNX in storage, each matching its sha256
    model = ModelVersion.objects.get(run=done)
    assert model.stage == ModelStage.CANDIDATE and model.imgsz == 160 and model.number == 1
    assert model.consensus_version_id == trainable.version.pk and model.snapshot_id == done.snapshot_id
    assert sha256_of(model.weights) == model.weights_sha256 and model.weights.endswith(".pt")
    assert sha256_of(model.onnx) == model.onnx_sha256 and model.onnx.endswith(".onnx")
    assert model.latency_ms > 0

    # evaluated by Quorum's evaluator on the val split
    evaluation = model.evaluation
    assert evaluation["source"] == "boxes.metrics" and evaluation == done.evaluation
    val_images = done.snapshot.images["val"]
    assert evaluation["images"] == val_images and evaluation["pedestrians"] > 0
    assert set(evaluation["coco"]) == {"ap", "ap50", "ap75", "aps", "apm", "apl", "ar1", "ar10", "ar100"}
    assert evaluation["human"]["annotators"] == 3 and evaluation["human"]["gap"]["recall_gap"] is not None
    assert [row["height"] for row in evaluation["by_height"]] == ["<50", "50-100", ">=100"]
    # Three epochs from the starter give a detector: both scorers see it find pedestrians.
    # They differ by construction (ultralytics validates on the snapshot's masked images,
    # letterboxed in rectangular batches, and matches by IoU rather than by score; Quorum
    # predicts on the stored originals with ignore regions as crowds), so they are compared
    # within 0.1 here; test_evaluation.py checks the two metric codes on identical
    # detections to 0.02.
    assert evaluation["coco"]["ap50"] >= 0.3 and done.ultralytics_metrics["map50"] >= 0.3, evaluation["coco"]
    assert abs(evaluation["coco"]["ap50"] - done.ultralytics_metrics["map50"]) <= 0.1

    # the working folder is gone; the run page and the API show the run
    assert not (Path(settings.QUORUM_TRAINING_DIR) / f"run-{done.pk}").exists()
    api_client.force_authenticate(trainable.reviewer)
    body = api_client.get(f"/api/v1/training-runs/{done.pk}/").json()
    assert body["state"] == "succeeded" and body["model_version"] == model.pk and len(body["history"]) == 3

    # when a reviewer promotes it (the first model: nothing to beat)
    response = api_client.post(f"/api/v1/models/{model.pk}/promote/", {}, format="json")
    assert response.status_code == 200, response.content
    # then it is the champion, and the worker scores the test split once, logged
    look = wait_for(
        lambda: TestSetLook.objects.filter(model=model).exclude(figures={}).first(),
        training_worker,
        what="test-set evaluation",
    )
    assert look.looked_by == trainable.reviewer and look.reason.startswith("promotion")
    assert look.figures["images"] == trainable.project.images.filter(split="test").count()
    model.refresh_from_db()
    assert model.stage == ModelStage.CHAMPION and model.test_evaluation["look"] == look.pk
    assert TestSetLook.objects.filter(model=model).count() == 1


def trainer_processes(run: TrainingRun) -> list[int]:
    """Pids of trainer subprocesses of `run` still alive on this machine."""
    marker = f"run-{run.pk}/spec.json"
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "training.trainer" in command and marker in command:
                pids.append(int(entry.name))
    return pids


def test_a_worker_killed_mid_epoch_leaves_a_run_that_resumes(transactional_db, worker_env, api_client, settings):
    trainable = trainable_project()
    first = start_worker("training", f"pytest-doomed-{uuid.uuid4().hex[:8]}", env=worker_env)
    run = start_run(api_client, trainable.project, trainable.admin, epochs=5)
    wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, epoch__gte=1).first(), first, seconds=240, what="epoch 1")

    # when the worker is killed mid-epoch, without a chance to say anything
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    # then its trainer dies with it, and the run still says "running"...
    deadline = time.monotonic() + 20
    while trainer_processes(run) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert trainer_processes(run) == []
    run.refresh_from_db()
    assert run.state == RunState.RUNNING and run.attempts == 1

    # ...until the reaper sees its heartbeat go stale and sends it again
    settings.QUORUM_TRAINING_STALE_SECONDS = 3
    time.sleep(3.5)
    assert training_runs_reap_task()["retried"] == [run.pk]  # the beat task: settled, then sent again
    assert TrainingRun.objects.get(pk=run.pk).state == RunState.QUEUED

    second = start_worker("training", f"pytest-heir-{uuid.uuid4().hex[:8]}", env=worker_env)
    try:
        done = wait_for(lambda: finished(run), second, seconds=240, what="the resumed run's end")
    finally:
        stop_worker(second)
    assert done.state == RunState.SUCCEEDED, (done.error, done.log_tail[-2000:])
    assert done.attempts == 2
    assert [h["epoch"] for h in done.history] == [1, 2, 3, 4, 5]
    # resumed, not restarted: the first attempt's epochs stay, the second went on from them
    attempts = [h["attempt"] for h in done.history]
    assert attempts[0] == 1 and attempts[-1] == 2 and attempts == sorted(attempts)
    assert ModelVersion.objects.filter(run=done).exists()


def test_a_run_that_keeps_losing_its_worker_ends_failed_worker_lost(db, settings):
    trainable = trainable_project(images=8)
    from training.snapshots import snapshot_create

    snapshot = snapshot_create(version=trainable.version, user=None)
    run = TrainingRun.objects.create(
        project=trainable.project, number=1, snapshot=snapshot, state=RunState.RUNNING, attempts=3,
        heartbeat_at=timezone.now() - timedelta(minutes=10), worker="gone@host",
    )  # fmt: skip
    settings.QUORUM_TRAINING_MAX_ATTEMPTS = 3
    assert training_runs_reap_task()["failed"] == [run.pk]
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.error.startswith("Worker lost") and run.finished_at


def test_a_cancelled_run_stops_within_one_epoch_and_frees_the_worker(training_worker, api_client):
    trainable = trainable_project()
    run = start_run(api_client, trainable.project, trainable.admin, epochs=100, patience=100)
    wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, epoch__gte=1).first(), training_worker, what="epoch 1")

    response = api_client.post(f"/api/v1/training-runs/{run.pk}/cancel/")
    assert response.status_code == 202
    epoch_at_cancel = TrainingRun.objects.get(pk=run.pk).epoch

    done = wait_for(lambda: finished(run), training_worker, seconds=60, what="the cancelled run's end")
    assert done.state == RunState.CANCELLED and done.finished_at is not None
    assert done.epoch <= epoch_at_cancel + 1 < 100
    assert not ModelVersion.objects.filter(run=done).exists()
    assert trainer_processes(done) == []

    # the worker takes the next task on its queue
    from ops.tasks import worker_heartbeat_task

    worker_heartbeat_task.apply_async(queue="training")
    assert wait_for(lambda: WorkerHeartbeat.objects.filter(queue="training").first(), training_worker, seconds=30)
