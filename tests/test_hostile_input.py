"""Hostile input never reaches a 5xx: every operation of the API schema, as every kind of
caller, with JSON nested thousands of levels deep and with integers beyond 64 bits in each
integer field, path id and query parameter (the probe's findings: RecursionError on the
token endpoint, IntegrityError and OverflowError on `limit`, `offset`, ids and `seed`).

The requests are built from the schema itself, so a new operation or field is swept without
a change here. Each runs in a transaction that is rolled back. The refusals that name their
field are checked on the operations the probe found."""

import json

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from annotation.models import Assignment
from projects.services import api_token_rotate
from serving.models import PredictionJob
from serving.services import api_client_create
from tests.factories import UserFactory
from tests.training.conftest import make_model, make_run, trainable_project
from training.models import BaseWeights, DataCurve, DeploymentTarget
from training.targets import target_builds_request

pytestmark = pytest.mark.django_db

HUGE = [2**64, -(2**64)]
DEEP = 5000
CALLERS = ["anonymous", "annotator", "reviewer", "admin", "staff", "client"]


def deep_json(depth: int = DEEP) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def world(settings):
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    a = trainable_project(images=6, name="Hostile")
    staff = UserFactory(username="hostile-staff", is_staff=True, is_superuser=True)
    image = a.project.images.order_by("pk").first()
    assignment = Assignment.objects.create(
        image=image, annotator=a.annotator, leased_at="2026-01-01T00:00Z", lease_expires_at="2999-01-01T00:00Z"
    )
    run = make_run(a, state="running")
    model = make_model(a, ap50=0.5)
    client, client_token = api_client_create(name="hostile cam", projects=[a.project], user=None)
    job = PredictionJob.objects.create(client=client, image_ids=[image.pk])
    target = DeploymentTarget.objects.create(
        project=a.project, name="dashcam", camera_width=320, camera_height=180, input_size=320, threads=1,
        precision="int8", latency_budget_ms=50, size_budget_mb=5,
    )  # fmt: skip
    (build,) = target_builds_request(model=model, targets=[target])
    curve = DataCurve.objects.create(project=a.project, number=1, snapshot=run.snapshot, fractions=[0.5, 1.0])
    ids = {
        "project_id": a.project.pk, "user_id": a.annotator.pk, "image_id": image.pk, "assignment_id": assignment.pk,
        "version_id": a.version.pk, "run_id": run.pk, "model_id": model.pk, "job_id": job.pk,
        "target_id": target.pk, "build_id": build.pk, "curve_id": curve.pk,
        "base_id": BaseWeights.objects.create(
            name="hostile", format="pt", architecture="yolo26n.yaml", classes=["person"], sha256="0" * 64, size=1,
            file="base-weights/0.pt", is_shared=True,
        ).pk,
    }  # fmt: skip
    users = {"annotator": a.annotator, "reviewer": a.reviewer, "admin": a.admin, "staff": staff}
    headers = {role: {"HTTP_AUTHORIZATION": f"Token {api_token_rotate(user=user).key}"} for role, user in users.items()}
    headers["client"] = {"HTTP_AUTHORIZATION": f"Bearer {client_token}"}
    headers["anonymous"] = {}
    return ids, headers


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "allOf" in node:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in node["allOf"]:
            part = resolve(schema, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    for key in ("oneOf", "anyOf"):
        if key in node:
            return resolve(schema, node[key][0])
    return node


def minimal(schema: dict, node: dict):
    """The smallest value the schema describes: required properties only, bounds respected."""
    node = resolve(schema, node)
    if "enum" in node:
        return next((value for value in node["enum"] if value is not None), None)
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        return {name: minimal(schema, properties.get(name, {})) for name in node.get("required", [])}
    if kind == "array":
        return [minimal(schema, node.get("items", {})) for _ in range(node.get("minItems", 0))]
    if kind == "integer":
        return max(1, node.get("minimum", 1))
    if kind == "number":
        return node.get("minimum", 0.5)
    if kind == "boolean":
        return False
    if kind == "string":
        return "x" * max(1, node.get("minLength", 1))
    return {}


def integer_paths(schema: dict, node: dict, path: tuple = (), seen: frozenset = frozenset()) -> list[tuple]:
    """Where integers sit in a body: a tuple of keys (property names, 0 for an array's item)."""
    if "$ref" in node:
        if node["$ref"] in seen:
            return []
        seen = seen | {node["$ref"]}
    node = resolve(schema, node)
    kind = node.get("type")
    if kind == "integer":
        return [path]
    if kind == "object":
        return [
            found
            for name, child in node.get("properties", {}).items()
            if not child.get("readOnly")
            for found in integer_paths(schema, child, (*path, name), seen)
        ]
    if kind == "array":
        return integer_paths(schema, node.get("items", {}), (*path, 0), seen)
    return []


def with_value(body, path: tuple, value):
    """`body` with `value` at `path`, making the objects and lists on the way."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if key == 0:
        inner = body[0] if isinstance(body, list) and body else {}
        return [with_value(inner, rest, value)]
    body = dict(body) if isinstance(body, dict) else {}
    body[key] = with_value(body.get(key, {}), rest, value)
    return body


def variants(schema: dict, path: str, method: str, operation: dict, ids: dict) -> list[tuple[str, str, dict]]:
    """(label, url, request kwargs) for one operation: each integer path id and query
    parameter out of range, each integer of the body out of range, and a deeply nested body."""
    parameters = operation.get("parameters", [])
    path_ids = {p["name"]: ids[p["name"]] for p in parameters if p["in"] == "path"}
    query = {p["name"]: minimal(schema, p["schema"]) for p in parameters if p["in"] == "query" and p.get("required")}

    def url(path_values: dict, query_values: dict) -> str:
        built = path.format(**path_values)
        if query_values:
            built += "?" + "&".join(f"{name}={value}" for name, value in query_values.items())
        return built

    found = []
    for name in path_ids:
        found.append((f"path {name}=2**64", url({**path_ids, name: 2**64}, query), {}))
    for parameter in parameters:
        if parameter["in"] == "query" and resolve(schema, parameter["schema"]).get("type") == "integer":
            for huge in HUGE:
                found.append(
                    (f"query {parameter['name']}={huge}", url(path_ids, {**query, parameter["name"]: huge}), {})
                )
    content = operation.get("requestBody", {}).get("content", {})
    target = url(path_ids, query)
    if "application/json" in content:
        body_schema = content["application/json"]["schema"]
        base = minimal(schema, body_schema)
        for where in integer_paths(schema, body_schema):
            for huge in HUGE:
                body = json.dumps(with_value(base, where, huge))
                found.append((f"body {'.'.join(map(str, where))}={huge}", target, {"json": body}))
        found.append(("body nested", target, {"json": deep_json()}))
        found.append(("body nested list", target, {"json": "[" * DEEP + "]" * DEEP}))
    elif "multipart/form-data" in content:
        properties = resolve(schema, content["multipart/form-data"]["schema"]).get("properties", {})
        for name, child in properties.items():
            child = resolve(schema, child)
            if child.get("format") == "binary" or child.get("readOnly"):
                continue
            if child.get("type") == "integer":
                for huge in HUGE:
                    found.append((f"form {name}={huge}", target, {"form": {name: str(huge)}}))
            else:
                found.append((f"form {name} nested", target, {"form": {name: deep_json()}}))
    if not found:
        found.append(("plain", target, {}))
    return found


def send(client: Client, method: str, url: str, headers: dict, request: dict):
    if "json" in request:
        return client.generic(method.upper(), url, request["json"].encode(), content_type="application/json", **headers)
    if "form" in request:
        return client.generic(method.upper(), url, *_multipart(request["form"]), **headers)
    return client.generic(method.upper(), url, **headers)


def _multipart(fields: dict) -> tuple[bytes, str]:
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    return encode_multipart(BOUNDARY, fields), MULTIPART_CONTENT


def test_no_operation_answers_5xx_to_nested_json_or_integers_out_of_range(schema, world):
    ids, headers = world
    failures, sent = [], 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for label, url, request in variants(schema, path, method, operation, ids):
                for caller in CALLERS:
                    cache.clear()  # sign-in and rate-limit counts of one request must not decide the next
                    client = Client(raise_request_exception=False)
                    with transaction.atomic():
                        response = send(client, method, url, headers[caller], request)
                        transaction.set_rollback(True)
                    sent += 1
                    if response.status_code >= 500:
                        failures.append(f"{method.upper()} {url} [{label}] as {caller}: {response.status_code}")
    assert sent > 700, sent
    assert not failures, f"{len(failures)} of {sent} answered 5xx:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/projects/?offset=18446744073709551616", "offset"),
        ("/api/v1/projects/{project_id}/images/?offset=18446744073709551616", "offset"),
        ("/api/v1/projects/18446744073709551616/", "project_id"),
        ("/api/v1/images/99999999999999999999999/", "image_id"),
    ],
)
def test_an_out_of_range_id_or_offset_is_refused_naming_it(world, url, field):
    ids, headers = world
    response = Client().get(url.format(**ids), **headers["admin"])
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"] and field in json.dumps(error)


def test_limit_is_capped(world):
    ids, headers = world
    response = Client().get(
        f"/api/v1/projects/{ids['project_id']}/images/?limit=18446744073709551616", **headers["admin"]
    )
    assert response.status_code == 200
    assert len(response.json()["results"]) == 6  # all there are: the cap (500) applies, not an overflow


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", "/api/v1/projects/", {"name": "Seeded", "split_seed": 2**64}, "split_seed"),
        ("post", "/api/v1/projects/{project_id}/training-runs/", {"seed": 2**64}, "seed"),
        ("post", "/api/v1/projects/{project_id}/members/", {"user": 2**64, "role": "annotator"}, "user"),
        ("post", "/api/v1/predict/batch/", {"image_ids": [2**64]}, "image_ids"),
    ],
)
def test_an_integer_out_of_range_in_a_body_is_refused_naming_it(world, method, url, body, field):
    ids, headers = world
    response = Client().generic(
        method.upper(), url.format(**ids), json.dumps(body), content_type="application/json", **headers["staff"]
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize("body", [deep_json(), "[" * DEEP + "]" * DEEP])
def test_a_deeply_nested_body_is_refused_before_parsing_even_unauthenticated(body):
    response = Client().post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nests 5000 levels deep" in response.json()["error"]["message"]


def form_field_names() -> set[str]:
    """Every form field name Quorum's templates render."""
    import re
    from pathlib import Path

    from projects.forms import ProjectForm
    from serving.forms import ApiClientForm, RoutingRuleForm

    names = set()
    for template in Path(__file__).resolve().parents[1].joinpath("templates").rglob("*.html"):
        names |= set(re.findall(r'name="([a-zA-Z_][\w-]*)"', template.read_text()))
    # and the Django forms the templates render whole (the serving page's with their prefixes)
    names |= set(ProjectForm.base_fields)
    names |= {f"client-{name}" for name in ApiClientForm.base_fields}
    names |= {f"rule-{name}" for name in RoutingRuleForm.base_fields}
    return names - {"csrfmiddlewaretoken"}


@pytest.mark.parametrize("value", [str(2**64), "NaN"])
def test_no_page_form_answers_5xx_to_numbers_out_of_range(world, value):
    """Every page that takes a POST, as staff, with every form field any page renders set to
    a number no field holds."""
    from django.contrib.auth import get_user_model

    from tests.test_permission_matrix import MATRIX, url_for

    ids, _ = world
    ids = {**ids, "name": "bus.jpg"}
    staff = get_user_model().objects.get(username="hostile-staff")
    fields = dict.fromkeys(form_field_names(), value)
    assert {"seed", "imgsz", "count", "retrain_min_new_images", "client-rate_limit_per_minute"} <= set(fields)
    failures = []
    for name, cells in MATRIX.items():
        for kind, cell in cells:
            if kind != "page" or cell.method != "POST" or name == "logout":
                continue
            client = Client(raise_request_exception=False)
            client.force_login(staff)
            actions = ("client-create", "rule-save", "client-rotate") if name == "project-serving" else ("",)
            for action in actions:
                with transaction.atomic():
                    response = client.post(url_for(name, ids), {**fields, "action": action})
                    transaction.set_rollback(True)
                if response.status_code >= 500:
                    failures.append(f"POST {name} action={action!r}: {response.status_code}")
    assert not failures, "\n".join(failures)


PAGE_NUMBERS = [
    ("project-create", "overlap_k", {"name": "P", "labels": "pedestrian", "conditions": "weather: sun",
                                     "train_percent": 80, "val_percent": 10, "test_percent": 10}),
    ("project-create", "split_seed", {"name": "P", "labels": "pedestrian", "conditions": "weather: sun",
                                      "overlap_k": 3, "train_percent": 80, "val_percent": 10, "test_percent": 10}),
    ("project-training", "seed", {}),
    ("project-training", "patience", {}),
    ("project-training", "imgsz", {}),
    ("project-training-policy", "retrain_min_new_images", {}),
    ("project-training-policy", "margin", {}),
    ("project-training-policy", "latency_budget_ms", {}),
    ("project-consensus", "iou_threshold", {}),
    ("project-consensus", "accept_f1", {}),
    ("serving-send-uncertain", "count", {}),
    ("project-annotators", "user", {}),
    ("project-serving", "client-rate_limit_per_minute", {"action": "client-create", "client-name": "cam"}),
    ("project-serving", "client", {"action": "client-rotate"}),
    ("project-serving", "rule", {"action": "rule-toggle"}),
]  # fmt: skip


def test_each_number_of_a_page_form_out_of_range_is_refused_not_a_5xx(world):
    """One field at a time, the rest as the page would send them: the refusal is the page's
    own (a message and a 4xx, or the page again), never a 500, and nothing is made of it."""
    from django.contrib.auth import get_user_model

    from projects.models import Project
    from tests.test_permission_matrix import url_for

    ids, _ = world
    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(username="hostile-staff"))
    projects, failures = Project.objects.count(), []
    for page, field, others in PAGE_NUMBERS:
        for value in (str(2**64), "-" + str(2**64), "NaN", "1e999"):
            with transaction.atomic():
                response = client.post(url_for(page, ids), {**others, field: value})
                made = Project.objects.count() - projects
                transaction.set_rollback(True)
            if response.status_code >= 500 or made:
                failures.append(f"{page} {field}={value}: {response.status_code}, {made} project(s) made")
    assert not failures, "\n".join(failures)
