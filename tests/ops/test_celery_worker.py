"""A real Celery worker process takes a task from the configured broker (Redis in CI, the
filesystem transport locally) and writes a row to the test database."""

import os
import uuid

import pytest
from django.utils import timezone

from config.celery import QueueTimeLimits, app
from ops.models import WorkerHeartbeat
from ops.tasks import worker_heartbeat_task
from tests.workers import start_worker, stop_worker, wait_for


@pytest.fixture
def worker_queue(transactional_db):
    """A worker process consuming a queue of its own, so no other worker takes its tasks."""
    queue = f"pytest-{uuid.uuid4().hex[:12]}"
    process = start_worker(queue, queue)
    yield queue, process
    stop_worker(process)


@pytest.mark.worker
def test_real_worker_runs_a_task_that_writes_to_the_database(worker_queue):
    queue, process = worker_queue
    assert not app.conf.task_always_eager
    # given a task sent through the broker, as any view or service would send it
    sent_at = timezone.now()
    worker_heartbeat_task.apply_async(kwargs={"sent_at": sent_at.isoformat()}, queue=queue)
    # when the worker process runs it
    row = wait_for(lambda: WorkerHeartbeat.objects.filter(queue=queue).first(), process, what="row")
    # then the row it wrote appears, written by another process
    assert row.pid != os.getpid()
    assert row.sent_at == sent_at
    assert row.hostname.startswith(queue)


@pytest.mark.redis
def test_ci_broker_is_redis():
    # In CI the tests above go through Redis, not the filesystem fallback.
    assert app.conf.broker_url.startswith("redis://")


def test_each_queue_gives_its_tasks_its_time_limits(settings):
    class FakeTask:
        soft_time_limit = None
        time_limit = None

    def limits(name):
        task = FakeTask()
        task.name = name
        return QueueTimeLimits().annotate(task)

    assert limits("training.tasks.training_run_execute_task") == {
        "soft_time_limit": settings.CELERY_QUEUE_TIME_LIMITS["training"][0],
        "time_limit": settings.CELERY_QUEUE_TIME_LIMITS["training"][1],
    }
    assert limits("ops.tasks.worker_heartbeat_task")["time_limit"] == settings.CELERY_QUEUE_TIME_LIMITS["default"][1]
    assert limits("groundtruth.tasks.x")["soft_time_limit"] == settings.CELERY_QUEUE_TIME_LIMITS["groundtruth"][0]
    # the registered task carries the limits of its queue
    assert worker_heartbeat_task.time_limit == settings.CELERY_QUEUE_TIME_LIMITS["default"][1]


def test_celery_configuration_is_the_documented_one(settings):
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert {queue.name for queue in conf.task_queues} == {"default", "groundtruth", "training", "inference"}
    if conf.broker_url.startswith("redis"):
        longest = max(hard for _, hard in settings.CELERY_QUEUE_TIME_LIMITS.values())
        assert conf.broker_transport_options["visibility_timeout"] > longest
    # every scheduled task exists
    app.loader.import_default_modules()
    for entry in conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
