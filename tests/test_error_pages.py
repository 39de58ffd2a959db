"""With DEBUG off (as `make run` runs), every error is Quorum's own page or, under /api/,
its JSON error shape: never Django's technical page with settings, paths, source and the
request's values. tests/demo/test_rundev.py probes the same through `make run` itself."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

TECHNICAL = ("Traceback", "hunter2", "RuntimeError", "settings.py", "DEBUG = True", "Request information", "SECRET_KEY")


@pytest.fixture
def plain(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.error_urls"
    return Client(raise_request_exception=False)


def assert_not_technical(response) -> str:
    body = response.content.decode()
    assert not [marker for marker in TECHNICAL if marker in body], body[:2000]
    return body


def test_an_unexpected_error_is_quorums_page_and_json(plain):
    page = plain.get("/boom/")
    assert page.status_code == 500 and "Something went wrong" in assert_not_technical(page)
    api = plain.get("/api/v1/boom/")
    assert api.status_code == 500
    assert_not_technical(api)
    assert api.json() == {"error": {"status": 500, "code": "server_error", "message": "Internal server error."}}


def test_bad_host_csrf_and_forbidden_pages_are_quorums(plain, people):
    bad_host = plain.get("/", HTTP_HOST="evil.example")
    assert bad_host.status_code == 400 and "could not read this request" in assert_not_technical(bad_host)
    csrf = Client(enforce_csrf_checks=True, raise_request_exception=False)
    refused = csrf.post("/login/", {"username": "anna", "password": "x"})
    assert refused.status_code == 403 and "did not come from Quorum" in assert_not_technical(refused)
    plain.force_login(people.annotator)
    forbidden = plain.get(f"/projects/{people.project.pk}/splits/")
    assert forbidden.status_code == 403 and "Not allowed" in assert_not_technical(forbidden)
    missing = plain.get("/no/such/page/")
    assert missing.status_code == 404 and "There is nothing here" in assert_not_technical(missing)
