"""Serving benchmark: one model, the same 200 images (synthetic street scenes, 1280x720
JPEGs), answered one image at a time by:

  (r) ultralytics' own ONNX predictor, `YOLO(best.onnx).predict`, from the JPEG's bytes
      (Pillow decode, then predict): the reference, the same ONNX file on the same ONNX
      Runtime, with ultralytics' pre- and post-processing,
  (t) ultralytics' PyTorch predict of the same model (`YOLO(best.pt)`), a second line,
  (b) Quorum's ONNX Runtime path in process, from the same bytes (`decode_upright_rgb`,
      then `training.runtime.OnnxDetector`),
  (c) `POST /api/v1/predict/` over HTTP to gunicorn on PostgreSQL and Redis (when they
      answer here), as an API client, with the prediction log on (decode, auth, routing,
      inference, log, JSON).

The paths take turns, 20 images at a time; each turn is one measurement, so each path is
measured 10 times (at least 3). Prints each path's images/s (median and range over the
turns) and p50/p95 latency, and the ratios b/r, b/t and c/b (median and range of the
per-turn ratios). Then concurrency in one process: 4 threads predicting the same images
through one OnnxDetector, with the lock `forward` held before (one `session.run` at a
time) and without it (now), 3 runs each. Targets on the CPU at 640 px: b/r >= 0.9 (Quorum's
path costs no more than ultralytics' own ONNX predictor, give or take 10%); c/b >= 0.8;
concurrent without the lock >= 1.0x with it. Exits 1 when one is missed.

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
import threading
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


def spread(values: list[float]) -> str:
    """Median and range, as every benchmark prints them."""
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def line(label: str, turns: list[list[float]]) -> str:
    times = [t for turn in turns for t in turn]
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    rates = [len(turn) / sum(turn) for turn in turns]
    return f"{label:48}{spread(rates):>24}{p50:10.1f}{p95:10.1f}"


def concurrent_rate(predict, images: list, threads: int) -> float:
    """Images/s of `threads` threads sharing `predict`, each through the whole list."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(lambda _: [predict(rgb) for rgb in images], range(threads)):
            pass
    return threads * len(images) / (time.perf_counter() - started)


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

        onnx_model = YOLO(str(onnx), task="detect")
        torch_model = YOLO(str(weights), task="detect")

        def bgr_of(data: bytes) -> np.ndarray:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1]

        def reference_path(data: bytes):
            return onnx_model.predict(bgr_of(data), imgsz=args.imgsz, verbose=False)

        def torch_path(data: bytes):
            return torch_model.predict(bgr_of(data), imgsz=args.imgsz, verbose=False)

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
        paths = {"r": reference_path, "t": torch_path, "b": quorum_path, "c": post}
        for warm_up in paths.values():  # the first call loads or allocates
            warm_up(jpegs[0])
        server_ms.clear()
        # The paths take turns, 20 images at a time, so that a change in the machine's
        # speed during the run (this one is shared) falls on all of them alike.
        turns: dict[str, list[list[float]]] = {name: [] for name in paths}
        step = 20
        for start in range(0, len(jpegs), step):
            chunk = jpegs[start : start + step]
            for name, path in paths.items():
                connection = None
                turns[name].append(timed(path, chunk))
        print(f"{'':48}{'images/s median [range]':>24}{'p50 ms':>10}{'p95 ms':>10}")
        print(line("(r) ultralytics ONNX predict (reference)", turns["r"]))
        print(line("(t) ultralytics PyTorch predict", turns["t"]))
        print(line("(b) Quorum ONNX Runtime path", turns["b"]))
        print(line("(c) POST /api/v1/predict/ (gunicorn, logged)", turns["c"]))
        print(f"    of which the server's decode + route + inference (its latency_ms): p50 "
              f"{statistics.median(server_ms):.1f} ms")  # fmt: skip

        def rate_ratios(numerator: str, denominator: str) -> list[float]:
            """Per turn: images/s of `numerator` over images/s of `denominator` (same images)."""
            pairs = zip(turns[numerator], turns[denominator], strict=True)
            return [sum(denominator_times) / sum(numerator_times) for numerator_times, denominator_times in pairs]

        b_r, b_t, c_b = rate_ratios("b", "r"), rate_ratios("b", "t"), rate_ratios("c", "b")
        print(f"b/r = {spread(b_r)} (target >= 0.9); b/t = {spread(b_t)}; c/b = {spread(c_b)} (target >= 0.8)")

        # Concurrency in one process: 4 threads on one detector, with the old lock and without.
        rgbs = [np.asarray(decode_upright_rgb(io.BytesIO(data), max_pixels=50_000_000).image) for data in jpegs[:40]]
        lock = threading.Lock()

        def locked(rgb):
            with lock:  # what OnnxDetector.forward held before: one session.run at a time
                return detector.predict(rgb)

        runs = {"locked (before)": [], "no lock (now)": []}
        for _ in range(3):
            runs["locked (before)"].append(concurrent_rate(locked, rgbs, threads=4))
            runs["no lock (now)"].append(concurrent_rate(detector.predict, rgbs, threads=4))
        for label, rates in runs.items():
            print(f"4 threads, one OnnxDetector, {label:18} {spread(rates)} images/s")
        gain = [after / before for before, after in zip(runs["locked (before)"], runs["no lock (now)"], strict=True)]
        print(f"no lock / locked = {spread(gain)} (target >= 1.0)")
        deadline = time.monotonic() + args.watch
        while time.monotonic() < deadline:
            for data in jpegs:
                post(data)
                if time.monotonic() >= deadline:
                    break
        missed = [
            name
            for name, values, target in (("b/r", b_r, 0.9), ("c/b", c_b, 0.8), ("no lock / locked", gain, 1.0))
            if statistics.median(values) < target
        ]
        if missed:
            print(f"MISSED: {', '.join(missed)}")
            raise SystemExit(1)
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
