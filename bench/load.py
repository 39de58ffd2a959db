"""Mixed load on the whole stack: 50 annotators and 5 prediction clients at once, for 60 s,
against gunicorn on PostgreSQL, with Redis as cache and broker and a Celery worker
computing consensus as images reach their k submissions.

Annotators loop next-task -> a draft save -> submit (closed loop, no think time); the
prediction clients are API clients (Bearer tokens) posting a 320x240 JPEG to
`POST /api/v1/predict/` in a loop, answered by a tiny yolo26n champion. Prints calls,
p50 and p95 per endpoint, the 5xx count, and checks that the submissions in the database
equal the 2xx answers the annotators got, that the prediction log holds one answered row
per 2xx prediction, and that the worker kept up (consensus rows for the completed images).
Exits 1 when any check fails.

    python bench/load.py [--seconds 60] [--annotators 50] [--predictors 5] [--onnx best.onnx]

Needs PostgreSQL (DATABASE_URL's server, or 127.0.0.1:5432) and Redis (the host of
CELERY_BROKER_URL, or 127.0.0.1:6379; databases 9 and 10 are used and flushed). Without
--onnx a tiny model is trained first (about 15 s).
"""

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import gunicorn_start, multipart
from annotate_load import ROOT, Client, Stats, annotate_loop, database_url, environment, percentile, run_python

IMAGES = 3000
SETUP = """
import json, sys
import django
django.setup()
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from projects.services import api_token_rotate
from datasets.models import Image
from projects.models import Membership, Project, Role
from groundtruth.models import ConsensusVersion
from groundtruth.computing import consensus_version_compute
from groundtruth.services import consensus_version_create
from serving.services import api_client_create
from training.models import DatasetSnapshot, ModelVersion, TrainingRun
from training.runtime import file_sha256
onnx, images, annotators, predictors = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
User = get_user_model()
users = [User.objects.create(username=f"load{i:03d}") for i in range(annotators)]
project = Project.objects.create(name="Load", overlap_k=3)
Image.objects.bulk_create(
    Image(project=project, file=f"load/{i}.jpg", original_name=f"{i}.jpg", sha256=f"{i:064x}", format="jpeg",
          width=1920, height=1080, bytes=1, split="train", shuffle_key=(i * 7919) % 100003)
    for i in range(images)
)
Membership.objects.bulk_create(Membership(project=project, user=u, role=Role.ANNOTATOR) for u in users)
version = consensus_version_compute(version_id=consensus_version_create(project=project, user=None).pk)
snapshot = DatasetSnapshot.objects.create(project=project, consensus_version=version, content_hash="0" * 64,
                                          storage_prefix="snapshots/load")
run = TrainingRun.objects.create(project=project, number=1, snapshot=snapshot, state="succeeded", imgsz=160)
with open(onnx, "rb") as file:
    name = default_storage.save("models/load/best.onnx", File(file))
ModelVersion.objects.create(project=project, number=1, run=run, snapshot=snapshot, consensus_version=version,
                            weights=name, weights_sha256="0" * 64, onnx=name, onnx_sha256=file_sha256(onnx),
                            architecture="yolo26n.yaml", imgsz=160, stage="champion")
clients = [api_client_create(name=f"camera {i}", projects=[project], user=None, rate_limit_per_minute=1_000_000)[1]
           for i in range(predictors)]
print(json.dumps({"project": project.pk, "tokens": [api_token_rotate(user=u).key for u in users],
                  "clients": clients}))
"""

COUNTS = """
import json, sys, django
django.setup()
from django.db.models import Count
from groundtruth.models import Annotation
from datasets.models import Image
from groundtruth.models import ImageConsensus
from serving.models import PredictionLog
project = int(sys.argv[1])
complete = Image.objects.filter(project_id=project, submitted_count__gte=3).count()
print(json.dumps({
    "submissions": Annotation.objects.filter(image__project_id=project).count(),
    "answered": PredictionLog.objects.filter(project_id=project, status=200).count(),
    "complete": complete,
    "consensus": ImageConsensus.objects.filter(image__project_id=project).count(),
}))
"""


def scene_jpeg() -> bytes:
    sys.path.insert(0, str(ROOT))
    from demo.synthetic import condition_cycle, render_scene

    buffer = io.BytesIO()
    render_scene(seed=7, conditions=condition_cycle()[0], size=(320, 240)).image.save(buffer, format="JPEG")
    return buffer.getvalue()


def predict_loop(port: int, token: str, data: bytes, stats: Stats, counts: dict, *, stop: float) -> None:
    body, content_type = multipart(data)
    client = Client(port, "unused")
    client.headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    while time.monotonic() < stop:
        started = time.perf_counter()
        client.connection.request("POST", "/api/v1/predict/", body=body, headers=client.headers)
        response = client.connection.getresponse()
        response.read()
        stats.add("predict", response.status, time.perf_counter() - started)
        with stats.lock:
            counts["predict 2xx"] += 200 <= response.status < 300


def redis_urls() -> tuple[str, str] | None:
    """The broker and cache URLs on the Redis that CELERY_BROKER_URL names (or the local
    one), databases 9 and 10, flushed; None without Redis."""
    import redis

    broker = os.environ.get("CELERY_BROKER_URL", "")
    parsed = urlparse(broker if broker.startswith("redis") else "redis://127.0.0.1:6379/0")
    base = f"redis://{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"
    try:
        for number in (9, 10):
            redis.Redis.from_url(f"{base}/{number}", socket_timeout=2).flushdb()
    except redis.RedisError:
        return None
    return f"{base}/9", f"{base}/10"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--predictors", type=int, default=5)
    parser.add_argument("--onnx", type=Path, help="a yolo26n ONNX export at 160 px (else one is trained)")
    args = parser.parse_args()
    urls = redis_urls()
    if urls is None:
        raise SystemExit("bench/load.py needs Redis: set CELERY_BROKER_URL=redis://... or start one on 127.0.0.1:6379")
    onnx = args.onnx
    if onnx is None:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        from tests.tiny_model import tiny_onnx_train

        onnx = tiny_onnx_train(Path(tempfile.mkdtemp(prefix="quorum-load-model-")))
    url, admin = database_url()
    env = {**environment(url), "CELERY_BROKER_URL": urls[0], "QUORUM_CACHE_URL": urls[1]}
    gunicorn = worker = None
    failures = []
    try:
        setup = json.loads(run_python(SETUP, env, str(onnx), str(IMAGES), str(args.annotators), str(args.predictors)))
        project, tokens, clients = setup["project"], setup["tokens"], setup["clients"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,groundtruth,inference",
             "--pool", "solo", "-n", f"load-{os.getpid()}@%h", "--without-mingle", "--without-gossip", "-l", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        gunicorn, port = gunicorn_start(env, workers=2, threads=8)
        data = scene_jpeg()
        warm_up = {"predict 2xx": 0}
        for _ in range(2):  # each gunicorn worker loads the model on its first prediction
            predict_loop(port, clients[0], data, Stats(), warm_up, stop=time.monotonic() + 0.5)

        stats, counts = Stats(), {"predict 2xx": 0}
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=annotate_loop, args=(Client(port, token), project, stats),
                             kwargs={"drafts": 1, "stop": stop})
            for token in tokens
        ] + [
            threading.Thread(target=predict_loop, args=(port, token, data, stats, counts), kwargs={"stop": stop})
            for token in clients
        ]  # fmt: skip
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        time.sleep(1.5)  # the prediction log's writer flushes within half a second
        deadline = time.monotonic() + 60
        while True:  # the worker finishes the consensus updates it was sent
            stored = json.loads(run_python(COUNTS, env, str(project)))
            if stored["consensus"] >= stored["complete"] or time.monotonic() > deadline:
                break
            time.sleep(1)
        print(f"load: {args.annotators} annotators + {args.predictors} prediction clients for {elapsed:.0f} s; "
              f"gunicorn 2 workers x 8 threads, PostgreSQL, Redis, one Celery worker")  # fmt: skip
        print(f"  {'endpoint':<10}{'calls':>8}{'per s':>8}{'p50 ms':>9}{'p95 ms':>9}{'5xx':>6}")
        server_errors = 0
        for name, values in sorted(stats.latency.items()):
            fives = sum(count for key, count in stats.errors.items() if key.startswith(f"{name} 5"))
            server_errors += fives
            print(f"  {name:<10}{len(values):>8}{len(values) / elapsed:>8.1f}"
                  f"{percentile(values, 0.5):>9.1f}{percentile(values, 0.95):>9.1f}{fives:>6}")  # fmt: skip
        others = {key: count for key, count in stats.errors.items() if not key.split()[-1].startswith("5")}
        print(f"  4xx answers: {others or 'none'}")
        print(f"  submissions in the database {stored['submissions']}, 2xx submit answers {stats.submitted}")
        answered = counts["predict 2xx"] + warm_up["predict 2xx"]
        print(f"  predictions logged as answered {stored['answered']}, 2xx predict answers {answered} "
              f"(with {warm_up['predict 2xx']} of the warm-up)")  # fmt: skip
        print(f"  images with k submissions {stored['complete']}, with their consensus computed {stored['consensus']}")
        if server_errors:
            failures.append(f"{server_errors} answers were 5xx")
        if stored["submissions"] != stats.submitted:
            failures.append("the submissions in the database differ from the 2xx answers")
        if stored["answered"] != answered:
            failures.append("the prediction log differs from the 2xx predictions")
        if stored["consensus"] < stored["complete"]:
            failures.append("the worker did not compute every completed image")
        if not stats.submitted or not counts["predict 2xx"]:
            failures.append("no work was done")
    finally:
        for process in (gunicorn, worker):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    print("  checks: " + ("all held" if not failures else "FAILED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
