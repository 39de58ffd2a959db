"""Shadow runs, after the answer. A routing rule's shadow model sees the same image as the
answering model and its boxes are logged beside the answer (`is_shadow`), but the answer
never waits for it: with the prediction log deferred (the default, serving/logbook.py),
a small pool of threads per process runs the shadows once their answers have left. When the
pool is `QUORUM_SHADOW_QUEUE` runs behind, a new shadow run is dropped and counted rather
than queued without bound: shadows measure a candidate, they must not slow serving down.
With the log written at once (tests, one-off scripts) a shadow runs in the caller's thread,
after the answer's own work, so that everything is written when the call returns."""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

logger = logging.getLogger(__name__)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending = 0
dropped = 0


def shadow_later(run: Callable[[], None]) -> bool:
    """Have `run` (a shadow run: predict and log) done after the answer; False when it was
    dropped because the pool is too far behind."""
    global _pending, dropped
    if not settings.QUORUM_PREDICTION_LOG_DEFERRED:
        run()
        return True
    with _pool_lock:
        if _pending >= settings.QUORUM_SHADOW_QUEUE:
            dropped += 1
            logger.warning("shadow run dropped: %s already waiting (%s dropped so far)", _pending, dropped)
            return False
        _pending += 1
    _executor().submit(_guarded, run)
    return True


def drain(timeout: float = 30.0) -> None:
    """Wait until every shadow run submitted so far has finished (tests, shutdown)."""
    done = threading.Event()
    with _pool_lock:
        if _pending == 0:
            return
    _executor().submit(done.set)  # one thread: queued behind the runs already there
    done.wait(timeout)


def _guarded(run: Callable[[], None]) -> None:
    global _pending
    try:
        run()
    except Exception:  # a failed shadow must not take the pool down
        logger.exception("shadow run failed")
    finally:
        with _pool_lock:
            _pending -= 1


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        return _pool
