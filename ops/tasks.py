"""Celery tasks of the operations app."""

from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ops.services import heartbeat_prune, heartbeat_record


@shared_task(bind=True, acks_late=True)
def worker_heartbeat_task(self, sent_at: str | None = None) -> int:
    """Prove a round trip through the broker: record which worker ran this and when."""
    queue = (self.request.delivery_info or {}).get("routing_key") or "default"
    sent = parse_datetime(sent_at) if sent_at else timezone.now()
    return heartbeat_record(queue=queue, sent_at=sent, hostname=self.request.hostname).pk


@shared_task(acks_late=True)
def heartbeat_prune_task() -> int:
    return heartbeat_prune()
