"""The prediction log, written off the answer's path: rows (with the upload a row keeps,
if any) are queued in memory and a background thread writes them in batches (half a
second after the first row of a batch, or at 200 rows), so that an answer never waits
for the database or the storage. The thread lets its database connection go after a
quiet 5 seconds. With deferral off (tests, one-off scripts) each row is written at once.
On PostgreSQL each row's UTC day gets its partition first, if it has none
(serving.partitions; a row lands in the default partition when that fails)."""

import atexit
import logging
import queue
import threading
import time

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from ops.metrics import prediction_observe
from serving.models import PredictionLog
from serving.partitions import day_of, prediction_log_days_ensure

logger = logging.getLogger(__name__)
BATCH = 200
FLUSH_SECONDS = 0.5
IDLE_SECONDS = 5.0
_rows: queue.Queue = queue.Queue()
_writer: threading.Thread | None = None
_writer_lock = threading.Lock()


def log_prediction(row: PredictionLog, *, kept: tuple[str, bytes] | None = None) -> None:
    """Log `row`; `kept` (a storage name and the upload's bytes) is saved first, as the
    row's `kept_file`. The row is counted and timed for Prometheus at once (ops/metrics.py)."""
    outcome = "shadow" if row.is_shadow else "answered" if row.status == 200 else "refused"
    prediction_observe(model_id=row.model_id, client_id=row.client_id, outcome=outcome, latency_ms=row.latency_ms)
    if not settings.QUORUM_PREDICTION_LOG_DEFERRED:
        _keep(row, kept)
        _days_ensure([row])
        row.save()
        return
    _rows.put((row, kept))
    _ensure_writer()


def flush() -> int:
    """Write every queued row now, in this thread; how many."""
    batch = []
    while True:
        try:
            batch.append(_rows.get_nowait())
        except queue.Empty:
            break
    _write(batch)
    return len(batch)


def _keep(row: PredictionLog, kept: tuple[str, bytes] | None) -> None:
    if kept is not None:
        name, data = kept
        row.kept_file = default_storage.save(name, ContentFile(data))


def _write(batch: list) -> None:
    if not batch:
        return
    for row, kept in batch:
        try:
            _keep(row, kept)
        except Exception:  # the row is still logged, only without its image
            logger.exception("could not keep the upload of prediction %s", row.request_id)
    rows = [row for row, _ in batch]
    _days_ensure(rows)
    PredictionLog.objects.bulk_create(rows, batch_size=BATCH)


def _days_ensure(rows: list[PredictionLog]) -> None:
    try:
        prediction_log_days_ensure({day_of(row.created_at) for row in rows if row.created_at is not None})
    except Exception:  # the default partition takes the rows; beat makes the day later
        logger.exception("could not make the prediction log partitions of %s rows", len(rows))


def _ensure_writer() -> None:
    global _writer
    if _writer is not None and _writer.is_alive():
        return
    with _writer_lock:
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_write_forever, args=(_rows,), name="prediction-log-writer", daemon=True)
            _writer.start()


def _write_forever(rows: queue.Queue) -> None:
    """Write the rows of `rows`, the queue the writer was started on, for ever."""
    while True:
        try:
            batch = [rows.get(timeout=IDLE_SECONDS)]
        except queue.Empty:
            connection.close()  # idle: hold no database connection
            batch = [rows.get()]
        deadline = time.monotonic() + FLUSH_SECONDS  # under steady load too, rows wait at most this
        try:
            while len(batch) < BATCH:
                batch.append(rows.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            pass
        try:
            _write(batch)
        except Exception:  # a lost batch of log rows must not stop the writer
            logger.exception("could not write %s prediction log rows", len(batch))
            connection.close()


atexit.register(flush)
