"""Training runs through the API and the pages: who may do what, bad input refused with
nothing left behind, cancel, the claim that keeps a run from training twice, the reaper,
and the retraining schedule."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from groundtruth.models import ConsensusVersion
from tests.storage import media_files
from tests.training.conftest import QUICK_RUN, make_model, make_run
from training.models import DatasetSnapshot, ModelStage, ModelVersion, RunState, TrainingPolicy, TrainingRun
from training.runner import training_run_execute
from training.services import training_run_create, training_runs_schedule
from training.tasks import training_runs_reap_task, training_runs_schedule_task

pytestmark = pytest.mark.django_db


def runs_url(project) -> str:
    return f"/api/v1/projects/{project.pk}/training-runs/"


# --- who may do what -------------------------------------------------------------------------


def test_an_admin_starts_a_run_on_a_snapshot_of_the_current_version(api_client, trainable):
    api_client.force_authenticate(trainable.admin)
    response = api_client.post(runs_url(trainable.project), QUICK_RUN, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    run = TrainingRun.objects.get(pk=body["id"])
    assert (body["state"], body["number"], body["epochs"], body["imgsz"]) == ("queued", 1, 3, 160)
    assert run.snapshot.consensus_version == trainable.version and run.created_by == trainable.admin
    assert run.init == "scratch" and run.parent_model is None and run.trigger == "manual"
    assert body["consensus_version"] == trainable.version.number


@pytest.mark.parametrize(
    ("who", "list_status", "start_status", "cancel_status"),
    [
        ("annotator", 403, 403, 403),
        ("reviewer", 200, 403, 403),
        ("admin", 200, 202, 202),
        ("outsider", 404, 404, 404),
    ],
)
def test_roles_on_runs(api_client, trainable, who, list_status, start_status, cancel_status):
    run = make_run(trainable)
    api_client.force_authenticate(getattr(trainable, who))
    api_client.force_login(getattr(trainable, who))  # for the pages
    assert api_client.get(runs_url(trainable.project)).status_code == list_status
    assert api_client.get(f"/api/v1/training-runs/{run.pk}/").status_code == list_status
    assert api_client.get(f"/training-runs/{run.pk}/").status_code == list_status
    assert api_client.get(f"/projects/{trainable.project.pk}/training/").status_code == list_status
    assert api_client.post(runs_url(trainable.project), QUICK_RUN, format="json").status_code == start_status
    assert api_client.post(f"/api/v1/training-runs/{run.pk}/cancel/").status_code == cancel_status
    created = TrainingRun.objects.filter(project=trainable.project).count()
    assert created == (2 if start_status == 202 else 1)


@pytest.mark.parametrize(
    ("who", "read_status", "promote_status"),
    [("annotator", 403, 403), ("reviewer", 200, 200), ("admin", 200, 200), ("outsider", 404, 404)],
)
def test_roles_on_models(api_client, trainable, who, read_status, promote_status):
    model = make_model(trainable, ap50=0.5)
    api_client.force_authenticate(getattr(trainable, who))
    api_client.force_login(getattr(trainable, who))
    assert api_client.get(f"/api/v1/projects/{trainable.project.pk}/models/").status_code == read_status
    assert api_client.get(f"/api/v1/models/{model.pk}/").status_code == read_status
    assert api_client.get(f"/models/{model.pk}/").status_code == read_status
    assert api_client.post(f"/api/v1/models/{model.pk}/promote/", {}, format="json").status_code == promote_status
    model.refresh_from_db()
    assert model.stage == (ModelStage.CHAMPION if promote_status == 200 else ModelStage.CANDIDATE)


def test_the_model_page_gives_the_id_the_predict_api_takes(client, trainable):
    model = make_model(trainable, ap50=0.5)
    client.force_login(trainable.reviewer)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert f"<dt>API id</dt><dd><code>{model.pk}</code>" in page


def test_anonymous_gets_nothing(api_client, trainable):
    run = make_run(trainable)
    assert api_client.get(f"/api/v1/training-runs/{run.pk}/").status_code in (401, 403)
    assert api_client.get(f"/training-runs/{run.pk}/").status_code == 302  # to the sign-in page


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"architecture": "yolov8n.pt"}, "architecture", "not a detection .yaml"),
        ({"architecture": "yolo26n-seg.yaml"}, "architecture", "not a detection .yaml"),
        ({"imgsz": 150}, "imgsz", "multiple of 32"),
        ({"imgsz": 16}, "imgsz", "Between 32 and 2048"),
        ({"epochs": 0}, "epochs", "Between 1 and 1000"),
        ({"batch": -1}, "batch", "Between 0 and 512"),
        ({"device": "cuda; rm -rf /"}, "device", "auto, cpu"),
        ({"init": "yesterday"}, "init", "valid choice"),
        ({"epochs": "many"}, "epochs", "valid integer"),
    ],
)
def test_bad_settings_are_refused_with_nothing_left_behind(api_client, trainable, change, field, message):
    api_client.force_authenticate(trainable.admin)
    response = api_client.post(runs_url(trainable.project), {**QUICK_RUN, **change}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"] and message in " ".join(error["fields"][field])
    assert not TrainingRun.objects.exists() and not DatasetSnapshot.objects.exists()
    assert not [name for name in media_files() if name.startswith("snapshots/")]


def test_no_ground_truth_and_no_champion_are_conflicts(api_client, trainable):
    api_client.force_authenticate(trainable.admin)
    response = api_client.post(runs_url(trainable.project), {**QUICK_RUN, "init": "champion"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_champion"
    ConsensusVersion.objects.filter(project=trainable.project).update(is_current=False)
    response = api_client.post(runs_url(trainable.project), QUICK_RUN, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_ground_truth"
    assert not TrainingRun.objects.exists() and not DatasetSnapshot.objects.exists()


def test_a_run_from_the_champion_records_its_parent(trainable):
    champion = make_model(trainable, ap50=0.4, stage=ModelStage.CHAMPION)
    run = training_run_create(project=trainable.project, user=trainable.admin, init="champion", **QUICK_RUN)
    assert run.parent_model == champion and run.init == "champion"


# --- cancel, claim, reaper ----------------------------------------------------------------------


def test_a_queued_run_is_cancelled_at_once_and_a_finished_one_cannot_be(api_client, trainable):
    queued = make_run(trainable)
    api_client.force_authenticate(trainable.admin)
    assert api_client.post(f"/api/v1/training-runs/{queued.pk}/cancel/").json()["state"] == "cancelled"
    queued.refresh_from_db()
    assert queued.state == RunState.CANCELLED and queued.finished_at and queued.cancel_requested_at
    response = api_client.post(f"/api/v1/training-runs/{queued.pk}/cancel/")
    assert response.status_code == 409 and "only a queued or running run" in response.json()["error"]["message"]
    # a worker that gets its message afterwards does not train it
    assert training_run_execute(run_id=queued.pk, worker="late@host") is None


def test_a_running_run_gets_a_cancel_request_for_its_worker(api_client, trainable):
    running = make_run(trainable, state=RunState.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    api_client.force_authenticate(trainable.admin)
    assert api_client.post(f"/api/v1/training-runs/{running.pk}/cancel/").status_code == 202
    running.refresh_from_db()
    assert running.state == RunState.RUNNING and running.cancel_requested_at is not None


def test_a_duplicate_delivery_never_trains_a_live_run_twice(trainable):
    alive = make_run(trainable, state=RunState.RUNNING, heartbeat_at=timezone.now(), attempts=1, worker="a@host")
    assert training_run_execute(run_id=alive.pk, worker="b@host") is None
    alive.refresh_from_db()
    assert (alive.state, alive.attempts, alive.worker) == (RunState.RUNNING, 1, "a@host")


def test_the_reaper_sends_a_stale_run_again_and_leaves_a_live_one(
    trainable, settings, django_capture_on_commit_callbacks
):
    settings.QUORUM_TRAINING_STALE_SECONDS = 60
    stale = make_run(trainable, state=RunState.RUNNING, attempts=1, heartbeat_at=timezone.now() - timedelta(minutes=5))
    live = make_run(trainable, state=RunState.RUNNING, attempts=1, heartbeat_at=timezone.now())
    cancelling = make_run(
        trainable, state=RunState.RUNNING, attempts=1, heartbeat_at=timezone.now() - timedelta(minutes=5),
        cancel_requested_at=timezone.now(),
    )  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        settled = training_runs_reap_task()  # the beat task: the reaper, then the retried runs sent
    assert settled == {"retried": [stale.pk], "failed": [], "cancelled": [cancelling.pk]}
    assert len(callbacks) == 1  # the retried run is sent again
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.state == RunState.QUEUED and "worker lost" in stale.log_tail
    assert live.state == RunState.RUNNING


# --- retraining schedule --------------------------------------------------------------------------


def test_retraining_starts_from_the_champion_once_enough_new_images_exist(
    trainable, django_capture_on_commit_callbacks
):
    champion = make_model(trainable, ap50=0.4, stage=ModelStage.CHAMPION)
    policy = TrainingPolicy.objects.create(project=trainable.project, retrain_min_new_images=3)
    # the champion was trained on a snapshot with 4 fewer train/val images than exist now
    fewer = {**champion.snapshot.images, "train": champion.snapshot.images["train"] - 4}
    DatasetSnapshot.objects.filter(pk=champion.snapshot.pk).update(images=fewer)
    with django_capture_on_commit_callbacks() as callbacks:
        (run_id,) = training_runs_schedule_task()  # the beat task: the new run is sent to a worker
    assert len(callbacks) == 1
    run = TrainingRun.objects.get(pk=run_id)
    assert run.trigger == "schedule" and run.init == "champion" and run.parent_model == champion
    assert (run.imgsz, run.architecture) == (champion.run.imgsz, champion.run.architecture)
    # not twice while one is queued, and not below the threshold
    assert training_runs_schedule() == []
    TrainingRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)
    policy.retrain_min_new_images = 5
    policy.save()
    assert training_runs_schedule() == []


def test_make_run_queues_one_short_demo_training_after_computing_the_ground_truth(db):
    from demo.services import DEMO_TRAINING, demo_training_ensure
    from demo.simulation import panel_simulate
    from demo.synthetic_data import synthetic_images_add
    from projects.models import Project

    project = Project.objects.create(name="Demo", overlap_k=3, split_seed=4)
    synthetic_images_add(project=project, count=16, seed=0, size=(160, 128))
    panel_simulate(project=project, annotators=3, fraction=1.0)
    run = demo_training_ensure(project=project)
    assert run.state == RunState.QUEUED and (run.epochs, run.imgsz) == (DEMO_TRAINING["epochs"], DEMO_TRAINING["imgsz"])
    # from the starter checkpoint, registered as shared base weights, though nobody is signed in
    assert run.init == TrainingRun.Init.BASE and run.base_weights.is_shared and run.created_by is None
    assert run.snapshot.consensus_version.state == "done" and run.snapshot.consensus_version.is_current
    assert run.snapshot.consensus_version.reliability_weighted  # the default for a panel of three
    assert demo_training_ensure(project=project) is None  # once
    assert TrainingRun.objects.filter(project=project).count() == 1


def test_a_run_whose_training_raises_ends_failed_with_the_reason(trainable, settings, tmp_path):
    # given a run whose snapshot lost its label files (storage trouble, a bad restore, ...)
    settings.QUORUM_TRAINING_DIR = tmp_path / "training"
    # the heartbeat thread's own connection cannot see this test's uncommitted run: had it
    # beaten before the trainer failed (5 s, on a loaded machine), it would think the run lost
    settings.QUORUM_TRAINING_HEARTBEAT_SECONDS = 3600
    run = training_run_create(project=trainable.project, user=trainable.admin, **QUICK_RUN)
    for name in default_storage.listdir(f"{run.snapshot.storage_prefix}/images/train")[1]:
        default_storage.delete(f"{run.snapshot.storage_prefix}/images/train/{name}")
    # when a worker runs it (in this process: the task's service)
    done = training_run_execute(run_id=run.pk, worker="here@host")
    # then it ended failed, with ultralytics' reason, and nothing registered
    assert done.state == RunState.FAILED and done.finished_at is not None
    assert done.error.startswith("Training failed:") and "images" in done.error.lower()
    assert not ModelVersion.objects.filter(run=done).exists()
    assert not (tmp_path / "training" / f"run-{run.pk}").exists()
