"""/healthz: 200 when the database and the broker answer, 503 when either does not."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_healthz_is_200_with_services_up(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    # failure details name hosts: anonymous callers do not get them
    assert "detail" not in body["database"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_when_the_broker_is_unreachable(client, monkeypatch, people):
    # given a broker URL where nothing listens (port 1 on loopback refuses at once);
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf, "broker_transport_options", {})
    client.force_login(people.staff)
    # when a load balancer asks
    response = client.get(reverse("healthz"))
    # then the answer is 503, the database still reported up, the reason shown to staff
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["broker"]["ok"] is False
    assert "Connection refused" in body["broker"]["detail"] or "Error 111" in body["broker"]["detail"]
    assert body["database"]["ok"] is True


def test_healthz_is_503_when_the_filesystem_broker_folder_is_gone(client, monkeypatch, tmp_path):
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    missing = str(tmp_path / "no-such-folder")
    monkeypatch.setitem(app.conf, "broker_transport_options", {"data_folder_in": missing, "data_folder_out": missing})
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    # A separate process, so that this test's own database connection is left alone.
    code = (
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/healthz')\n"
        "print(json.dumps([response.status_code, response.json()]))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "QUORUM_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["database"]["ok"] is False
    assert body["broker"]["ok"] is True
    assert "workers" not in body
