"""The Celery application shared by every Quorum worker and by beat."""

import logging
import os

from celery import Celery
from celery.app.routes import MapRoute
from celery.signals import worker_init

from config.allocator import allocator_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("quorum")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger(__name__)


@worker_init.connect
def _allocator_tune(**_) -> None:
    """Workers predict and evaluate images too (config/allocator.py); forked children inherit it."""
    allocator_tune()


def send_quietly(task, *args) -> None:
    """Send `task` (the task function itself) with `args`. A broker that is down is logged,
    not raised: the row that asked for the work is saved, and a sweep or the reaper sends
    it again."""
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - see the docstring
        logger.warning("Could not enqueue %s%s; send it again once the broker is back.", task.name, args)


class QueueTimeLimits:
    """Celery task annotation: give each task the time limits of the queue it is routed to.

    Limits live in `CELERY_QUEUE_TIME_LIMITS` as queue -> (soft, hard) seconds; a task that
    sets its own limits keeps them.
    """

    def annotate(self, task):
        from django.conf import settings

        limits = settings.CELERY_QUEUE_TIME_LIMITS
        route = MapRoute(settings.CELERY_TASK_ROUTES)(task.name) or {}
        queue = route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)
        soft, hard = limits.get(queue, limits[settings.CELERY_TASK_DEFAULT_QUEUE])
        annotation = {}
        if task.soft_time_limit is None:
            annotation["soft_time_limit"] = soft
        if task.time_limit is None:
            annotation["time_limit"] = hard
        return annotation
