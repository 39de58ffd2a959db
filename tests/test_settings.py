"""config/settings.py boots on embedded defaults, refuses an unsafe production start,
and keeps ultralytics offline in every process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, os, django
django.setup()
from django.conf import settings
from config.celery import app
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": app.conf.broker_url,
    "broker_folder": app.conf.broker_transport_options.get("data_folder_in"),
    "media_root": str(settings.MEDIA_ROOT),
    "debug": settings.DEBUG,
}))
"""


def run_python(code: str, *, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=timeout
    )


def test_boots_on_sqlite_and_filesystem_broker_with_no_environment(var_dir):
    # given no DATABASE_URL, no CELERY_BROKER_URL and no secret key, as `make run` starts
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "QUORUM_VAR_DIR": str(var_dir)}
    # when the app boots and `manage.py check` runs
    probe = run_python(PROBE, env=env)
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then it runs on SQLite and the filesystem broker, both under var/
    assert probe.returncode == 0, probe.stderr
    config = json.loads(probe.stdout)
    assert config["engine"] == "django.db.backends.sqlite3"
    assert config["db_name"] == str(var_dir / "quorum.sqlite3")
    assert config["broker"].startswith("filesystem://")
    assert config["broker_folder"] == str(var_dir / "broker" / "queue")
    assert (var_dir / "broker" / "queue").is_dir()
    assert config["media_root"] == str(var_dir / "media")
    assert check.returncode == 0, check.stdout + check.stderr
    # and DEBUG is off, the key generated once is kept for the next process, readable by its owner only
    assert config["debug"] is False
    assert (var_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    again = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)", env=env
    )
    assert again.stdout.strip() == (var_dir / "secret_key").read_text().strip()


def test_uses_postgres_and_redis_when_configured(var_dir):
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "x" * 50,
        "QUORUM_VAR_DIR": str(var_dir),
        "DATABASE_URL": "postgres://quorum:pw@db.example:5432/quorum",
        "CELERY_BROKER_URL": "redis://cache.example:6379/3",
    }
    probe = run_python(PROBE, env=env)
    assert probe.returncode == 0, probe.stderr
    config = json.loads(probe.stdout)
    assert config["engine"] == "django.db.backends.postgresql"
    assert config["db_name"] == "quorum"
    assert config["broker"] == "redis://cache.example:6379/3"
    assert config["debug"] is False


def test_refuses_to_start_on_a_database_server_without_secret_key_when_debug_is_off(var_dir):
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "QUORUM_VAR_DIR": str(var_dir),
        "DATABASE_URL": "postgres://quorum:pw@db.example:5432/quorum",
    }
    result = run_python("import django; django.setup()", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert not (var_dir / "secret_key").exists()


def test_production_cookies_are_secure_and_headers_strict(var_dir):
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "x" * 50, "QUORUM_VAR_DIR": str(var_dir)}
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SECURE_CONTENT_TYPE_NOSNIFF, s.X_FRAME_OPTIONS, s.DATA_UPLOAD_MAX_MEMORY_SIZE > 0, "
        "s.STORAGES['staticfiles']['BACKEND']]))"
    )
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        True,
        True,
        True,
        True,
        "DENY",
        True,
        "config.staticfiles.ModuleManifestStaticFilesStorage",  # WhiteNoise's, rewriting module imports
    ]


@pytest.mark.parametrize("entry", ["django", "celery"])
def test_ultralytics_is_offline_in_web_and_worker_processes(var_dir, entry):
    # given a process started the way the web server (Django) or a worker (Celery) starts
    setup = (
        "import django; django.setup()"
        if entry == "django"
        else "from config.celery import app; app.loader.import_default_modules()"
    )
    code = (
        f"{setup}\n"
        "import json, ultralytics.utils as u\n"
        "print(json.dumps([u.ONLINE, u.AUTOINSTALL, str(u.USER_CONFIG_DIR)]))\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", "QUORUM_VAR_DIR": str(var_dir)}
    # when ultralytics is imported afterwards
    result = run_python(code, env=env, timeout=180)
    # then it believes it is offline, will not pip-install, and keeps its settings under var/
    assert result.returncode == 0, result.stderr
    online, autoinstall, config_dir = json.loads(result.stdout.strip().splitlines()[-1])
    assert online is False
    assert autoinstall is False
    assert config_dir.startswith(str(var_dir / "ultralytics"))


def test_the_embedded_database_holds_several_writers(var_dir):
    # SQLite's guidance for concurrent writers: WAL, a busy timeout, BEGIN IMMEDIATE
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "QUORUM_VAR_DIR": str(var_dir)}
    code = (
        "import django; django.setup(); from django.db import connection as c; cursor = c.cursor(); "
        "cursor.execute('PRAGMA journal_mode'); mode = cursor.fetchone()[0]; cursor.execute('PRAGMA busy_timeout'); "
        "print(mode, cursor.fetchone()[0], c.transaction_mode)"
    )
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "30000", "IMMEDIATE"]
