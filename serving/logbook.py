"""The prediction log, written off the answer's path: rows are queued in memory and a
background thread writes them in batches (half a second after the first row of a batch,
or at 200 rows), so that an answer never waits for the database. With deferral off
(tests, one-off scripts) each row is written at once."""

import atexit
import logging
import queue
import threading
import time

from django.conf import settings
from django.db import connection

from serving.models import PredictionLog

logger = logging.getLogger(__name__)
BATCH = 200
FLUSH_SECONDS = 0.5
_rows: queue.Queue = queue.Queue()
_writer: threading.Thread | None = None
_writer_lock = threading.Lock()


def log_prediction(row: PredictionLog) -> None:
    if not settings.QUORUM_PREDICTION_LOG_DEFERRED:
        row.save()
        return
    _rows.put(row)
    _ensure_writer()


def flush() -> int:
    """Write every queued row now, in this thread; how many."""
    batch = []
    while True:
        try:
            batch.append(_rows.get_nowait())
        except queue.Empty:
            break
    if batch:
        PredictionLog.objects.bulk_create(batch, batch_size=BATCH)
    return len(batch)


def _ensure_writer() -> None:
    global _writer
    if _writer is not None and _writer.is_alive():
        return
    with _writer_lock:
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_write_forever, name="prediction-log-writer", daemon=True)
            _writer.start()


def _write_forever() -> None:
    while True:
        batch = [_rows.get()]
        deadline = time.monotonic() + FLUSH_SECONDS  # under steady load too, rows wait at most this
        try:
            while len(batch) < BATCH:
                batch.append(_rows.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            pass
        try:
            PredictionLog.objects.bulk_create(batch, batch_size=BATCH)
        except Exception:  # a lost batch of log rows must not stop the writer
            logger.exception("could not write %s prediction log rows", len(batch))
            connection.close()
        if _rows.empty():
            connection.close()  # idle: hold no database connection


atexit.register(flush)
