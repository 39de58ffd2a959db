"""Prediction: who may ask, which model answers, the answer, and its log row."""

import hashlib
import io
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.models import Suggestion
from config.errors import Conflict, DomainError, ValidationFailed
from datasets.imaging import decode_upright_rgb, stored_file_open
from datasets.ingest import IncomingImage, image_ingest_one
from datasets.models import Image
from projects.models import Project, Role
from projects.selectors import project_list, project_role, role_at_least
from serving.cache import detector_for, detector_for_build
from serving.logbook import log_prediction
from serving.models import ApiClient, JobState, PredictionJob, PredictionLog, RoutingRule
from serving.routing import Route, route
from serving.shadows import shadow_later
from serving.state import (
    ClientScope,
    ProjectState,
    client_scope,
    client_scope_for_token,
    project_model,
    project_state,
)
from training.models import ModelStage, ModelVersion, TargetBuild
from training.profile import FEATURES, grey_features
from training.runtime import ModelFileMismatch
from training.targets import build_is_current

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "qk_"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class ModelUnavailable(DomainError):
    status_code = 503
    code = "model_unavailable"


def _detector(model: ModelVersion):
    return _checked(lambda: detector_for(model), f"Model {model.number}'s file", f"model {model.pk}")


def _build_detector(build: TargetBuild):
    return _checked(lambda: detector_for_build(build), f"The artifact of build {build.pk}", f"build {build.pk}")


def _checked(load, what: str, name: str):
    """A loaded detector, or 503 when its file failed the integrity check."""
    try:
        return load()
    except ModelFileMismatch as error:
        logger.error("%s refused: %s", name, error)
        message = f"{what} failed its integrity check; it is not served. Tell an administrator."
        raise ModelUnavailable(message) from error


@dataclass(frozen=True)
class Caller:
    """Who asks: a signed-in person (reviewers and admins of a project may predict with
    its models) or an API client (within its projects and granted models)."""

    user: AbstractBaseUser | None = None
    client: ApiClient | None = None
    client_scope: ClientScope | None = None  # the client's, as authenticated; else read when needed

    def scope(self) -> ClientScope:
        return self.client_scope or client_scope(self.client)

    def projects(self) -> QuerySet[Project]:
        if self.client is not None:
            return Project.objects.filter(pk__in=self.scope().project_ids)
        return project_list(user=self.user)

    def project_state(self, project_id: int) -> ProjectState | None:
        """The serving state of project `project_id` if the caller may use it."""
        if self.client is None:
            is_visible = self.projects().filter(pk=project_id).exists()
        else:
            is_visible = project_id in self.scope().project_ids
        return project_state(project_id) if is_visible else None

    def only_project_state(self) -> ProjectState | None:
        """The serving state of the caller's one project, when they have exactly one."""
        if self.client is None:
            project_ids = list(self.projects().values_list("pk", flat=True)[:2])
        else:
            project_ids = list(self.scope().project_ids)
        return self.project_state(project_ids[0]) if len(project_ids) == 1 else None

    def check_project(self, project: Project) -> None:
        if self.client is None and not role_at_least(project_role(project=project, user=self.user), Role.REVIEWER):
            raise Forbidden("Only reviewers and admins of this project may ask its models.")

    def check_model(self, model: ModelVersion, project: Project) -> None:
        if self.client is not None:
            allowed = self.scope().model_ids
            if allowed and model.pk not in allowed:
                raise Forbidden(f"This client may not use model {model.number} of {project.name}.")


@dataclass
class Prediction:
    request_id: str
    project: Project
    model: ModelVersion
    route: Route
    chosen_by: str  # "request", "rule" or "champion"
    boxes: np.ndarray  # m x 6: x1, y1, x2, y2, score, class
    width: int
    height: int
    latency_ms: float
    shadow: dict | None = field(default=None)
    target_build: TargetBuild | None = None  # the deployment target's build that answered, if a rule chose one
    runtime: str = ""


def api_client_new_token(client: ApiClient) -> str:
    """Give `client` (saved or not) a new token; returned once, only its sha256 is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client.token_prefix = token[:10]
    client.token_sha256 = hashlib.sha256(token.encode()).hexdigest()
    return token


def api_client_token_rotate(*, client: ApiClient) -> str:
    """Replace `client`'s token: the old one stops working at once (the save drops every
    process's kept copy, `serving.state`); the new one is returned once."""
    token = api_client_new_token(client)
    client.save(update_fields=["token_prefix", "token_sha256"])
    return token


def api_client_active_set(*, client: ApiClient, is_active: bool) -> ApiClient:
    """Stop a client (its token answers 401 from the next request) or start it again."""
    client.is_active = is_active
    client.save(update_fields=["is_active"])
    return client


def routing_rule_save(*, rule: RoutingRule) -> RoutingRule:
    """Save a new or changed rule after its own checks (`RoutingRule.clean`: its models and
    client belong to its project, a canary share needs a canary)."""
    rule.full_clean()
    rule.save()
    return rule


def routing_rule_active_set(*, rule: RoutingRule, is_active: bool) -> RoutingRule:
    rule.is_active = is_active
    rule.save(update_fields=["is_active"])
    return rule


def routing_rule_delete(*, rule: RoutingRule) -> None:
    rule.delete()


def project_clients(*, project: Project) -> list[tuple[ApiClient, bool]]:
    """The project's API clients, by name, each with whether the project's admins manage it:
    a client that may use other projects too is left to staff (Django admin)."""
    clients = list(ApiClient.objects.filter(projects=project).order_by("name"))
    grants = ApiClient.projects.through.objects.filter(apiclient__in=clients).exclude(project=project)
    shared = set(grants.values_list("apiclient_id", flat=True))
    return [(client, client.pk not in shared) for client in clients]


def project_client_get(*, project: Project, client_id: int) -> ApiClient:
    """One of the project's own clients (used by no other project), for its admins; else 404."""
    for client, own in project_clients(project=project):
        if client.pk == client_id and own:
            return client
    raise Http404("No such API client of this project.")


def api_client_create(
    *, name: str, projects: list[Project], user: AbstractBaseUser | None, rate_limit_per_minute: int = 600
) -> tuple[ApiClient, str]:
    """A new client with access to `projects`, and its token (shown once)."""
    client = ApiClient(name=name, rate_limit_per_minute=rate_limit_per_minute, created_by=user)
    token = api_client_new_token(client)
    client.save()
    client.projects.set(projects)
    return client, token


def api_client_scope_for_token(token: str) -> ClientScope | None:
    """The active client of `token`, with its projects and granted models; None for none."""
    return client_scope_for_token(hashlib.sha256(token.encode()).hexdigest())


def prediction_make(
    *,
    caller: Caller,
    upload: BinaryIO | None = None,
    image_id: int | None = None,
    project_id: int | None = None,
    model: str | int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    request_id: str | None = None,
) -> Prediction:
    """Answer one request: the image (an upload, or a stored image by id), the model (a
    version id, or "champion"/None: the project's routing rules, then its champion), the
    boxes in the image's own pixels. The answer is logged; a shadow run (serving/shadows.py)
    follows it, and is logged too, without the answer waiting for it."""
    started = time.perf_counter()
    request_id = request_id or str(uuid.uuid4())
    if (upload is None) == (image_id is None):
        raise ValidationFailed("Send an image file or an image id, not both.", fields={"image": ["One of the two."]})
    if not (0.0 <= conf <= 1.0) or not (0.0 < iou <= 1.0):
        raise ValidationFailed("conf is in [0, 1] and iou in (0, 1].", fields={"conf": ["0 to 1."], "iou": ["0 to 1."]})
    image = None
    if image_id is not None:
        image = Image.objects.filter(project__in=caller.projects(), pk=image_id).first()
        if image is None:
            raise Http404("No such image.")
        state = project_state(image.project_id)
    else:
        state = _project_state_of(caller, project_id=project_id, model=model)
    if state is None:
        raise Http404("No such project.")
    project = state.project
    caller.check_project(project)
    chosen = _explicit_model(state, model)
    if upload is not None:
        decoded = decode_upright_rgb(upload, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
    else:
        with stored_file_open(image.file) as stored:  # a file the storage lost: 404, said so
            decoded = decode_upright_rgb(stored, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
    rgb = np.asarray(decoded.image)
    height, width = rgb.shape[:2]
    if chosen is not None:
        the_route, chosen_by = Route(rule=None, model_id=chosen.pk), "request"
    else:
        the_route = route(
            state.rules, client_id=caller.client.pk if caller.client else None, width=width, height=height,
            request_id=request_id,
        )  # fmt: skip
        chosen_by = "rule" if the_route.rule is not None else "champion"
    answering = chosen or _model_of_route(state, the_route)
    caller.check_model(answering, project)
    build = _target_build(the_route, answering) if chosen is None else None
    detector = _build_detector(build) if build is not None else _detector(answering)
    boxes = detector.predict(rgb, conf=conf, iou=iou)
    latency_ms = (time.perf_counter() - started) * 1000
    features = {**grey_features(rgb), "width": width, "height": height}
    row = _log_row(request_id, project, caller, answering, the_route, image, boxes, latency_ms, features)
    row.target_build = build
    row.artifact_sha256 = build.artifact_sha256 if build is not None else answering.onnx_sha256
    kept = None
    if upload is not None and caller.client is not None and _is_uncertain(row):  # production traffic only
        upload.seek(0)
        kept = (f"served/{project.pk}/{request_id}.{decoded.format}", upload.read())
    log_prediction(row, kept=kept)
    shadow = None
    if the_route.shadow_id is not None:
        shadow_model = project_model(state, the_route.shadow_id)
        if shadow_model is not None:

            def shadow_run() -> None:
                shadow_started = time.perf_counter()
                shadow_boxes = _detector(shadow_model).predict(rgb, conf=conf, iou=iou)
                shadow_ms = (time.perf_counter() - shadow_started) * 1000
                row = _log_row(
                    request_id, project, caller, shadow_model, the_route, image, shadow_boxes, shadow_ms, features
                )
                row.is_shadow = True
                log_prediction(row)

            shadow = {"model": shadow_model.pk, "queued": shadow_later(shadow_run)}
    return Prediction(
        request_id=request_id, project=project, model=answering, route=the_route, chosen_by=chosen_by, boxes=boxes,
        width=width, height=height, latency_ms=latency_ms, shadow=shadow, target_build=build, runtime=detector.runtime,
    )  # fmt: skip


def _target_build(the_route: Route, model: ModelVersion) -> TargetBuild | None:
    """The model's newest finished build on the matched rule's deployment target that measured
    what the target names now, if the rule names one and such a build exists; None: the
    model's own export answers (and the log says so)."""
    rule = the_route.rule
    if rule is None or rule.target_id is None:
        return None
    builds = (
        TargetBuild.objects.filter(model=model, target_id=rule.target_id, state=TargetBuild.State.DONE)
        .exclude(artifact="")
        .select_related("target")
        .order_by("-created_at", "-pk")
    )
    return next((build for build in builds[:10] if build_is_current(build, build.target)), None)


def _is_uncertain(row: PredictionLog) -> bool:
    threshold = settings.QUORUM_SERVING_KEEP_BELOW
    return threshold > 0 and (row.mean_confidence is None or row.mean_confidence < threshold)


def uncertain_images_send(*, project: Project, user: AbstractBaseUser, count: int, by: str = "confidence") -> dict:
    """Send the `count` served images the models were least sure of (lowest mean confidence,
    no box first; or, `by="drift"`, farthest from the answering model's reference profile)
    by API clients (production traffic, not people trying a model) to the project's annotation
    queue, first in line: a kept upload becomes a new image of
    the project (through ingestion: checked, split, deduplicated), a stored image that still
    needs annotators is moved up (one that has its k submissions cannot go back to the
    queue: it is not chosen). Each served image is sent once."""
    if not 1 <= count <= 1000:
        raise ValidationFailed("count is 1 to 1000.", fields={"count": ["1 to 1000."]})
    if by not in ("confidence", "drift"):
        raise ValidationFailed("by is confidence or drift.", fields={"by": ["confidence or drift."]})
    # a row past the retention is as good as pruned (PostgreSQL drops whole days: serving.partitions); the
    # bound also lets the database skip the days it would read for nothing
    kept_since = timezone.now() - timedelta(days=settings.QUORUM_PREDICTION_LOG_DAYS)
    answers = PredictionLog.objects.filter(created_at__gte=kept_since, project=project, status=200, is_shadow=False)
    rows = answers.filter(sent_to_annotators_at__isnull=True, client__isnull=False).filter(
        models.Q(image__isnull=False, image__submitted_count__lt=project.overlap_k)
        | models.Q(image__isnull=True) & ~models.Q(kept_file="")
    )
    if by == "confidence":
        chosen = list(rows.order_by(models.F("mean_confidence").asc(nulls_first=True), "created_at")[:count])
    else:
        chosen = _most_drifted(list(rows.select_related("model").order_by("-created_at")[:5000]), count)
    added = moved = 0
    for row in chosen:
        if row.image_id is not None:
            moved += Image.objects.filter(pk=row.image_id).update(priority=1)
        else:
            added += _ingest_kept(row, project=project, user=user)
    if chosen:  # the lower bound: only the chosen rows' day partitions are looked in
        PredictionLog.objects.filter(
            pk__in=[row.pk for row in chosen], created_at__gte=min(row.created_at for row in chosen)
        ).update(sent_to_annotators_at=timezone.now())
    return {"sent": len(chosen), "added": added, "moved_up": moved}


def _ingest_kept(row: PredictionLog, *, project: Project, user: AbstractBaseUser) -> int:
    with default_storage.open(row.kept_file, "rb") as kept:
        data = kept.read()
    result = image_ingest_one(
        project=project, upload=IncomingImage(name=row.kept_file.rsplit("/", 1)[-1], file=io.BytesIO(data),
                                              size=len(data)), user=user,
    )  # fmt: skip
    if result.image_id is None:
        return 0
    Image.objects.filter(pk=result.image_id).update(priority=1)
    return int(result.status == "stored")


def _most_drifted(rows: list[PredictionLog], count: int) -> list[PredictionLog]:
    """Rows by their distance from their model's reference profile: the sum over features of
    |value - reference median| / reference interquartile range."""
    scored = []
    for row in rows:
        profile = row.model.reference_profile if row.model else {}
        distance = 0.0
        for name in FEATURES:
            reference = np.asarray(profile.get(name) or [], dtype=float)
            value = getattr(row, name)
            if len(reference) < 4 or value is None:
                continue
            low, median, high = np.percentile(reference, [25, 50, 75])
            distance += abs(value - median) / max(high - low, 1e-6)
        scored.append((distance, row.created_at, row))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [row for _, _, row in scored[:count]]


def prediction_refused_log(
    *, caller: Caller, request_id: str, status: int, code: str, project_id=None, image_id=None
) -> None:
    """A refused request, logged as such (never as an answer), under its project when the
    caller named one they may use (or an image of one)."""
    projects = caller.projects()
    project = None
    if _is_id(project_id):
        project = projects.filter(pk=int(project_id)).first()
    elif _is_id(image_id):
        project = projects.filter(images__pk=int(image_id)).first()
    log_prediction(
        PredictionLog(
            request_id=request_id, project=project, client=caller.client,
            user=caller.user if caller.client is None else None, status=status, error=code[:64],
            created_at=timezone.now(),
        )
    )  # fmt: skip


def _is_id(value) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit() and len(value) < 12)


def _project_state_of(caller: Caller, *, project_id: int | None, model) -> ProjectState:
    """The project the request names (or whose model it names, or the caller's only one)."""
    if project_id is not None:
        state = caller.project_state(project_id)
        if state is None:
            raise Http404("No such project.")
        return state
    if model not in (None, "", "champion"):
        found = ModelVersion.objects.filter(project__in=caller.projects(), pk=_model_id(model)).first()
        if found is None:
            raise Http404("No such model.")
        return project_state(found.project_id)
    state = caller.only_project_state()
    if state is None:
        raise ValidationFailed("Say which project's champion: send project.", fields={"project": ["Required here."]})
    return state


def _model_id(model) -> int:
    try:
        return int(model)
    except (TypeError, ValueError):
        raise ValidationFailed("model is a model version id or 'champion'.", fields={"model": ["An id."]}) from None


def _explicit_model(state: ProjectState, model) -> ModelVersion | None:
    if model in (None, "", "champion"):
        return None
    found = project_model(state, _model_id(model))
    if found is None:
        raise Http404("No such model.")
    return found


def _model_of_route(state: ProjectState, the_route: Route) -> ModelVersion:
    if the_route.model_id is not None:
        model = project_model(state, the_route.model_id)
        if model is None:
            raise Conflict(f"Routing rule {the_route.rule} names a model that is gone.", code="no_model")
        return model
    if state.champion is None:
        raise Conflict(f"{state.project.name} has no champion model yet; promote one first.", code="no_champion")
    return state.champion


def _log_row(request_id, project, caller, model, the_route, image, boxes, latency_ms, features) -> PredictionLog:
    scores = boxes[:, 4] if len(boxes) else np.zeros(0)
    heights = boxes[:, 3] - boxes[:, 1] if len(boxes) else np.zeros(0)
    return PredictionLog(
        request_id=request_id,
        project=project,
        client=caller.client,
        user=caller.user if caller.client is None else None,
        model=model,
        rule=the_route.rule,
        image=image,
        is_canary=the_route.is_canary,
        status=200,
        latency_ms=latency_ms,
        boxes=len(boxes),
        mean_confidence=float(scores.mean()) if len(scores) else None,
        min_confidence=float(scores.min()) if len(scores) else None,
        median_box_height=float(np.median(heights)) if len(heights) else None,
        created_at=timezone.now(),
        **features,
    )


BATCH_MAX_IMAGES = 1000


def prediction_job_create(
    *, caller: Caller, image_ids: list[int], model: str = "champion", conf: float = 0.25, iou: float = 0.7
) -> PredictionJob:
    """A job predicting stored images (`serving.launch.prediction_job_start` sends it to the
    `inference` queue). Every image must be one the
    caller may use (404 naming the first that is not), at most BATCH_MAX_IMAGES."""
    if not image_ids or len(image_ids) > BATCH_MAX_IMAGES:
        raise ValidationFailed(
            f"Send 1 to {BATCH_MAX_IMAGES} image ids.", fields={"image_ids": [f"1 to {BATCH_MAX_IMAGES} ids."]}
        )
    visible = dict(
        Image.objects.filter(project__in=caller.projects(), pk__in=image_ids).values_list("pk", "project_id")
    )
    missing = [image_id for image_id in image_ids if image_id not in visible]
    if missing:
        raise Http404(f"No image {missing[0]}.")
    for project in Project.objects.filter(pk__in=set(visible.values())):
        caller.check_project(project)  # an annotator may see the images, not ask the models
    job = PredictionJob.objects.create(
        client=caller.client, user=caller.user if caller.client is None else None, image_ids=list(image_ids),
        model=str(model or "champion"), conf=conf, iou=iou,
    )  # fmt: skip
    return job


def prediction_job_get(*, job_id: int, caller: Caller) -> PredictionJob:
    """The caller's own job; 404 for anyone else's."""
    owner = {"client": caller.client} if caller.client is not None else {"user": caller.user, "client": None}
    job = PredictionJob.objects.filter(pk=job_id, **owner).first()
    if job is None:
        raise Http404("No such job.")
    return job


def prediction_job_run(*, job_id: int) -> PredictionJob | None:
    """Predict every image of a queued job (a re-delivered finished job is left alone)."""
    with transaction.atomic():
        job = PredictionJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state in (JobState.DONE, JobState.FAILED):
            return job
        job.state = JobState.RUNNING
        job.save(update_fields=["state"])
    caller = Caller(user=job.user, client=job.client)
    results = []
    for image_id in job.image_ids:
        try:
            prediction = prediction_make(caller=caller, image_id=image_id, model=job.model, conf=job.conf, iou=job.iou)
        except (DomainError, Http404) as error:
            results.append({"image_id": image_id, "error": getattr(error, "message", str(error))})
        else:
            results.append(prediction_summary(prediction) | {"image_id": image_id})
        PredictionJob.objects.filter(pk=job.pk).update(done=len(results))
    job.results, job.done, job.state, job.finished_at = results, len(results), JobState.DONE, timezone.now()
    job.save(update_fields=["results", "done", "state", "finished_at"])
    return job


def prediction_summary(prediction: Prediction) -> dict:
    """The answer's JSON: model, rule, image size, boxes in the upright image's pixels, latency."""
    labels = prediction.project.labels
    rule = prediction.route.rule
    return {
        "request_id": prediction.request_id,
        "model": {
            "id": prediction.model.pk,
            "number": prediction.model.number,
            "project": prediction.project.pk,
            "architecture": prediction.model.architecture,
            "imgsz": prediction.model.imgsz,
            "runtime": prediction.runtime or detector_for(prediction.model).runtime,
        },
        "artifact": _artifact_summary(prediction),
        "rule": {"id": rule.pk, "name": rule.name} if rule else None,
        "chosen_by": prediction.chosen_by,
        "is_canary": prediction.route.is_canary,
        "image": {"width": prediction.width, "height": prediction.height},
        "boxes": [
            {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score, "label": labels[int(label)]}
            for x1, y1, x2, y2, score, label in prediction.boxes.round(2).tolist()
        ],
        "latency_ms": round(prediction.latency_ms, 2),
    }


def _artifact_summary(prediction: Prediction) -> dict:
    build = prediction.target_build
    if build is None:
        return {"sha256": prediction.model.onnx_sha256, "target": None, "build": None}
    return {
        "sha256": build.artifact_sha256,
        "target": build.settings.get("name"),
        "build": build.pk,
        "precision": build.settings.get("precision"),
        "input_size": build.settings.get("input_size"),
    }


SUGGESTION_CONFIDENCE = 0.5


def preannotation_request(*, project: Project) -> int:
    """Check the project can be pre-annotated by its champion (a 409 without one) and count
    the images that still need annotators (`serving.launch.preannotation_start` sends the work)."""
    if not ModelVersion.objects.filter(project=project, stage=ModelStage.CHAMPION).exists():
        raise Conflict(f"{project.name} has no champion model yet; promote one first.", code="no_champion")
    count = project.images.filter(submitted_count__lt=project.overlap_k).count()
    return count


def preannotation_run(*, project_id: int) -> int:
    """The champion's boxes (confidence >= 0.5) for each image that still needs annotators,
    stored as its suggestion (replacing an older one); how many images were done."""
    project = Project.objects.filter(pk=project_id).first()
    champion = ModelVersion.objects.filter(project_id=project_id, stage=ModelStage.CHAMPION).first()
    if project is None or champion is None:
        return 0
    detector = _detector(champion)
    done = 0
    for image in project.images.filter(submitted_count__lt=project.overlap_k).order_by("pk").iterator():
        with default_storage.open(image.file.name, "rb") as stored:
            rgb = np.asarray(decode_upright_rgb(stored, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS).image)
        rows = detector.predict(rgb, conf=SUGGESTION_CONFIDENCE)
        boxes = [
            {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": project.labels[int(label)], "score": score}
            for x1, y1, x2, y2, score, label in rows.round(2).tolist()
        ]
        Suggestion.objects.update_or_create(
            image=image, defaults={"boxes": boxes, "source": f"model {champion.number}"}
        )
        done += 1
    return done
