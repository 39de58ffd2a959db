"""Operational records: which Celery workers are alive and what they last did."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """One round trip through the broker: a task that a worker took from a queue and ran."""

    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=64)
    pid = models.PositiveIntegerField()
    sent_at = models.DateTimeField(help_text="When the task was enqueued.")
    seen_at = models.DateTimeField(auto_now_add=True, help_text="When a worker ran it.")

    class Meta:
        ordering = ["-seen_at"]
        indexes = [models.Index(fields=["queue", "-seen_at"])]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @property
    def latency_seconds(self) -> float:
        return (self.seen_at - self.sent_at).total_seconds()
