"""The permission matrix: every URL of Quorum (API and pages) against every kind of caller,
with the status each must get. A URL without a row here fails the test, so a new endpoint
cannot ship without its access being decided.

Callers: anonymous; an annotator of project A; an annotator of project B only (for whom
all of A is foreign); a reviewer of A; an admin of A; a Quorum staff user; an API client of
A; an API client of B only. Every object in a URL belongs to project A (the assignment is
the annotator's of A). The rules, from DESIGN.md's role table:

- anonymous: an API answers 401, a page redirects to sign-in (302);
- a caller for whom the object is foreign gets 404, whatever its role elsewhere: never a
  403 that would confirm the object exists, never data;
- a member whose role is below the one required gets 403;
- a member at or above it gets the row's status (for writes, the body is empty, so an
  allowed caller gets the validation error, 400, and nothing is written);
- staff are admins of every project;
- API client tokens open only the prediction endpoints (elsewhere they are anonymous).

Each request runs inside a transaction that is rolled back, so that no cell changes what
the next one sees.
"""

from dataclasses import dataclass, field

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotation.models import Assignment
from datasets.storage import image_thumbnail_make
from projects.models import Role
from serving.models import PredictionJob
from serving.services import api_client_create
from tests.factories import MembershipFactory, UserFactory
from tests.storage import served
from tests.training.conftest import make_model, make_run, trainable_project
from training.models import BaseWeights, DataCurve, DeploymentTarget, TargetBuild
from training.targets import target_builds_request

pytestmark = pytest.mark.django_db

ANON, ANN_A, ANN_B, REVIEWER, ADMIN, STAFF, CLIENT_A, CLIENT_B = CALLERS = (
    "anonymous", "annotator A", "annotator B", "reviewer A", "admin A", "staff", "client A", "client B",
)  # fmt: skip
RANK = {ANN_A: 1, REVIEWER: 2, ADMIN: 3, STAFF: 3}
LEVELS = {"annotator": 1, "reviewer": 2, "admin": 3}


@dataclass(frozen=True)
class Cell:
    """One method of one URL: who may (a level: public, signed-in, staff, annotator,
    reviewer, admin, assignee, client) and what an allowed caller gets."""

    method: str
    level: str
    ok: int
    overrides: dict[str, int] = field(default_factory=dict)
    body: str = "{}"  # JSON; "{image_id}" and the like are filled with the world's ids


def api(method: str, level: str, ok: int, body: str = "{}", **overrides) -> tuple[str, Cell]:
    return "api", Cell(method, level, ok, {_caller(k): v for k, v in overrides.items()}, body)


def page(method: str, level: str, ok: int, **overrides) -> tuple[str, Cell]:
    return "page", Cell(method, level, ok, {_caller(k): v for k, v in overrides.items()})


def _caller(key: str) -> str:
    return {"anon": ANON, "ann_a": ANN_A, "ann_b": ANN_B, "reviewer": REVIEWER, "admin": ADMIN, "staff": STAFF,
            "client_a": CLIENT_A, "client_b": CLIENT_B}[key]  # fmt: skip


# URL name -> the cells of its methods. Admin pages are Django's own (staff only): one row.
MATRIX: dict[str, list[tuple[str, Cell]]] = {
    # --- pages ------------------------------------------------------------------------
    "home": [page("GET", "signed-in", 200)],
    "account": [page("GET", "signed-in", 200)],
    "account-token-create": [page("POST", "signed-in", 302)],
    "account-token-revoke": [page("POST", "signed-in", 302)],
    "project-create": [page("GET", "staff", 200)],
    "project-detail": [page("GET", "annotator", 200)],
    "project-settings": [page("GET", "admin", 200), page("POST", "admin", 400)],  # an empty form is refused
    "annotate": [page("GET", "annotator", 200)],
    "project-splits": [page("GET", "reviewer", 200)],
    "project-images": [page("GET", "reviewer", 200)],
    "project-image-upload": [page("GET", "admin", 200)],
    "project-consensus": [page("GET", "reviewer", 200)],
    "consensus-report": [page("GET", "reviewer", 200)],
    "project-my-figures": [page("GET", "annotator", 200)],
    "project-review": [page("GET", "reviewer", 200)],
    "project-annotators": [page("GET", "reviewer", 200), page("POST", "reviewer", 400)],
    "project-training": [page("GET", "reviewer", 200)],
    "project-training-policy": [page("POST", "admin", 302)],
    "training-run": [page("GET", "reviewer", 200)],
    "training-run-cancel": [page("POST", "admin", 302)],
    "model": [page("GET", "reviewer", 200)],
    "model-promote": [page("POST", "reviewer", 302)],
    "model-test-look": [page("POST", "reviewer", 302)],
    "model-targets-measure": [page("POST", "reviewer", 302)],
    "project-deployment-targets": [page("GET", "reviewer", 200), page("POST", "admin", 400)],  # an empty form
    "project-data-curves": [page("GET", "reviewer", 200), page("POST", "admin", 400)],  # no run chosen
    "data-curve": [page("GET", "reviewer", 200)],
    "data-curve-cancel": [page("POST", "admin", 302)],
    "serving-try": [page("GET", "reviewer", 200)],
    "serving-monitoring": [page("GET", "reviewer", 200)],
    "project-serving": [page("GET", "admin", 200), page("POST", "admin", 400)],
    "serving-sample": [page("GET", "signed-in", 200)],
    "serving-send-uncertain": [page("POST", "reviewer", 302)],
    "login": [page("GET", "public", 200, ann_a=302, ann_b=302, reviewer=302, admin=302, staff=302)],
    "logout": [page("POST", "public", 302)],
    "healthz": [page("GET", "public", 200)],
    # off (404 to everyone) until QUORUM_METRICS_TOKEN is set; then the token only (tests/ops/test_metrics.py)
    "metrics": [page("GET", "public", 404)],
    "api-docs": [page("GET", "public", 200)],
    "api-schema": [page("GET", "public", 200)],
    "admin:index": [page("GET", "staff", 200, ann_a=302, ann_b=302, reviewer=302, admin=302)],  # Django's sign-in
    # Django admin's sign-in page, throttled: staff are sent on to the admin, others get the form
    "admin-sign-in": [page("GET", "public", 200, staff=302)],
    # --- API: annotation ---------------------------------------------------------------
    "api-me": [api("GET", "signed-in", 200)],
    "api-token": [api("POST", "signed-in", 201, anon=401), api("DELETE", "signed-in", 204)],
    "api-project-list": [api("GET", "signed-in", 200), api("POST", "staff", 400)],
    "api-project-detail": [api("GET", "annotator", 200), api("PATCH", "admin", 400)],  # {} changes nothing
    "api-membership-list": [api("GET", "reviewer", 200), api("POST", "admin", 400)],
    "api-membership-detail": [api("PUT", "admin", 400), api("DELETE", "admin", 204)],
    "api-project-images": [api("GET", "reviewer", 200), api("POST", "admin", 415)],  # uploads are multipart
    "api-project-images-zip": [api("POST", "admin", 415)],
    "api-split-report": [api("GET", "reviewer", 200)],
    "api-project-import": [api("POST", "admin", 415)],
    "api-project-export": [api("GET", "reviewer", 400)],  # ?format= is required
    # the annotator's own lease again; nothing left for the others (every image has its k);
    # members who see everyone's boxes are not handed tasks (409 not_blind)
    "api-next-task": [api("POST", "annotator", 204, ann_a=200, reviewer=409, admin=409, staff=409)],
    "api-assignment": [api("GET", "assignee", 200)],
    "api-assignment-draft": [api("PUT", "assignee", 428)],  # If-Match is required
    "api-assignment-submit": [api("POST", "assignee", 400)],
    "api-assignment-skip": [api("POST", "assignee", 400)],
    "api-assignment-image": [api("GET", "assignee", 200)],
    "api-image-detail": [api("GET", "reviewer", 200)],
    "api-image-file": [api("GET", "reviewer", 200)],
    "api-image-thumbnail": [api("GET", "reviewer", 200)],
    # --- API: ground truth ------------------------------------------------------------
    "api-project-consensus": [api("GET", "reviewer", 200), api("POST", "reviewer", 202)],  # the defaults
    "api-consensus-version": [api("GET", "reviewer", 200)],
    "api-consensus-report": [api("GET", "reviewer", 200)],
    "api-review-queue": [api("GET", "reviewer", 200)],
    "api-adjudication": [api("GET", "reviewer", 200), api("POST", "reviewer", 400), api("DELETE", "reviewer", 409)],
    "api-gold": [api("POST", "reviewer", 400), api("DELETE", "reviewer", 200)],
    "api-gold-scores": [api("GET", "reviewer", 200)],
    "api-suggestion-bias": [api("GET", "reviewer", 200)],
    "api-my-figures": [api("GET", "annotator", 200)],
    "api-member-unpause": [api("POST", "reviewer", 200)],
    # --- API: training ----------------------------------------------------------------
    "api-training-runs": [api("GET", "reviewer", 200), api("POST", "admin", 202)],  # the defaults
    "api-training-run": [api("GET", "reviewer", 200)],
    "api-training-run-cancel": [api("POST", "admin", 202)],
    "api-architectures": [api("GET", "signed-in", 200)],
    # base weights are the installation's, not a project's: admins of any project and staff
    "api-base-weights": [api("GET", "admin", 200, ann_b=403), api("POST", "admin", 415, ann_b=403)],  # JSON: 415
    "api-base-weight": [api("GET", "admin", 200, ann_b=403), api("DELETE", "staff", 204)],
    "base-weights": [page("GET", "admin", 200, ann_b=403), page("POST", "admin", 400, ann_b=403)],
    "api-project-models": [api("GET", "reviewer", 200)],
    "api-model": [api("GET", "reviewer", 200)],
    "api-model-promote": [api("POST", "reviewer", 200)],  # no champion yet: the first one
    "api-model-test-look": [api("POST", "reviewer", 400)],
    "api-training-policy": [api("GET", "reviewer", 200), api("PATCH", "admin", 200)],
    "api-deployment-targets": [api("GET", "reviewer", 200), api("POST", "admin", 400)],
    "api-deployment-target": [api("GET", "reviewer", 200), api("PATCH", "admin", 200), api("DELETE", "admin", 204)],
    "api-model-targets": [api("GET", "reviewer", 200), api("POST", "reviewer", 202)],  # every target
    "api-target-manifest": [api("GET", "reviewer", 200)],
    "api-target-artifact": [api("GET", "reviewer", 200)],
    "api-data-curves": [api("GET", "reviewer", 200), api("POST", "admin", 202)],  # the defaults
    "api-data-curve": [api("GET", "reviewer", 200)],
    "api-data-curve-download": [api("GET", "reviewer", 200)],
    "api-data-curve-cancel": [api("POST", "admin", 202)],
    # --- API: serving ----------------------------------------------------------------
    # a stored image of A with the champion, which A does not have: allowed callers get 409
    "api-predict": [api("POST", "client", 409, body='{"image_id": {image_id}}')],
    "api-predict-batch": [api("POST", "client", 202, body='{"image_ids": [{image_id}]}')],
    "api-predict-job": [api("GET", "job-owner", 200)],
    "api-serving-metrics": [api("GET", "reviewer", 200)],
    "api-serving-drift": [api("GET", "reviewer", 200)],
    "api-preannotate": [api("POST", "admin", 409)],
    "api-uncertain-images": [api("POST", "reviewer", 200)],  # the default count
}
# URLs with no name or of the admin site (one row above covers it), not in the matrix.
UNLISTED = {"favicon.ico"}


def url_names() -> set[str]:
    """Every named URL of the project (admin's own under `admin:index`)."""
    names = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    names.add("admin:index")
                    continue
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                names.add(pattern.name or str(pattern.pattern))

    walk(get_resolver().url_patterns)
    return names - UNLISTED


def test_every_url_has_a_row():
    missing = url_names() - set(MATRIX)
    assert not missing, f"URLs without a row in the permission matrix: {sorted(missing)}"
    assert not set(MATRIX) - url_names(), "rows for URLs that no longer exist"


@pytest.fixture
def world(settings, tmp_path):
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    a = trainable_project(images=6, name="A")
    b = trainable_project(images=2, name="B")
    staff = UserFactory(username="staff-sam", is_staff=True, is_superuser=True)
    annotator_b = MembershipFactory(project=b.project, user__username="b-only", role=Role.ANNOTATOR).user
    image = a.project.images.order_by("pk").first()
    image_thumbnail_make(image=image)
    assignment = Assignment.objects.create(
        image=image, annotator=a.annotator, leased_at="2026-01-01T00:00Z", lease_expires_at="2999-01-01T00:00Z"
    )
    run = make_run(a, state="running")
    model = make_model(a, ap50=0.5)
    client_a, token_a = api_client_create(name="cam A", projects=[a.project], user=None)
    _, token_b = api_client_create(name="cam B", projects=[b.project], user=None)
    job = PredictionJob.objects.create(client=client_a, image_ids=[image.pk])
    base = BaseWeights.objects.create(
        name="coco", format="pt", architecture="yolo26n.yaml", classes=["person"], sha256="0" * 64, size=1,
        file="base-weights/0.pt", is_shared=True,
    )  # fmt: skip
    target = DeploymentTarget.objects.create(
        project=a.project, name="dashcam", camera_width=320, camera_height=180, input_size=320, threads=1,
        precision="int8", latency_budget_ms=50, size_budget_mb=5,
    )  # fmt: skip
    (build,) = target_builds_request(model=model, targets=[target])
    build.state, build.passed = TargetBuild.State.DONE, True
    build.artifact = default_storage.save("targets/matrix.onnx", ContentFile(b"onnx bytes"))
    build.save()
    curve = DataCurve.objects.create(
        project=a.project, number=1, snapshot=run.snapshot, run_settings={"imgsz": 160}, fractions=[0.5, 1.0]
    )
    ids = {
        "target_id": target.pk, "build_id": build.pk, "curve_id": curve.pk,
        "project_id": a.project.pk, "user_id": a.annotator.pk, "image_id": image.pk, "assignment_id": assignment.pk,
        "version_id": a.version.pk, "run_id": run.pk, "model_id": model.pk, "job_id": job.pk, "name": "bus.jpg",
        "base_id": base.pk,
    }  # fmt: skip
    users = {ANN_A: a.annotator, ANN_B: annotator_b, REVIEWER: a.reviewer, ADMIN: a.admin, STAFF: staff}
    return ids, users, {CLIENT_A: token_a, CLIENT_B: token_b}


def expected(kind: str, cell: Cell, caller: str) -> int:
    if caller in cell.overrides:
        return cell.overrides[caller]
    is_client = caller in (CLIENT_A, CLIENT_B)
    if cell.level == "public":
        return cell.ok
    if caller == ANON or (is_client and cell.level not in ("client", "job-owner")):
        return 401 if kind == "api" else 302
    if cell.level == "client":  # prediction: A's reviewers and admins, A's client; B's see no A
        if caller in (CLIENT_B, ANN_B):
            return 404
        return cell.ok if caller != ANN_A else 403
    if cell.level == "job-owner":  # a job is its maker's alone
        return cell.ok if caller == CLIENT_A else 404
    if cell.level == "signed-in":
        return cell.ok
    if cell.level == "staff":
        return cell.ok if caller == STAFF else 403
    if cell.level == "assignee":
        return cell.ok if caller == ANN_A else 404
    if caller == ANN_B:
        return 404
    return cell.ok if RANK[caller] >= LEVELS[cell.level] else 403


def call(client: Client, cell: Cell, url: str, kind: str, token: str | None, ids: dict):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if cell.method == "GET":
        return client.get(url, **headers)
    if kind == "page":
        return client.generic(cell.method, url, b"", content_type="application/x-www-form-urlencoded", **headers)
    body = cell.body
    for key, value in ids.items():
        body = body.replace("{" + key + "}", str(value))
    return client.generic(cell.method, url, body.encode(), content_type="application/json", **headers)


def test_each_caller_gets_the_matrix_status_on_every_url(world):
    ids, users, tokens = world
    wrong = []
    for name, cells in MATRIX.items():
        url = url_for(name, ids)
        if name in ("api-serving-metrics", "api-serving-drift"):
            url += f"?project={ids['project_id']}"
        for kind, cell in cells:
            for caller in CALLERS:
                client = Client()
                if caller in users:
                    client.force_login(users[caller])
                with transaction.atomic():
                    response = call(client, cell, url, kind, tokens.get(caller), ids)
                    transaction.set_rollback(True)
                want = expected(kind, cell, caller)
                status = served(response)[0]  # on S3 an image is a redirect to the storage
                if status != want:
                    wrong.append(f"{cell.method} {url} as {caller}: {status}, expected {want}")
                if (
                    response.status_code == 404
                    and kind == "api"
                    and response.get("Content-Type", "").startswith("application/json")
                ):
                    assert set(response.json()) == {"error"}, f"{url} as {caller} leaks {response.json()}"
    assert not wrong, "\n".join(wrong)


def url_for(name: str, ids: dict) -> str:
    """`name` reversed with the world's ids for whatever its route takes."""
    from django.urls import reverse

    if ":" in name:
        return reverse(name)
    (possibilities, *_), *_ = get_resolver().reverse_dict.getlist(name)
    params = possibilities[0][1]
    return reverse(name, kwargs={param: ids[param] for param in params})
