"""Serving benchmark: one model, the same 200 images (synthetic street scenes, 1280x720
JPEGs), answered three ways, one image at a time:

  (a) ultralytics' PyTorch `predict` in process (the reference), from the JPEG's bytes
      (Pillow decode, then predict),
  (b) Quorum's ONNX Runtime path in process, from the same bytes (`decode_upright_rgb`,
      then `training.runtime.OnnxDetector`),
  (c) `POST /api/v1/predict/` over HTTP to gunicorn on PostgreSQL and Redis (when they
      answer here), as an API client, with the prediction log on (decode, auth, routing,
      inference, log, JSON).

The three take turns, 20 images at a time. Prints images/s and p50/p95 latency of each,
and the ratios b/a and c/b. Targets on the
CPU at 640 px: b at least 1.5x a; c within 20% of b. The model is yolo26n trained here for
one epoch at 640 px (its speed does not depend on what it learned).

    python bench/serving.py [--images 200] [--imgsz 640] [--watch SECONDS]

With --watch, the server stays up that many seconds more, answering the same images in a
loop, and the monitoring page's address and a staff account are printed: open it in a
browser to watch it fill.
"""

import argparse
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _setup import gunicorn_start, multipart

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETUP = """
import json, shutil, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.core.files.storage import default_storage
from django.core.files import File
from projects.models import Project
from groundtruth.models import ConsensusVersion
from serving.services import api_client_create
from training.models import DatasetSnapshot, ModelVersion, TrainingRun
from training.runtime import file_sha256
onnx, imgsz = sys.argv[1], int(sys.argv[2])
project = Project.objects.create(name="Serving bench")
version = ConsensusVersion.objects.create(project=project, number=1, state="done", is_current=True, code_version="b")
snapshot = DatasetSnapshot.objects.create(project=project, consensus_version=version, content_hash="0" * 64,
                                          storage_prefix="snapshots/bench")
run = TrainingRun.objects.create(project=project, number=1, snapshot=snapshot, state="succeeded", imgsz=imgsz)
with open(onnx, "rb") as file:
    name = default_storage.save("models/bench/best.onnx", File(file))
ModelVersion.objects.create(project=project, number=1, run=run, snapshot=snapshot, consensus_version=version,
                            weights=name, weights_sha256="0" * 64, onnx=name, onnx_sha256=file_sha256(onnx),
                            architecture="yolo26n.yaml", imgsz=imgsz, stage="champion")
client, token = api_client_create(name="bench", projects=[project], user=None, rate_limit_per_minute=100000)
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("bench-admin", password=sys.argv[3], is_staff=True)
print(json.dumps({"project": project.pk, "token": token}))
"""


def train_model(folder: Path, imgsz: int) -> tuple[Path, Path]:
    """yolo26n trained one epoch on 16 synthetic scenes: its best.pt and best.onnx."""
    from tests.tiny_model import tiny_onnx_train

    onnx = tiny_onnx_train(folder, imgsz=imgsz)
    return onnx.with_suffix(".pt"), onnx


def scenes(count: int) -> list[bytes]:
    from demo.synthetic import condition_cycle, render_scene

    conditions = condition_cycle()
    out = []
    for index in range(count):
        buffer = io.BytesIO()
        render_scene(seed=50_000 + index, conditions=conditions[index % len(conditions)]).image.save(
            buffer, format="JPEG", quality=90
        )
        out.append(buffer.getvalue())
    return out


def timed(function, items) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        function(item)
        times.append(time.perf_counter() - started)
    return times


def line(label: str, times: list[float]) -> str:
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    return f"{label:44}{len(times) / sum(times):10.1f}{p50:10.1f}{p95:10.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--watch", type=float, default=0.0, help="seconds more of load, to watch the monitoring page")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    work = Path(tempfile.mkdtemp(prefix="quorum-bench-serving-"))
    os.environ["QUORUM_VAR_DIR"] = str(work / "var")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
    import django

    django.setup()
    from PIL import Image
    from ultralytics import YOLO

    from datasets.imaging import decode_upright_rgb
    from training.runtime import OnnxDetector

    gunicorn = None
    database, admin = None, None
    try:
        started = time.perf_counter()
        weights, onnx = train_model(work / "model", args.imgsz)
        jpegs = scenes(args.images)
        print(f"{args.images} scenes 1280x720, yolo26n at {args.imgsz} px, CPU, one image at a time "
              f"(model trained and scenes made in {time.perf_counter() - started:.0f} s)")  # fmt: skip
        print(f"{'':44}{'images/s':>10}{'p50 ms':>10}{'p95 ms':>10}")

        torch_model = YOLO(str(weights), task="detect")

        def torch_path(data: bytes):
            bgr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1]
            return torch_model.predict(bgr, imgsz=args.imgsz, verbose=False)

        detector = OnnxDetector(onnx, imgsz=args.imgsz)

        def quorum_path(data: bytes):
            rgb = np.asarray(decode_upright_rgb(io.BytesIO(data), max_pixels=50_000_000).image)
            return detector.predict(rgb)

        database, admin = _database()
        env = {
            **os.environ, "DATABASE_URL": database, "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "CELERY_BROKER_URL": "memory://",
            "QUORUM_LOG_LEVEL": "WARNING", "QUORUM_STATIC_MANIFEST": "0", "QUORUM_CACHE_URL": _cache_url(),
        }  # fmt: skip
        (work / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(12)
        setup = subprocess.run([sys.executable, "-c", SETUP, str(onnx), str(args.imgsz), password], cwd=ROOT, env=env,
                               capture_output=True, text=True)  # fmt: skip
        if setup.returncode:
            raise SystemExit(setup.stderr[-3000:])
        config = json.loads(setup.stdout.strip().splitlines()[-1])
        gunicorn, port = gunicorn_start(env, workers=1, threads=4)
        connection = None
        headers = {"Authorization": f"Bearer {config['token']}"}

        def post(data: bytes) -> None:
            nonlocal connection
            if connection is None:  # anew after the other paths' turn: the server closes idle ones
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body, content_type = multipart(data)
            connection.request("POST", "/api/v1/predict/", body=body, headers={**headers, "Content-Type": content_type})
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise SystemExit(f"predict answered {response.status}: {payload[:500]!r}")
            server_ms.append(json.loads(payload)["latency_ms"])

        server_ms: list[float] = []
        if args.watch:
            print(f"watch: http://127.0.0.1:{port}/projects/{config['project']}/monitoring/ "
                  f"(sign in as bench-admin / {password})", flush=True)  # fmt: skip
        for warm_up in (torch_path, quorum_path, post):  # the first call loads or allocates
            warm_up(jpegs[0])
        server_ms.clear()
        # The three paths take turns, 20 images at a time, so that a change in
        # the machine's speed during the run (this one is shared) falls on all three alike.
        a, b, c = [], [], []
        step = 20
        for start in range(0, len(jpegs), step):
            chunk = jpegs[start : start + step]
            a += timed(torch_path, chunk)
            b += timed(quorum_path, chunk)
            connection = None
            c += timed(post, chunk)
        print(line("(a) ultralytics PyTorch predict", a))
        print(line("(b) Quorum ONNX Runtime path", b))
        print(line("(c) POST /api/v1/predict/ (gunicorn, logged)", c))
        print(f"    of which the server's decode + route + inference (its latency_ms): p50 "
              f"{statistics.median(server_ms):.1f} ms")  # fmt: skip
        deadline = time.monotonic() + args.watch
        while time.monotonic() < deadline:
            for data in jpegs:
                post(data)
                if time.monotonic() >= deadline:
                    break
        rate = {name: len(times) / sum(times) for name, times in (("a", a), ("b", b), ("c", c))}
        print(f"b/a = {rate['b'] / rate['a']:.2f} (target >= 1.5); c/b = {rate['c'] / rate['b']:.2f} "
              f"(target >= 0.8); p50 b/a = {statistics.median(a) / statistics.median(b):.2f}")  # fmt: skip
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        if admin is not None:
            import psycopg

            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {database.rsplit('/', 1)[1]} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)


def _cache_url() -> str:
    """Redis as in production (the server keeps its serving state only with a shared
    cache: serving/state.py), when it answers here; else none."""
    url = os.environ.get("QUORUM_CACHE_URL", "redis://127.0.0.1:6379/11")
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001 - any failure means no Redis for the bench
        return ""
    return url


def _database() -> tuple[str, str | None]:
    """A fresh PostgreSQL database when one is configured or local, else a SQLite file."""
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not base.startswith("postgres"):
        return f"sqlite:///{os.environ['QUORUM_VAR_DIR']}/bench.sqlite3", None
    name = f"quorum_bench_serving_{os.getpid()}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError:
        return f"sqlite:///{os.environ['QUORUM_VAR_DIR']}/bench.sqlite3", None
    return base.rsplit("/", 1)[0] + "/" + name, admin


if __name__ == "__main__":
    main()
