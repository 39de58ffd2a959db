"""Prometheus metrics: what Quorum counts and times, and what a scrape reads from the
database and the broker.

Every label value comes from a fixed set: a route's name, an HTTP method from a short list,
a status class, a database id, a model's choices, a Celery queue or task name. Nothing a
user typed becomes a label, so no request can grow the number of series.

Counters and histograms live in the process that observes them. Under gunicorn (several
processes) set PROMETHEUS_MULTIPROC_DIR: each process then writes its values to files there
and a scrape adds them up (prometheus_client's multiprocess mode; config/gunicorn.py wipes
the folder at start and marks dead workers). Gauges that describe the state of the database
and the broker are computed at scrape time by `StateCollector`, never stored.

ops sits low in the layers, so it cannot read the models of the apps above it: each of them
registers the gauges it can answer (`state_gauge_register`, from its AppConfig.ready)."""

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery import states
from celery.app.routes import MapRoute
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, disable_created_metrics, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from config.celery import app

logger = logging.getLogger(__name__)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
# A path no URL pattern matched, and one WhiteNoise answered before URL resolution.
UNMATCHED_VIEW = "unmatched"
STATIC_VIEW = "static"
PERSON_CLIENT = "person"  # a signed-in reviewer or admin trying a model, not an API client
NO_MODEL = "none"  # a refused request that never reached a model
# Transports whose queue length kombu reads without side effects: Redis (LLEN of each
# queue's priority lists) and the filesystem (messages in the folder).
MEASURED_TRANSPORTS = frozenset({"redis", "filesystem"})
CELERY_STATES = frozenset(states.ALL_STATES)

# No `*_created` series: the multiprocess mode has none, and a scrape of one process should
# read like a scrape of several.
disable_created_metrics()

REQUEST_DURATION = Histogram(
    "quorum_http_request_duration_seconds",
    "Time to answer an HTTP request, until the response is handed to the server (a streamed body not included).",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
PREDICTIONS = Counter(
    "quorum_predictions",
    "Prediction log rows: answers, shadow runs and refused requests, by model id and API client id.",
    ["model", "client", "outcome"],
)
PREDICTION_DURATION = Histogram(
    "quorum_prediction_duration_seconds",
    "Time from the request to the boxes (decoding, routing and the model), by model id and API client id.",
    ["model", "client", "outcome"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
ANNOTATIONS_RECORDED = Counter(
    "quorum_annotations_recorded",
    "Annotations written (after commit): panel submissions, imports, simulated annotators and gold references.",
    ["kind", "source"],
)
TASK_DURATION = Histogram(
    "quorum_celery_task_duration_seconds",
    "Time a Celery task ran in a worker, by queue, task name and final state.",
    ["queue", "task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0),
)


# --- What the apps observe ---------------------------------------------------------------


def prediction_observe(*, model_id: int | None, client_id: int | None, outcome: str, latency_ms: float | None) -> None:
    """Count one prediction log row; `outcome` is "answered", "shadow" or "refused"."""
    labels = {
        "model": str(model_id) if model_id is not None else NO_MODEL,
        "client": str(client_id) if client_id is not None else PERSON_CLIENT,
        "outcome": outcome if outcome in ("answered", "shadow", "refused") else OTHER,
    }
    PREDICTIONS.labels(**labels).inc()
    if latency_ms is not None:
        PREDICTION_DURATION.labels(**labels).observe(latency_ms / 1000)


def annotation_recorded(*, kind: str, source: str) -> None:
    """Count one annotation written; `kind` and `source` are the model's choices."""
    ANNOTATIONS_RECORDED.labels(kind=kind, source=source).inc()


# --- Requests ------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Time every request by its URL pattern's name (never its path), method and status class.

    First in the middleware list, so that what WhiteNoise and the security middleware answer
    is timed too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        REQUEST_DURATION.labels(
            view=view_label(request),
            method=request.method if request.method in HTTP_METHODS else OTHER,
            status=f"{response.status_code // 100}xx" if 100 <= response.status_code < 600 else OTHER,
        ).observe(time.perf_counter() - started)
        return response


def view_label(request) -> str:
    """The matched URL pattern's name (`namespace:name`, or the view's dotted path when the
    pattern has none); a fixed word when nothing matched."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name
    if request.path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
        return STATIC_VIEW
    return UNMATCHED_VIEW


# --- Celery tasks --------------------------------------------------------------------------

_task_started: dict[str, float] = {}


def task_started(*, task_id: str, **_) -> None:
    """celery's task_prerun."""
    _task_started[task_id] = time.perf_counter()


def task_finished(*, task_id: str, task, state: str | None = None, **_) -> None:
    """celery's task_postrun: observe how long the task ran."""
    started = _task_started.pop(task_id, None)
    if started is None:
        return
    TASK_DURATION.labels(
        queue=task_queue(task),
        task=task.name,  # code: an unregistered name is refused by the worker before it runs
        state=state if state in CELERY_STATES else OTHER,
    ).observe(time.perf_counter() - started)


def task_queue(task) -> str:
    """The queue the task was taken from (its routing key), or the one it is routed to when
    it ran eagerly; one of CELERY_TASK_QUEUES, or "other"."""
    known = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    delivery = getattr(task.request, "delivery_info", None) or {}
    queue = delivery.get("routing_key")
    if not queue:
        route = MapRoute(settings.CELERY_TASK_ROUTES)(task.name) or {}
        queue = route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)
    return queue if queue in known else OTHER


# --- Multiprocess bookkeeping ----------------------------------------------------------------


def multiprocess_folder_reset(folder: str) -> None:
    """Empty prometheus_client's folder of a service before its processes start (its docs ask
    for it); only the `.db` files it writes are removed, whatever else the folder holds."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)


def process_dead(pid: int) -> None:
    """A worker process `pid` is gone: its live gauge files go (prometheus_client's docs)."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, settings.PROMETHEUS_MULTIPROC_DIR)


def worker_started(**_) -> None:
    """celery's worker_init, in the worker's main process before it forks its pool."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess_folder_reset(settings.PROMETHEUS_MULTIPROC_DIR)


def worker_process_stopped(*, pid: int | None = None, **_) -> None:
    """celery's worker_process_shutdown, in the pool process that stops."""
    process_dead(pid or os.getpid())


def worker_ready(**_) -> None:
    """celery's worker_ready: serve the worker's task metrics when a port is set."""
    port = settings.QUORUM_WORKER_METRICS_PORT
    if not port:
        return
    if not settings.QUORUM_METRICS_TOKEN:
        logger.info("QUORUM_WORKER_METRICS_PORT is set but QUORUM_METRICS_TOKEN is not: no task metrics are served.")
        return
    server = worker_metrics_serve(port=port)
    logger.info("Task metrics at http://%s:%s/metrics", *server.server_address[:2])


# --- Gauges read at scrape time ----------------------------------------------------------------

# label values -> value; each label value from a fixed set (a model's choices, never user text)
Reading = Callable[[], dict[tuple[str, ...], float]]


@dataclass(frozen=True)
class StateGauge:
    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Reading


_state_gauges: dict[str, StateGauge] = {}


def state_gauge_register(*, name: str, documentation: str, read: Reading, labels: tuple[str, ...] = ()) -> None:
    """Offer a gauge that `read` computes at each scrape (an app above ops, from its ready())."""
    _state_gauges[name] = StateGauge(name=name, documentation=documentation, labels=labels, read=read)


class StateCollector(Collector):
    """The registered database gauges and the Celery queue lengths, read at scrape time. A
    gauge whose read fails is left out of that scrape (and logged), the others still answer."""

    def collect(self) -> Iterator[Metric]:
        for gauge in list(_state_gauges.values()):
            try:
                values = gauge.read()
            except Exception:  # one failing read must not take the whole scrape down
                logger.exception("metrics: could not read %s", gauge.name)
                continue
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for label_values, value in sorted(values.items()):
                family.add_metric(list(label_values), value)
            yield family
        yield from queue_lengths()


def queue_lengths() -> Iterator[Metric]:
    """Messages waiting in each queue of CELERY_TASK_QUEUES (taken ones are not counted), and
    whether the broker answered. Only Redis and the filesystem transport are measured; with
    another broker (RabbitMQ has its own exporter) the lengths are left out."""
    up = GaugeMetricFamily("quorum_celery_broker_up", "1 when this scrape read the queue lengths, 0 otherwise.")
    lengths = GaugeMetricFamily(
        "quorum_celery_queue_length",
        "Messages waiting in each Celery queue, not yet taken by a worker.",
        labels=["queue"],
    )
    timeout = settings.HEALTHZ_BROKER_TIMEOUT_SECONDS
    try:
        with app.connection_for_read(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            if conn.transport.driver_type not in MEASURED_TRANSPORTS:
                up.add_metric([], 0)
                yield up
                return
            channel = conn.default_channel
            counts = [
                (queue.name, channel.queue_declare(queue=queue.name, passive=False).message_count)
                for queue in settings.CELERY_TASK_QUEUES
            ]
    except Exception as error:  # noqa: BLE001 - a broker that does not answer is reported as such
        logger.warning("metrics: could not read the queue lengths: %s: %s", type(error).__name__, error)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    for name, count in counts:
        lengths.add_metric([name], count)
    yield up
    yield lengths


# --- Exposition ----------------------------------------------------------------------------------


class _DefaultRegistry(Collector):
    """This process's own metrics (one process: no PROMETHEUS_MULTIPROC_DIR)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def metrics_registry(*, with_state: bool = True) -> CollectorRegistry:
    """A registry for one scrape: every process's counters and histograms (the multiprocess
    folder when there is one, as prometheus_client's docs build it; else this process's),
    and, for the web's endpoint, the gauges read now."""
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(_DefaultRegistry())
    if with_state:
        registry.register(StateCollector())
    return registry


def metrics_exposition(*, accept: str | None, with_state: bool = True) -> tuple[bytes, str]:
    """The scrape's body and content type (OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(metrics_registry(with_state=with_state)), content_type


def bearer_token_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token` as a bearer token (compared in
    constant time); never with no token configured."""
    if not token or not authorization:
        return False
    scheme, _, provided = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(provided.strip().encode(), token.encode())


NO_TOKEN_MESSAGE = "Send the metrics token: Authorization: Bearer <QUORUM_METRICS_TOKEN>.\n"


def _worker_app(environ, start_response):
    """The worker's /metrics: its task metrics, behind the web endpoint's bearer token."""
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not found: the worker serves /metrics only.\n"]
    if not bearer_token_matches(environ.get("HTTP_AUTHORIZATION"), settings.QUORUM_METRICS_TOKEN):
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [NO_TOKEN_MESSAGE.encode()]
    body, content_type = metrics_exposition(accept=environ.get("HTTP_ACCEPT"), with_state=False)
    start_response("200 OK", [("Content-Type", content_type), ("Cache-Control", "no-store")])
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # every scrape would be a log line
        pass


def worker_metrics_serve(*, port: int, host: str = "0.0.0.0") -> WSGIServer:
    """Serve `_worker_app` on `port` (0: any free port) from a daemon thread; the server."""
    server = make_server(host, port, _worker_app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server
