"""Fixtures shared by every test, and the rule for tests that need a real service.

A test marked `postgres`, `redis`, `browser` or `worker` needs that service. Without it the
test skips with the reason, unless REQUIRE_SERVICES=1, which turns the skip into a failure
so that CI cannot pass by skipping.
"""

import os
import shutil
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from rest_framework.test import APIClient

from projects.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.storage import FILESYSTEM, is_s3, s3_storage, unique_prefix

CHROMIUM = "/usr/bin/chromium"


def postgres_programs() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl, pg_dump), newest first."""
    folders = Path("/usr/lib/postgresql").glob("*/bin")
    for folder in sorted(folders, key=lambda path: (len(path.parent.name), path.parent.name), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _missing_service(marker: str) -> str | None:
    """Why the service behind `marker` is unavailable, or None when it is there."""
    if marker == "postgres":
        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if marker == "redis":
        url = settings.CELERY_BROKER_URL
        if not url.startswith("redis"):
            return "needs Redis: set CELERY_BROKER_URL=redis://..."
        parsed = urlparse(url)
        try:
            socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2).close()
        except OSError as error:
            return f"Redis at {parsed.hostname}:{parsed.port} is unreachable: {error}"
    if marker == "redis_server" and shutil.which("redis-server") is None:
        return "needs the redis-server program, to start and stop a Redis of its own"
    if marker == "postgres_server" and postgres_programs() is None:
        return "needs PostgreSQL's initdb and pg_ctl (/usr/lib/postgresql/*/bin), to run a PostgreSQL of its own"
    if marker == "shell_tools":
        missing = [program for program in ("bash", "curl", "jq") if shutil.which(program) is None]
        if missing:
            return f"needs {', '.join(missing)} (apt-get install -y curl jq), which the guides' shell examples use"
    if marker == "browser":
        if not os.path.exists(CHROMIUM):
            return f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)"
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return "needs the playwright Python package"
    return None


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") and "tests.parallel" not in sys.modules:
        raise pytest.UsageError(
            "Several test processes share Redis and var/ unless each has its own: "
            "run `python -m pytest -p tests.parallel -n 2` (as `make test` does)."
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("postgres", "redis", "redis_server", "postgres_server", "shell_tools", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing_service(marker)
        if reason is None:
            continue
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 and {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    if is_s3():  # media on the S3 server (CI): this test's own key prefix in the bucket
        storage = settings.STORAGES["default"]
        settings.STORAGES = {
            **settings.STORAGES, "default": {**storage, "OPTIONS": {**storage["OPTIONS"], "location": unique_prefix()}}
        }  # fmt: skip
    # Deliberately slow hashing is a production defence, not something to test thousands of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Counts kept in the cache (sign-in attempts per address, API clients' rate limits) are
    # one test's own: with a shared cache (Redis in CI) they would otherwise add up across tests.
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _s3_connections_kept():
    """Each test has an S3 storage of its own (its key prefix), and boto3 takes about 0.1 s
    to build the resource a storage talks through: each thread keeps one per server and
    credentials for the session instead (a resource is not shared between threads)."""
    from storages.backends.s3 import S3Storage

    original = S3Storage.connection
    made = {}

    def connection(storage):
        key = (
            threading.get_ident(), storage.endpoint_url, storage.region_name, storage.access_key,
            storage.secret_key, storage.signature_version, storage.addressing_style,
        )  # fmt: skip
        if key not in made:
            made[key] = original.fget(storage)
        return made[key]

    S3Storage.connection = property(connection)
    yield
    S3Storage.connection = original


@pytest.fixture(scope="session")
def s3_server():
    """The S3 server the tests use: CI's (QUORUM_S3_ENDPOINT_URL), else one started here."""
    configured = _configured_storage()
    if is_s3(configured):
        yield configured["OPTIONS"]
        return
    from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, s3_server_start

    process, endpoint = s3_server_start("quorum-test")
    try:
        yield {
            "bucket_name": "quorum-test", "endpoint_url": endpoint, "region_name": REGION,
            "access_key": ACCESS_KEY, "secret_key": SECRET_KEY,
        }  # fmt: skip
    finally:
        process.kill()
        process.wait()


def _configured_storage() -> dict:
    from config.settings import STORAGES

    return STORAGES["default"]


@pytest.fixture
def s3_media(settings, s3_server) -> dict:
    """This test's media on the S3 server, whatever the suite's storage; its options."""
    if not is_s3():
        credentials = {key: s3_server[key] for key in ("access_key", "secret_key") if key in s3_server}
        settings.STORAGES = {
            **settings.STORAGES,
            "default": s3_storage(
                bucket=s3_server["bucket_name"], endpoint=s3_server["endpoint_url"],
                region=s3_server["region_name"], location=unique_prefix(), **credentials,
            ),
        }  # fmt: skip
    return settings.STORAGES["default"]["OPTIONS"]


@pytest.fixture
def filesystem_media(settings) -> None:
    """This test's media in its own folder, whatever the suite's storage (for a test that
    reads the canvas' pixels: a canvas that drew an image from another origin is not
    readable)."""
    settings.STORAGES = {**settings.STORAGES, "default": FILESYSTEM}


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@dataclass
class People:
    """One project with a member of every role, a second project, and a staff user."""

    project: object
    other_project: object
    annotator: object
    reviewer: object
    project_admin: object
    outsider: object
    staff: object


@pytest.fixture
def people(db) -> People:
    project = ProjectFactory(name="Project A")
    other_project = ProjectFactory(name="Project B")
    return People(
        project=project,
        other_project=other_project,
        annotator=MembershipFactory(project=project, user__username="anna", role=Role.ANNOTATOR).user,
        reviewer=MembershipFactory(project=project, user__username="rita", role=Role.REVIEWER).user,
        project_admin=MembershipFactory(project=project, user__username="adam", role=Role.ADMIN).user,
        outsider=MembershipFactory(project=other_project, user__username="otto", role=Role.ANNOTATOR).user,
        staff=UserFactory(username="sam", is_staff=True),
    )


def sign_in(page, base_url: str, username: str) -> None:
    """Sign `username` (a test user, password PASSWORD) in through the login form."""
    from tests.factories import PASSWORD

    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def errors_collected(page) -> list[str]:
    """The page's console errors and uncaught exceptions, as they come (a test ends by
    asserting the list is empty)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def screenshot(page, name: str) -> None:
    """With QUORUM_SCREENSHOTS=<folder> (`make screenshots`), the page as the README shows
    it, saved as <folder>/<name>.png; screenshots are never committed."""
    folder = os.environ.get("QUORUM_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def chromium_args() -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
    ]


@pytest.fixture
def browser():
    """A headless Debian chromium driven by Playwright; nothing is downloaded."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # meanwhile are still synchronous, but Django keeps their connection apart (asgiref's
    # context-local), so it is closed here, before the loop goes.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(), headless=True)
        try:
            yield instance
        finally:
            instance.close()
            connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def var_dir(tmp_path):
    """An empty var/ for a subprocess that must not touch the developer's."""
    path = tmp_path / "var"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """A tiny trained detector's ONNX export, made once per test session (tests/tiny_model.py)."""
    from tests.tiny_model import tiny_onnx_train

    return tiny_onnx_train(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def starter_onnx(tmp_path_factory):
    """The tiny detector trained one epoch from the starter checkpoint: a model that finds
    pedestrians, for checks that need boxes to compare."""
    from tests.tiny_model import tiny_onnx_train

    return tiny_onnx_train(tmp_path_factory.mktemp("starter-model"), from_starter=True)
