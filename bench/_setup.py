"""Shared set-up for benchmarks: Django on a throwaway test database and var/ folder."""

import contextlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def django_test_database():
    """Django set up with a fresh test database (SQLite, or DATABASE_URL's server) and a
    temporary var/ folder; both are removed afterwards."""
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="quorum-bench-") as var_dir:
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key")
        os.environ["QUORUM_VAR_DIR"] = var_dir
        os.environ["QUORUM_STATIC_MANIFEST"] = "0"
        os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
        import logging
        import warnings

        import django

        warnings.filterwarnings("ignore", message="No directory at")
        django.setup()
        logging.getLogger("kombu").setLevel(logging.ERROR)
        from django.conf import settings
        from django.db import connection
        from django.test.utils import setup_test_environment

        setup_test_environment()
        settings.ALLOWED_HOSTS = ["testserver"]
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            yield Path(var_dir)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def gunicorn_start(env: dict, *, workers: int, threads: int):
    """gunicorn (gthread) serving Quorum on a free local port with `env`, once it accepts
    connections: (the process, its port)."""
    import socket
    import subprocess
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return process, port


def multipart(data: bytes) -> tuple[bytes, str]:
    """A multipart body carrying `data` as the JPEG field `image`, and its content type."""
    import uuid

    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="scene.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"
