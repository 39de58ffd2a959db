"""What answering a prediction looks up, kept in each process between requests: an API
client by its token (with the ids of its projects and of the models it was granted), and
a project's serving state (the project, its active routing rules in order, its champion,
and its model versions as they are asked for).

State is kept only where the cache is shared by every process (Redis, `QUORUM_CACHE_URL`)
and for at most `QUORUM_SERVING_STATE_SECONDS`; otherwise every request reads the
database, through the same functions. Any save or delete of an API client (or of its
project and model grants), a routing rule, a model version or a project writes a new
generation token to the shared cache, at once and again after its transaction commits,
and drops this process's state; a process that reads a token other than the one its state
was built under drops its state too. So a revoked token, a promotion or a rule edit holds
from the next request on every process.

The saves are caught by signals (`serving.apps`) because every path that writes these
rows must invalidate, the admin and cascading deletes included; the receivers write
nothing but the token. A bulk `QuerySet.update()` of these rows sends no signal: call
`serving_state_changed()` after it.
"""

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from projects.models import Project
from serving.models import ApiClient, RoutingRule
from training.models import ModelStage, ModelVersion

logger = logging.getLogger(__name__)

GENERATION_KEY = "quorum:serving:generation"
# What a prediction reads of a model version (not its evaluations or profile).
MODEL_FIELDS = (
    "id", "project_id", "number", "architecture", "imgsz", "stage", "onnx", "onnx_sha256", "weights", "weights_sha256",
)  # fmt: skip


@dataclass(frozen=True)
class ClientScope:
    """An active API client, its projects, and the models it was granted (empty: every
    model of its projects)."""

    client: ApiClient
    project_ids: frozenset[int]
    model_ids: frozenset[int]


@dataclass
class ProjectState:
    project: Project
    rules: list[RoutingRule]
    champion: ModelVersion | None
    models: dict[int, ModelVersion] = field(default_factory=dict)


@dataclass
class _Kept:
    generation: str | None = None
    built_at: float = 0.0
    clients: dict[str, ClientScope] = field(default_factory=dict)
    projects: dict[int, ProjectState] = field(default_factory=dict)


_kept = _Kept()
_lock = threading.Lock()


def client_scope_for_token(token_sha256: str) -> ClientScope | None:
    """The active client whose token has this sha256, with its scope; None for none."""
    kept = _current()
    if kept is not None and (scope := kept.clients.get(token_sha256)) is not None:
        return scope
    client = ApiClient.objects.filter(token_sha256=token_sha256, is_active=True).first()
    if client is None:
        return None  # unknown tokens are never kept: a flood of them holds no memory
    scope = ClientScope(
        client=client,
        project_ids=frozenset(client.projects.values_list("pk", flat=True)),
        model_ids=frozenset(client.allowed_models.values_list("pk", flat=True)),
    )
    if kept is not None:
        with _lock:
            kept.clients[token_sha256] = scope
    return scope


def client_scope(client: ApiClient) -> ClientScope:
    """The scope of `client` (as authenticated: active). A client deactivated since then has none."""
    return client_scope_for_token(client.token_sha256) or ClientScope(client, frozenset(), frozenset())


def project_state(project_id: int) -> ProjectState | None:
    """The project, its active rules in order and its champion; None for no such project."""
    kept = _current()
    if kept is not None and (state := kept.projects.get(project_id)) is not None:
        return state
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    state = ProjectState(
        project=project,
        rules=list(RoutingRule.objects.filter(project=project, is_active=True).order_by("order", "pk")),
        champion=ModelVersion.objects.filter(project=project, stage=ModelStage.CHAMPION).only(*MODEL_FIELDS).first(),
    )
    if kept is not None:
        with _lock:
            kept.projects[project_id] = state
    return state


def project_model(state: ProjectState, model_id: int) -> ModelVersion | None:
    """Model version `model_id` of the state's project; None when it is not one of them."""
    model = state.models.get(model_id)
    if model is None:
        model = ModelVersion.objects.filter(project=state.project, pk=model_id).only(*MODEL_FIELDS).first()
        if model is not None:
            with _lock:
                state.models[model_id] = model
    return model


def serving_state_changed(**_) -> None:
    """Drop what every process keeps (a signal receiver, and a call after bulk updates)."""
    global _kept
    with _lock:
        _kept = _Kept()
    if settings.QUORUM_SERVING_STATE_SECONDS > 0:
        generation_publish()
        transaction.on_commit(generation_publish)  # a process may rebuild from the old rows until then


def generation_publish() -> None:
    try:
        cache.set(GENERATION_KEY, secrets.token_hex(8), timeout=None)
    except Exception:  # noqa: BLE001 - the cache is down: processes stop keeping state (see _current)
        logger.warning("could not publish a serving state change; processes keep theirs at most %s s",
                       settings.QUORUM_SERVING_STATE_SECONDS)  # fmt: skip


def _current() -> _Kept | None:
    """This process's kept state, valid under the shared generation token; None when
    nothing is kept (no shared cache, or it cannot be read)."""
    global _kept
    seconds = settings.QUORUM_SERVING_STATE_SECONDS
    if seconds <= 0:
        return None
    try:
        generation = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - without the token, the database answers
        return None
    with _lock:
        now = time.monotonic()
        if _kept.generation != generation or now - _kept.built_at > seconds:
            _kept = _Kept(generation=generation, built_at=now)
        return _kept
