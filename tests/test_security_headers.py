"""Every page and API answer carries the security headers; no page allows inline script."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["login", "api-docs", "api-schema", "healthz"])
def test_security_headers(client, name):
    response = client.get(reverse(name))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline'; " not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy


def test_login_form_carries_a_csrf_token(client):
    html = client.get(reverse("login")).content.decode()
    assert 'name="csrfmiddlewaretoken"' in html


def test_favicon_is_served_locally(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("quorum/favicon.svg")
    assert client.get(response["Location"]).status_code == 200


def test_api_docs_page_is_not_listed_in_the_schema(client):
    paths = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()["paths"]
    assert "/api/docs/" not in paths
