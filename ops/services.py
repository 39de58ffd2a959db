"""Writes of the operations app."""

import os
import socket
from datetime import datetime, timedelta

from django.utils import timezone

from ops.models import WorkerHeartbeat


def heartbeat_record(*, queue: str, sent_at: datetime, hostname: str | None = None) -> WorkerHeartbeat:
    """Record that a worker on `hostname` ran a heartbeat sent at `sent_at` from `queue`."""
    return WorkerHeartbeat.objects.create(
        hostname=hostname or socket.gethostname(),
        queue=queue,
        pid=os.getpid(),
        sent_at=sent_at,
    )


def heartbeat_prune(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete heartbeats older than `older_than`; returns how many went."""
    deleted, _ = WorkerHeartbeat.objects.filter(seen_at__lt=timezone.now() - older_than).delete()
    return deleted
