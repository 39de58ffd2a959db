"""The embedded default under a team: `make run` (the development server, a worker and beat
on SQLite and the filesystem broker) with 1, 8 and 20 annotators working at once, beside
the same `make run` on PostgreSQL (same server, same loop, same images), measured in the
same run.

Each annotator is an HTTP client looping next-task -> a draft save -> submit with no think
time, for `--seconds` per run, on a project of its own per run (3,000 images, k = 3). Per
backend and team size, over `--repeats` runs: loops/s, p95 of every call, 5xx answers and
lost writes (2xx submit answers without a stored submission, or the reverse), each as the
median and the range. Then 12 uploads of 12 images each at once: 5xx answers, and whether
the stored images are exactly those the answers call stored (rows and files). The target:
on the embedded default, no 5xx and nothing lost at any team size or in the uploads, and at
least `TARGET_RATIO` of PostgreSQL's loops/s with 20 annotators. Exits 1 when it is missed.

    python bench/embedded.py [--seconds 10] [--annotators 1,8,20] [--repeats 3] [--only sqlite]

The PostgreSQL side needs a server (DATABASE_URL's, or 127.0.0.1:5432 as postgres); a
database of its own is made and dropped.
"""

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotate_load import Client

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 3000
# The embedded default must keep at least this share of PostgreSQL's loops/s at 20 annotators.
TARGET_RATIO = 0.5

SETUP = """
import json, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from datasets.models import Image
from projects.models import Membership, Project, Role
from projects.services import api_token_rotate
User = get_user_model()
annotators, runs, images = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
users = [User.objects.create(username=f"team{i:03d}") for i in range(annotators)]
staff = User.objects.create(username="team-admin", is_staff=True)
uploads = Project.objects.create(name="Team uploads")
out = {"tokens": [api_token_rotate(user=u).key for u in users], "projects": [], "admin": api_token_rotate(user=staff).key,
       "uploads": uploads.pk}
for run in range(runs):
    project = Project.objects.create(name=f"Team run {run}", overlap_k=3)
    Image.objects.bulk_create(
        Image(project=project, file=f"team/{run}/{i}.jpg", original_name=f"{i}.jpg", sha256=f"{run:08x}{i:056x}",
              format="jpeg", width=1920, height=1080, bytes=1, split="train", shuffle_key=(i * 7919) % 100003)
        for i in range(images)
    )
    Membership.objects.bulk_create(Membership(project=project, user=u, role=Role.ANNOTATOR) for u in users)
    out["projects"].append(project.pk)
print(json.dumps(out))
"""

STORED = """
import json, sys, django
django.setup()
from django.conf import settings
from datasets.models import Image
rows = list(Image.objects.filter(project_id=int(sys.argv[1])).values_list("pk", "file"))
files = [str(p.relative_to(settings.MEDIA_ROOT)) for p in (settings.MEDIA_ROOT / "images" / sys.argv[1]).rglob("*") if p.is_file()]
print(json.dumps({"ids": sorted(pk for pk, _ in rows), "rows": sorted(f for _, f in rows), "files": sorted(files)}))
"""

COUNT = """
import sys, django
django.setup()
from groundtruth.models import Annotation
print(Annotation.objects.filter(image__project_id=int(sys.argv[1])).count())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_database() -> tuple[str, str]:
    """A fresh database on the PostgreSQL server: (its url, the url to drop it from)."""
    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    name = f"quorum_embedded_{os.getpid()}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + "/" + name, admin


def make_run_environment(var_dir: Path, database_url: str | None) -> dict:
    """What a newcomer's shell gives `make run`: no service variables (or only DATABASE_URL
    for the PostgreSQL side), var/ in a folder of its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CELERY_", "QUORUM_", "DJANGO_", "REQUIRE_"))
    }
    env["QUORUM_VAR_DIR"] = str(var_dir)
    env["QUORUM_LOG_LEVEL"] = "WARNING"
    if database_url:  # a database server: as in production, the key is given
        env["DATABASE_URL"] = database_url
        env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(40)
    return env


class Server:
    """`make run` on a free port with `env`; stopped as Ctrl-C stops it."""

    def __init__(self, env: dict, log: Path):
        self.port = free_port()
        self.env = env
        self.log = log
        args = f"--addrport 127.0.0.1:{self.port} --demo-images 0 --no-demo-training"
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"RUN_ARGS={args}"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while "Quorum is running" not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"make run did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)

    def python(self, code: str, *args) -> str:
        """Run `code` with Django set up as `make run` sets it up (same variables, same var/)."""
        result = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
            env={**self.env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        )  # fmt: skip
        if result.returncode:
            raise SystemExit(result.stderr[-3000:])
        return result.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.server_errors: dict[str, int] = defaultdict(int)
        self.other_errors: dict[str, int] = defaultdict(int)
        self.loops = 0
        self.submitted = 0

    def add(self, name: str, status: int, elapsed: float) -> None:
        with self.lock:
            self.latencies.append(elapsed)
            if status >= 500:
                self.server_errors[f"{name} {status}"] += 1
            elif status >= 400:
                self.other_errors[f"{name} {status}"] += 1


BOX = {"x1": 10.0, "y1": 20.0, "x2": 60.0, "y2": 160.0, "label": "pedestrian"}


def annotate(client: Client, project: int, tally: Tally, stop: float) -> None:
    while time.monotonic() < stop:
        status, task, elapsed = client.call("POST", f"/api/v1/projects/{project}/next-task/")
        tally.add("next-task", status, elapsed)
        if status != 200:
            if status == 204:
                return
            continue
        status, _, elapsed = client.call(
            "PUT", f"/api/v1/assignments/{task['id']}/draft/", {"boxes": [BOX]}, {"If-Match": str(task["version"])}
        )
        tally.add("draft", status, elapsed)
        status, _, elapsed = client.call("POST", f"/api/v1/assignments/{task['id']}/submit/", {"boxes": [BOX, BOX]})
        tally.add("submit", status, elapsed)
        with tally.lock:
            tally.loops += 1
            tally.submitted += status in (200, 201)


def team_run(server: Server, tokens: list[str], project: int, annotators: int, seconds: float) -> dict:
    tally = Tally()
    stop = time.monotonic() + seconds
    started = time.perf_counter()
    threads = [
        threading.Thread(target=annotate, args=(Client(server.port, tokens[i]), project, tally, stop))
        for i in range(annotators)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stored = int(server.python(COUNT, str(project)))
    ordered = sorted(tally.latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000 if ordered else float("nan")
    return {
        "loops_per_s": tally.loops / elapsed,
        "p95_ms": p95,
        "5xx": sum(tally.server_errors.values()),
        "lost": abs(stored - tally.submitted),
        "server_errors": dict(tally.server_errors),
        "other_errors": dict(tally.other_errors),
    }


UPLOADERS, FILES_PER_UPLOAD = 12, 12


def jpeg(seed: int) -> bytes:
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    image.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(320 * 240 // 64)] * 64)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def upload_burst(server: Server, token: str, project: int) -> dict:
    """UPLOADERS uploads of FILES_PER_UPLOAD new images each, all at once."""
    import uuid

    bodies = []
    for uploader in range(UPLOADERS):
        boundary = uuid.uuid4().hex
        parts = b"".join(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="u{uploader}-{i}.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + jpeg(uploader * 1000 + i)
            + b"\r\n"
            for i in range(FILES_PER_UPLOAD)
        )
        bodies.append((parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"))
    answers: list[tuple[int, object]] = []
    lock = threading.Lock()

    def upload(body: bytes, content_type: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.request(
            "POST", f"/api/v1/projects/{project}/images/", body=body,
            headers={"Authorization": f"Token {token}", "Content-Type": content_type},
        )  # fmt: skip
        response = connection.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        with lock:
            answers.append((response.status, parsed))

    threads = [threading.Thread(target=upload, args=body) for body in bodies]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    said_stored = sorted(
        result["image_id"]
        for _, body in answers
        if isinstance(body, dict)
        for result in body.get("results", [])
        if result["status"] == "stored"
    )
    stored = json.loads(server.python(STORED, str(project)))
    return {
        "seconds": elapsed,
        "5xx": sum(status >= 500 for status, _ in answers),
        "stored": len(stored["ids"]),
        "said_stored": len(said_stored),
        "exact": said_stored == stored["ids"] and stored["rows"] == stored["files"],
    }


def summary(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def backend_measure(name: str, database_url: str | None, teams: list[int], repeats: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"quorum-embedded-{name}-") as folder:
        var_dir = Path(folder) / "var"
        var_dir.mkdir()
        server = Server(make_run_environment(var_dir, database_url), Path(folder) / "make-run.log")
        try:
            setup = json.loads(server.python(SETUP, str(max(teams)), str(len(teams) * repeats), str(IMAGES)))
            projects = iter(setup["projects"])
            results = {}
            for annotators in teams:
                runs = [team_run(server, setup["tokens"], next(projects), annotators, seconds) for _ in range(repeats)]
                results[annotators] = runs
                errors = defaultdict(int)
                for run in runs:
                    for key, count in run["server_errors"].items():
                        errors[key] += count
                print(
                    f"  {name:<10} {annotators:>3} annotators: {summary([r['loops_per_s'] for r in runs]):>20} loops/s"
                    f"   p95 {summary([r['p95_ms'] for r in runs], 0):>16} ms"
                    f"   5xx {sum(r['5xx'] for r in runs):>4}   lost {sum(r['lost'] for r in runs):>3}"
                    + (f"   ({dict(errors)})" if errors else ""),
                    flush=True,
                )
            burst = upload_burst(server, setup["admin"], setup["uploads"])
            results["uploads"] = burst
            print(
                f"  {name:<10} {UPLOADERS} uploads x {FILES_PER_UPLOAD} images at once: {burst['seconds']:.1f} s, "
                f"5xx {burst['5xx']}, {burst['stored']} stored, {burst['said_stored']} answered stored, "
                f"rows and files {'match the answers' if burst['exact'] else 'DIFFER from the answers'}",
                flush=True,
            )
            return results
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--annotators", default="1,8,20")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    options = parser.parse_args()
    teams = [int(value) for value in options.annotators.split(",")]
    print(
        f"embedded default: make run, {options.seconds:.0f} s per run, {options.repeats} runs per team size, "
        "median [range]; loop = next-task, draft, submit",
        flush=True,
    )
    results = {}
    if options.only != "postgres":
        results["sqlite"] = backend_measure("SQLite", None, teams, options.repeats, options.seconds)
    if options.only != "sqlite":
        url, admin = postgres_database()
        try:
            results["postgres"] = backend_measure("PostgreSQL", url, teams, options.repeats, options.seconds)
        finally:
            import psycopg

            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    failures = []
    if "sqlite" in results:
        burst = results["sqlite"].pop("uploads")
        if burst["5xx"] or not burst["exact"]:
            failures.append("SQLite uploads: 5xx, or stored images that differ from the answers")
        for annotators, runs in results["sqlite"].items():
            if any(run["5xx"] or run["lost"] for run in runs):
                failures.append(f"SQLite with {annotators} annotators: 5xx or lost writes")
    results.get("postgres", {}).pop("uploads", None)
    if "sqlite" in results and "postgres" in results:
        for annotators in teams:
            ratio = statistics.median(r["loops_per_s"] for r in results["sqlite"][annotators]) / statistics.median(
                r["loops_per_s"] for r in results["postgres"][annotators]
            )
            print(f"  SQLite / PostgreSQL loops/s, {annotators} annotators: {ratio:.2f}x")
            if annotators == max(teams) and ratio < TARGET_RATIO:
                failures.append(f"SQLite keeps {ratio:.2f}x of PostgreSQL's loops/s (target {TARGET_RATIO}x)")
    if failures:
        print("target missed: " + "; ".join(failures))
        sys.exit(1)
    print(
        "target met: no 5xx and nothing lost on the embedded default"
        + (f", at least {TARGET_RATIO}x PostgreSQL's loops/s" if len(results) == 2 else "")
    )


if __name__ == "__main__":
    main()
