"""Schema fuzzing: schemathesis generates requests for every operation of `/api/schema/`
(bounded: `QUORUM_FUZZ_EXAMPLES` per operation and caller, 6 unless set) and sends them
as each kind of caller, with the path's ids pointing at a real project's objects. No
answer may be a 5xx, and every answer must match the schema where it documents one."""

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from annotation.models import Assignment
from config.wsgi import application
from projects.models import Role
from projects.services import api_token_rotate
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory, UserFactory

EXAMPLES = int(os.environ.get("QUORUM_FUZZ_EXAMPLES", "6"))
CALLERS = ["anonymous", "annotator", "reviewer", "admin", "staff"]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(params=CALLERS)
def caller(request, db):
    """A small project (3 image rows, one leased to its annotator) and the headers of one caller."""
    project = ProjectFactory(name="Fuzzed")
    users = {
        role: MembershipFactory(project=project, user__username=f"fuzz-{role}", role=role).user
        for role in (Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN)
    }
    users["staff"] = UserFactory(username="fuzz-staff", is_staff=True)
    images = [ImageFactory(project=project) for _ in range(3)]
    assignment = Assignment.objects.create(
        image=images[0], annotator=users[Role.ANNOTATOR], leased_at="2026-01-01T00:00Z",
        lease_expires_at="2999-01-01T00:00Z",
    )  # fmt: skip
    ids = {
        "project_id": project.pk, "image_id": images[1].pk, "assignment_id": assignment.pk,
        "user_id": users[Role.ANNOTATOR].pk,
    }  # fmt: skip
    user = users.get(request.param)
    headers = {"Authorization": f"Token {api_token_rotate(user=user).key}"} if user else {}
    # as Django's test client does: a request must not close the test's transaction
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield ids, headers
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
def test_no_operation_answers_5xx_or_off_schema(case, caller):
    ids, headers = caller
    if case.path_parameters:
        case.path_parameters = {name: ids.get(name, value) for name, value in case.path_parameters.items()}
    case.call_and_validate(
        headers=headers, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
    )
