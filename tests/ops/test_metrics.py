"""/metrics for Prometheus: only with the token (off without one), counters that move after a
prediction, a submission and a task, label values from fixed sets, the gauges read from the
database and the broker, and prometheus_client's multiprocess mode under gunicorn and a
prefork Celery worker.

prometheus_client's metrics are process-global, so each test reads what it changed as a
difference (after minus before)."""

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu import Queue
from prometheus_client.parser import text_string_to_metric_families

from annotation.assignments import assignment_lease_next, assignment_submit
from annotation.models import Assignment, AssignmentState
from config.celery import app
from groundtruth.models import ConsensusVersion, ImageConsensus, ImageState
from ops.metrics import HTTP_METHODS, queue_lengths
from ops.tasks import worker_heartbeat_task
from projects.models import Role
from serving.services import api_client_create
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.serving.conftest import register_model
from tests.training.conftest import make_run, trainable_project
from tests.workers import ROOT, database_url_of_this_test_database, stop_worker, wait_for
from training.models import ModelStage, RunState

TOKEN = "metrics-token-for-tests"
Samples = dict[tuple[str, frozenset], float]


def samples_of(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(token: str = TOKEN) -> Samples:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    return samples_of(response.content.decode())


def value(samples: Samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, prefix: str, label: str) -> set[str]:
    return {dict(labels)[label] for name, labels in samples if name.startswith(prefix) and label in dict(labels)}


@pytest.fixture
def metrics_on(settings):
    settings.QUORUM_METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""


# --- The token -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_configured(settings):
    settings.QUORUM_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    # no token value opens it, not even an empty one
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", TOKEN]
)
def test_metrics_refuse_a_missing_or_wrong_token(metrics_on, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.content.decode() == "Send the metrics token: Authorization: Bearer <QUORUM_METRICS_TOKEN>.\n"
    assert b"quorum_" not in response.content


@pytest.mark.django_db
def test_metrics_answer_the_token_in_prometheus_text_format(metrics_on):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-store" in response["Cache-Control"]
    families = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "quorum_http_request_duration_seconds", "quorum_assignment_leases_live", "quorum_images_waiting_for_consensus",
        "quorum_training_runs", "quorum_celery_broker_up", "quorum_celery_queue_length",
    } <= families  # fmt: skip
    # OpenMetrics when the scraper asks for it
    open_metrics = Client().get(
        "/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0"
    )
    assert open_metrics["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.content.decode().endswith("# EOF\n")


# --- Requests: labels from fixed sets --------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_labelled_by_route_name_never_by_what_the_caller_sent(metrics_on, people):
    user_text = f"robert-{uuid.uuid4().hex}"
    client = Client()
    client.force_login(people.annotator)
    before = scrape()

    client.get(f"/{user_text}/?q={user_text}")  # matches no route
    client.get(f"/api/v1/projects/{people.project.pk}/?{user_text}=1")
    client.get(f"/api/v1/projects/{people.other_project.pk}/")  # not theirs: 404, same route
    client.generic(user_text.upper()[:10], "/healthz")  # a method nobody uses: 405
    client.get(f"/static/{user_text}.js")

    after = scrape()
    name = "quorum_http_request_duration_seconds_count"
    assert value(after, name, view="unmatched", method="GET", status="4xx") - value(
        before, name, view="unmatched", method="GET", status="4xx"
    ) == 1  # fmt: skip
    assert value(after, name, view="api-project-detail", method="GET", status="2xx") - value(
        before, name, view="api-project-detail", method="GET", status="2xx"
    ) == 1  # fmt: skip
    assert value(after, name, view="api-project-detail", method="GET", status="4xx") - value(
        before, name, view="api-project-detail", method="GET", status="4xx"
    ) == 1  # fmt: skip
    assert value(after, name, view="healthz", method="other", status="4xx") - value(
        before, name, view="healthz", method="other", status="4xx"
    ) == 1  # fmt: skip
    assert value(after, name, view="static", method="GET", status="4xx") - value(
        before, name, view="static", method="GET", status="4xx"
    ) == 1  # fmt: skip
    # nothing the caller typed is a label value anywhere
    for _, labels in after:
        for label_value in dict(labels).values():
            assert "robert" not in label_value.lower(), labels
    prefix = "quorum_http_request_duration_seconds"
    assert label_values(after, prefix, "method") <= HTTP_METHODS | {"other"}
    assert label_values(after, prefix, "status") <= {"1xx", "2xx", "3xx", "4xx", "5xx"}


# --- A prediction ------------------------------------------------------------------------------


@pytest.fixture
def served_camera(db, tiny_onnx, settings, tmp_path, metrics_on):
    """A project whose champion answers, and an API client of it (its id and token)."""
    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    trainable = trainable_project(images=4, name="Metrics")
    champion = register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
    camera, token = api_client_create(name="camera", projects=[trainable.project], user=None)
    return trainable, champion, camera, token


def test_a_prediction_moves_the_counters_of_its_model_and_client(served_camera):
    trainable, champion, camera, token = served_camera
    image = trainable.project.images.order_by("pk").first()
    labels = {"model": str(champion.pk), "client": str(camera.pk), "outcome": "answered"}
    before = scrape()

    api = Client()
    with image.file.open("rb") as stored:
        upload = io.BytesIO(stored.read())
    upload.name = "street.jpg"
    answer = api.post(
        "/api/v1/predict/", {"image": upload, "project": trainable.project.pk}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert answer.status_code == 200, answer.content
    refused = api.post(
        "/api/v1/predict/", {"image_id": image.pk, "model": 999999}, HTTP_AUTHORIZATION=f"Bearer {token}",
        content_type="application/json",
    )  # fmt: skip
    assert refused.status_code == 404

    after = scrape()
    assert value(after, "quorum_predictions_total", **labels) - value(before, "quorum_predictions_total", **labels) == 1
    count = "quorum_prediction_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 1
    seconds = "quorum_prediction_duration_seconds_sum"
    assert value(after, seconds, **labels) - value(before, seconds, **labels) == pytest.approx(
        answer.json()["latency_ms"] / 1000, abs=0.001
    )
    refused_labels = {"model": "none", "client": str(camera.pk), "outcome": "refused"}
    assert (
        value(after, "quorum_predictions_total", **refused_labels)
        - value(before, "quorum_predictions_total", **refused_labels)
        == 1
    )
    # model and client labels are database ids (or two fixed words), never names
    assert all(key.isdigit() or key == "none" for key in label_values(after, "quorum_prediction", "model"))
    assert all(key.isdigit() or key == "person" for key in label_values(after, "quorum_prediction", "client"))
    assert "camera" not in str(after)


# --- A submission --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_submission_moves_the_annotations_counter_once_committed(
    metrics_on, people, api_client, django_capture_on_commit_callbacks
):
    ImageFactory(project=people.project, width=200, height=100)
    assignment = assignment_lease_next(project=people.project, user=people.annotator)
    labels = {"kind": "submission", "source": "panel"}
    before = scrape()
    url = reverse("api-assignment-submit", kwargs={"assignment_id": assignment.pk})
    boxes = {"boxes": [{"x1": 10.0, "y1": 20.0, "x2": 40.0, "y2": 90.0, "label": "pedestrian"}]}
    api_client.force_login(people.annotator)

    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post(url, boxes, format="json").status_code == 201
    middle = scrape()
    with django_capture_on_commit_callbacks(execute=True):  # the same boxes again: a retried request
        assert api_client.post(url, boxes, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # bad boxes: refused, nothing written
        assert api_client.post(url, {"boxes": [{"x1": 5}]}, format="json").status_code == 400
    after = scrape()

    name = "quorum_annotations_recorded_total"
    assert value(middle, name, **labels) - value(before, name, **labels) == 1
    assert value(after, name, **labels) == value(middle, name, **labels)


@pytest.mark.django_db
def test_a_submission_rolled_back_is_not_counted(metrics_on, people, django_capture_on_commit_callbacks):
    ImageFactory(project=people.project, width=200, height=100)
    assignment = assignment_lease_next(project=people.project, user=people.annotator)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        assignment_submit(assignment=assignment, boxes=[])
        transaction.set_rollback(True)
    assert callbacks == []
    name = "quorum_annotations_recorded_total"
    assert value(scrape(), name, kind="submission", source="panel") == value(
        before, name, kind="submission", source="panel"
    )


# --- Celery tasks ----------------------------------------------------------------------------------

TASK_LABELS = {"task": "ops.tasks.worker_heartbeat_task", "state": "SUCCESS"}


@pytest.mark.django_db
def test_a_task_run_is_timed_by_its_queue_name_and_state(metrics_on):
    name = "quorum_celery_task_duration_seconds_count"
    labels = {"queue": "default", **TASK_LABELS}  # ops.tasks.* are routed to default
    before = scrape()
    worker_heartbeat_task.apply(kwargs={"sent_at": timezone.now().isoformat()})
    assert value(scrape(), name, **labels) - value(before, name, **labels) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, *, token: str | None = TOKEN) -> tuple[int, str]:
    """(status, body) of a GET without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_serves_the_task_durations_of_its_pool_processes(tmp_path):
    # given a worker with two pool processes, writing to a multiprocess folder, serving on a port
    queue, port = f"pytest-{uuid.uuid4().hex[:12]}", free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url_of_this_test_database(),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics"), "QUORUM_METRICS_TOKEN": TOKEN,
        "QUORUM_WORKER_METRICS_PORT": str(port),
    }  # fmt: skip
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "prefork",
        "--concurrency", "2", "-n", f"{queue}@%h", "--without-mingle", "--without-gossip", "-l", "info",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )  # fmt: skip
    try:
        # when it runs three tasks
        for _ in range(3):
            worker_heartbeat_task.apply_async(kwargs={"sent_at": timezone.now().isoformat()}, queue=queue)
        # a queue outside CELERY_TASK_QUEUES is "other": a queue name is never taken as it comes
        labels = {"queue": "other", **TASK_LABELS}

        def durations():
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            except OSError:  # not listening yet
                return None
            count = value(samples_of(body), "quorum_celery_task_duration_seconds_count", **labels)
            return (status, count) if count >= 3 else None

        # then its main process serves the three, whichever pool process ran them
        assert wait_for(durations, process, what="three task durations on the worker's /metrics") == (200, 3)
        status, body = http_get(f"http://127.0.0.1:{port}/metrics", token=None)
        assert (status, body) == (401, "Send the metrics token: Authorization: Bearer <QUORUM_METRICS_TOKEN>.\n")
        assert http_get(f"http://127.0.0.1:{port}/metrics", token="wrong")[0] == 401
    finally:
        stop_worker(process)


@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_add_up_in_one_scrape_and_an_earlier_runs_files_go(tmp_path):
    # given a folder with a file left by an earlier run, and gunicorn on it with the project's
    # settings file: two workers, each replaced after 4 requests, so that several processes answer
    folder = tmp_path / "web-metrics"
    folder.mkdir()
    (folder / "histogram_1.db").write_bytes(b"left by an earlier run")
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url_of_this_test_database(), "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "QUORUM_METRICS_TOKEN": TOKEN,
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--max-requests", "4", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
        assert not (folder / "histogram_1.db").exists()
        # when 12 requests are answered (by at least three processes, two of them gone since)
        for _ in range(12):
            assert http_get(f"http://127.0.0.1:{port}/favicon.ico", token=None)[0] == 302
        # then any worker's scrape counts all 12
        for _ in range(3):
            status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200, body
            labels = {"view": "ops.views.favicon", "method": "GET", "status": "3xx"}
            assert value(samples_of(body), "quorum_http_request_duration_seconds_count", **labels) == 12
        assert len(list(folder.glob("histogram_*.db"))) >= 3
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# --- Gauges read at scrape time ---------------------------------------------------------------------


@pytest.mark.django_db
def test_leases_live_count_only_leases_not_yet_finished_or_expired(metrics_on):
    project = ProjectFactory()
    images = ImageFactory.create_batch(4, project=project)
    annotator = MembershipFactory(project=project, role=Role.ANNOTATOR).user
    now = timezone.now()
    before = value(scrape(), "quorum_assignment_leases_live")

    def lease(image, expires_in: timedelta, state=AssignmentState.LEASED):
        Assignment.objects.create(
            image=image, annotator=annotator, state=state, leased_at=now - timedelta(hours=1),
            lease_expires_at=now + expires_in,
        )  # fmt: skip

    lease(images[0], timedelta(minutes=10))
    lease(images[1], timedelta(minutes=-1))  # ran out, not yet marked expired
    lease(images[2], timedelta(minutes=10), AssignmentState.SUBMITTED)
    lease(images[3], timedelta(minutes=10), AssignmentState.SKIPPED)
    assert value(scrape(), "quorum_assignment_leases_live") - before == 1
    Assignment.objects.create(
        image=images[0], annotator=UserFactory(), leased_at=now, lease_expires_at=now + timedelta(minutes=5)
    )
    assert value(scrape(), "quorum_assignment_leases_live") - before == 2


@pytest.mark.django_db
def test_training_runs_are_counted_by_state_every_state_named(metrics_on):
    trainable = trainable_project(images=2, name="Gauges")
    before = scrape()
    for state in (RunState.RUNNING, RunState.RUNNING, RunState.FAILED, RunState.QUEUED):
        make_run(trainable, state=state)
    after = scrape()
    assert {
        state: value(after, "quorum_training_runs", state=state) - value(before, "quorum_training_runs", state=state)
        for state in RunState.values
    } == {"queued": 1, "running": 2, "succeeded": 0, "failed": 1, "cancelled": 0}
    assert label_values(after, "quorum_training_runs", "state") == set(RunState.values)


@pytest.mark.django_db
def test_images_waiting_for_consensus_until_the_current_version_has_them(metrics_on):
    def waiting() -> dict[str, float]:
        samples = scrape()
        return {
            reason: value(samples, "quorum_images_waiting_for_consensus", reason=reason)
            for reason in ("no_current_version", "not_in_current_version")
        }

    before = waiting()

    def added() -> dict[str, float]:
        return {reason: count - before[reason] for reason, count in waiting().items()}

    project = ProjectFactory(overlap_k=2)
    complete = ImageFactory(project=project, submitted_count=2)
    ImageFactory(project=project, submitted_count=1)  # still waits for its annotators, not for consensus
    assert added() == {"no_current_version": 1, "not_in_current_version": 0}
    version = ConsensusVersion.objects.create(project=project, number=1, code_version="test", is_current=True)
    assert added() == {"no_current_version": 0, "not_in_current_version": 1}
    ImageConsensus.objects.create(version=version, image=complete, state=ImageState.AUTO_ACCEPTED, annotators=2)
    assert added() == {"no_current_version": 0, "not_in_current_version": 0}


@pytest.mark.django_db
def test_queue_lengths_are_read_from_the_broker(metrics_on, settings):
    # given a queue of this test's own, named in CELERY_TASK_QUEUES, with three messages
    queue = f"pytest-metrics-{uuid.uuid4().hex[:12]}"
    settings.CELERY_TASK_QUEUES = [Queue(queue)]
    try:
        for _ in range(3):
            worker_heartbeat_task.apply_async(queue=queue)
        # when Prometheus scrapes, then the broker's count is reported
        samples = scrape()
        assert value(samples, "quorum_celery_broker_up") == 1
        assert value(samples, "quorum_celery_queue_length", queue=queue) == 3
        assert label_values(samples, "quorum_celery_queue_length", "queue") == {queue}
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)


@pytest.mark.django_db
def test_a_broker_that_does_not_answer_is_reported_and_the_rest_still_answers(metrics_on, settings, monkeypatch):
    settings.HEALTHZ_BROKER_TIMEOUT_SECONDS = 0.5
    # Celery reads CELERY_BROKER_URL from the environment first; nothing listens on this port
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    families = {family.name for family in queue_lengths()}
    assert families == {"quorum_celery_broker_up"}
    samples = scrape()
    assert value(samples, "quorum_celery_broker_up") == 0
    assert not label_values(samples, "quorum_celery_queue_length", "queue")
    assert ("quorum_assignment_leases_live", frozenset()) in samples


# --- The Grafana dashboard ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_grafana_dashboard_reads_every_metric_quorum_exposes_and_no_other(metrics_on):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    exposed = {
        family.name: {family.name + suffix for suffix in suffixes[family.type]}
        for family in text_string_to_metric_families(response.content.decode())
        if family.name.startswith("quorum_")
    }
    dashboard = json.loads((ROOT / "docs" / "grafana-quorum.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expression in expressions for name in re.findall(r"\bquorum_[a-z0-9_]+", expression)}
    assert used <= set().union(*exposed.values()), used - set().union(*exposed.values())
    assert {family for family, names in exposed.items() if not names & used} == set()
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"] if "targets" in panel)
