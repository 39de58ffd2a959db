"""The Celery application shared by every Quorum worker and by beat."""

import os

from celery import Celery
from celery.app.routes import MapRoute

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("quorum")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
