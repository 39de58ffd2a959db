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
