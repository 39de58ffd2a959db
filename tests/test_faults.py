"""Faults, against the real services: the broker (a Redis of the test's own) stopped while
annotators submit; the database (a PostgreSQL of the test's own) stopped and started again
under a running gunicorn; a worker killed in the middle of a consensus version."""

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app
from datasets.models import Image
from groundtruth.computing import consensus_version_compute, images_consensus_stalled
from groundtruth.models import (
    AgreementReport,
    Annotation,
    Box,
    ChunkState,
    ConsensusChunk,
    ConsensusVersion,
    ImageConsensus,
    VersionState,
)
from groundtruth.services import consensus_version_create
from groundtruth.tasks import consensus_versions_sweep_task, images_consensus_sweep_task
from projects.models import Role
from tests.conftest import postgres_programs
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory
from tests.workers import ROOT, database_url_of_this_test_database, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A Redis server on a port of its own, that the test stops and starts again."""

    def __init__(self, folder):
        self.port, self.folder, self.process = free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def broker_at(url: str):
    """This process's Celery app sends to `url` (its connection pools made anew), then back."""
    previous = app.conf.broker_write_url  # Celery resolved it from broker_url when it started

    def reset():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_write_url = url
    reset()
    try:
        yield
    finally:
        app.conf.broker_write_url = previous
        reset()


def submit(client: APIClient, user, project) -> None:
    client.force_authenticate(user)
    lease = client.post(f"/api/v1/projects/{project.pk}/next-task/")
    assert lease.status_code == 200, lease.content
    boxes = [{"x1": 10, "y1": 10, "x2": 40, "y2": 90, "label": "pedestrian"}]
    response = client.post(f"/api/v1/assignments/{lease.json()['id']}/submit/", {"boxes": boxes}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.redis_server
def test_with_the_broker_stopped_annotators_still_submit_and_the_sweep_catches_up(tmp_path, settings):
    project = ProjectFactory(name="Broker down", overlap_k=2)
    annotators = [MembershipFactory(project=project, role=Role.ANNOTATOR).user for _ in range(2)]
    image = ImageFactory(project=project)
    version = consensus_version_compute(version_id=consensus_version_create(project=project, user=None).pk)
    assert version.state == VersionState.DONE and version.is_current  # over no image yet
    redis = OwnRedis(tmp_path)
    redis.start()
    with broker_at(redis.url):
        redis.stop()
        client = APIClient()
        for annotator in annotators:  # the k-th submission's update cannot be sent: logged, not raised
            submit(client, annotator, project)
        assert Annotation.objects.filter(image=image).count() == 2  # the database holds the work
        assert not ImageConsensus.objects.filter(image=image).exists()
        settings.QUORUM_CONSENSUS_SWEEP_AFTER_SECONDS = 0
        assert images_consensus_stalled() == [image.pk]

        redis.start()  # the broker is back, and a worker with it
        worker = start_worker("groundtruth", f"faults-{uuid.uuid4().hex[:8]}", env={"CELERY_BROKER_URL": redis.url})
        try:
            assert images_consensus_sweep_task() == 1  # beat's periodic reconciliation
            row = wait_for(lambda: ImageConsensus.objects.filter(image=image, version=version).first(), worker,
                           seconds=60, what="consensus of the image the broker missed")  # fmt: skip
        finally:
            stop_worker(worker)
            redis.stop()
    assert row.annotators == 2 and row.boxes.count() == 1
    assert images_consensus_stalled() == []


GUNICORN_CHECK = "/api/v1/me/"


class OwnPostgres:
    """A PostgreSQL server of the test's own (a new cluster on a port of its own), holding a
    copy of the test database, that the test stops and starts again: the suite's own server
    cannot be restarted under it."""

    def __init__(self):
        self.programs = postgres_programs()
        self.folder = Path(tempfile.mkdtemp(prefix="quorum-own-pg-"))  # not under pytest's root-only tmp
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/quorum"

    def _run(self, program: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = [str(self.programs / program), *args]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, **kwargs)

    def create(self, copy_of: str) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "quorum")
        dump = self._run("pg_dump", "--no-owner", "--no-privileges", "-d", copy_of).stdout
        self._run("psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url, input=dump)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "log")
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.mark.postgres_server
def test_the_web_process_recovers_when_the_database_restarts(people, settings):
    from projects.services import api_token_rotate

    token = api_token_rotate(user=people.reviewer).key
    browser = Client()
    browser.force_login(people.reviewer)
    signed_in_page = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}  # pages read the session table
    database = OwnPostgres()
    port = free_port()
    server = None
    try:
        database.create(copy_of=database_url_of_this_test_database())
        env = {
            "DATABASE_URL": database.url, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # it signs the session cookie
            "CELERY_BROKER_URL": "memory://", "QUORUM_LOG_LEVEL": "CRITICAL", "QUORUM_STATIC_MANIFEST": "0",
            "PATH": "/usr/bin:/bin",
        }  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--worker-class", "gthread", "--threads", "2", "--log-level", "warning"], cwd=ROOT, env=env,
        )  # fmt: skip

        def get(path: str = GUNICORN_CHECK, headers: dict | None = None):
            headers = headers or {"Authorization": f"Token {token}"}
            for _ in range(100):
                try:
                    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    client.request("GET", path, headers=headers)
                    response = client.getresponse()
                    return response.status, dict(response.getheaders()), response.read()
                except ConnectionRefusedError:
                    time.sleep(0.1)
            raise RuntimeError("gunicorn did not answer")

        assert get()[0] == 200
        workers = _children(server.pid)

        database.stop()  # the connection gunicorn keeps between requests is cut, and no new one is taken
        status, headers, body = get()
        assert status == 503, body
        assert headers["Retry-After"] == "5"
        assert json.loads(body)["error"]["code"] == "database_unavailable"
        status, headers, body = get("/", signed_in_page)
        assert status == 503 and b"cannot reach its database" in body

        database.start()
        assert [get()[0] for _ in range(3)] == [200, 200, 200]
        assert get("/", signed_in_page)[0] == 200
        assert _children(server.pid) == workers  # the same worker answered: no restart
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        database.remove()


def _children(pid: int) -> list[int]:
    import psutil

    return sorted(child.pid for child in psutil.Process(pid).children())


def panel_in_bulk(project, *, images: int, annotators: int) -> None:
    """`images` image rows (no files: consensus reads boxes only), each boxed by every one of
    `annotators` with four pedestrians that wobble a little between people."""
    rng = np.random.default_rng(7)
    users = [MembershipFactory(project=project, role=Role.ANNOTATOR).user for _ in range(annotators)]
    rows = Image.objects.bulk_create(
        Image(project=project, sha256=f"{project.pk:08x}{index:056x}", file=f"images/k{index}.jpg",
              original_name=f"k{index}.jpg", format="jpeg", width=1280, height=720, bytes=1, split="train",
              submitted_count=annotators)
        for index in range(images)
    )  # fmt: skip
    annotations = Annotation.objects.bulk_create(
        Annotation(image=image, annotator=user) for image in rows for user in users
    )
    base = rng.uniform(20, 1000, (images, 4, 1))
    boxes = []
    for index, annotation in enumerate(annotations):
        for person in range(4):
            x, y = base[index // annotators, person, 0], 100 + 120 * person
            dx, dy = rng.normal(0, 3, 2)
            boxes.append(Box(annotation=annotation, x1=x + dx, y1=y + dy, x2=x + 40 + dx, y2=y + 100 + dy))
    Box.objects.bulk_create(boxes, batch_size=5000)


def test_a_worker_killed_mid_version_is_carried_on_by_the_sweep(settings):
    """The whole worker dies (a solo pool: no parent left to hand its task back): the
    version stays running and not current, its chunks done so far are kept, and once
    nothing has moved for the queue's hard time limit the sweep sends the rest again."""
    project = ProjectFactory(name="Killed", overlap_k=3, split_seed=3)
    panel_in_bulk(project, images=3000, annotators=3)  # some seconds of work for the worker
    complete = Image.objects.filter(project=project).count()
    environment = {"QUORUM_CONSENSUS_CHUNK_IMAGES": "500"}
    worker = start_worker("groundtruth", f"faults-kill-{uuid.uuid4().hex[:8]}", env=environment)
    try:
        version = consensus_version_create(project=project, user=None)  # sent to the worker after commit
        wait_for(lambda: ConsensusChunk.objects.filter(version=version, index=1, state=ChunkState.RUNNING).exists(),
                 worker, seconds=60, what="the second chunk running")  # fmt: skip
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            stop_worker(worker)
    version.refresh_from_db()
    assert version.state == VersionState.RUNNING and not version.is_current  # it died at work
    assert not AgreementReport.objects.filter(version=version).exists()
    done = ConsensusChunk.objects.filter(version=version, state=ChunkState.DONE)
    assert done.count() >= 1
    kept = set(ImageConsensus.objects.filter(version=version).values_list("image_id", flat=True))
    assert kept == {image_id for chunk in done for image_id in chunk.image_ids}  # whole chunks only
    assert consensus_versions_sweep_task() == 0  # not yet: a chunk may simply be slow

    # past the queue's hard time limit with nothing moving, the sweep sends it again
    _, hard_limit = settings.CELERY_QUEUE_TIME_LIMITS["groundtruth"]
    long_ago = timezone.now() - timedelta(seconds=hard_limit + 60)
    ConsensusVersion.objects.filter(pk=version.pk).update(started_at=long_ago)
    ConsensusChunk.objects.filter(version=version).exclude(started_at=None).update(started_at=long_ago)
    ConsensusChunk.objects.filter(version=version).exclude(finished_at=None).update(finished_at=long_ago)
    worker = start_worker("groundtruth", f"faults-again-{uuid.uuid4().hex[:8]}", env=environment)
    try:
        assert consensus_versions_sweep_task() == 1
        wait_for(lambda: ConsensusVersion.objects.filter(pk=version.pk, state=VersionState.DONE).exists(), worker,
                 seconds=120, what="the version done after the sweep")  # fmt: skip
    finally:
        stop_worker(worker)
    assert ConsensusChunk.objects.get(version=version, index=1).attempts == 2
    assert ConsensusChunk.objects.get(version=version, index=0).attempts == 1  # done before the kill: kept
    assert ImageConsensus.objects.filter(version=version).count() == complete
    assert AgreementReport.objects.filter(version=version).exists()
