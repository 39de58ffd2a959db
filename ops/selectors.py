"""Reads of operational state: service health and worker heartbeats."""

import os
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Max

from config.celery import app
from ops.models import WorkerHeartbeat


@dataclass(frozen=True)
class ServiceCheck:
    is_ok: bool
    detail: str
    milliseconds: float
    extra: dict = field(default_factory=dict)


def database_check() -> ServiceCheck:
    """Run `SELECT 1` on the default database."""
    started = time.perf_counter()
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means the database is down
        # A broken connection must not be reused by the next request of this thread.
        connection.close_if_unusable_or_obsolete()
        return ServiceCheck(False, f"{type(error).__name__}: {error}", _ms(started))
    return ServiceCheck(True, connection.vendor, _ms(started))


def broker_check() -> ServiceCheck:
    """Open a connection to the Celery broker, giving up after the configured timeout."""
    started = time.perf_counter()
    timeout = settings.HEALTHZ_BROKER_TIMEOUT_SECONDS
    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            transport = conn.transport_cls
            if conn.transport.driver_type == "filesystem":
                _filesystem_broker_check(conn)
    except Exception as error:  # noqa: BLE001 - any failure means the broker is unusable
        return ServiceCheck(False, f"{type(error).__name__}: {error}", _ms(started))
    return ServiceCheck(True, str(transport), _ms(started))


def _filesystem_broker_check(conn) -> None:
    """The filesystem transport 'connects' to anything; check its folders are writable."""
    options = conn.transport_options
    for key in ("data_folder_in", "data_folder_out"):
        folder = options.get(key)
        if not folder or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise OSError(f"broker folder {folder!r} is missing or not writable")


def heartbeats_by_queue() -> dict[str, datetime]:
    """The last time a worker ran a heartbeat from each queue."""
    rows = WorkerHeartbeat.objects.values("queue").annotate(last_seen=Max("seen_at"))
    return {row["queue"]: row["last_seen"] for row in rows}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
