"""Run Quorum on one machine: migrate, demo accounts, then web server, worker and beat.

The three processes run until Ctrl-C (or SIGTERM), which stops them all; if one of them
dies, the others are stopped too and the command exits non-zero. The worker's and beat's
logs go to var/log/worker.log and var/log/beat.log; their warnings and errors (with any
traceback) still reach the console, so that the accounts and links printed at the start
stay on screen.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from config.celery import app
from datasets.selectors import image_split_counts
from demo.management.commands.demo_accounts import demo_accounts_file, demo_accounts_text
from demo.services import DEMO_PROJECT_NAME, demo_accounts_ensure, demo_gold_ensure, demo_training_ensure
from demo.simulation import panel_simulate
from demo.synthetic_data import synthetic_images_add
from ops.models import WorkerHeartbeat
from ops.tasks import worker_heartbeat_task
from projects.models import Project


class Command(BaseCommand):
    help = "Migrate, create demo accounts, and run the web server, a Celery worker and beat together."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--demo-images", type=int, default=300, help="synthetic images in the demo project")
        parser.add_argument(
            "--no-demo-training",
            action="store_false",
            dest="demo_training",
            help="do not queue the demo's first (short, CPU) training run",
        )

    def handle(
        self, *args, addrport: str, concurrency: int, demo_images: int, demo_training: bool = True, **options
    ) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self._say("Database migrated.")
        if not settings.WHITENOISE_USE_FINDERS:
            # DEBUG off: the hashed, compressed static files are served from STATIC_ROOT.
            call_command("collectstatic", interactive=False, verbosity=0)
        secrets_file = demo_accounts_file()
        accounts = demo_accounts_ensure(secrets_file=secrets_file)
        self._seed_demo_project(demo_images)
        demo_run = demo_training_ensure(project=Project.objects.get(name=DEMO_PROJECT_NAME)) if demo_training else None
        queues = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", addrport, "--noreload"],
            "worker": [
                python, "-m", "celery", "-A", "config", "worker", "-Q", queues,
                "--concurrency", str(concurrency), "-n", "dev@%h", "-l", "info",
            ],
            "beat": [
                python, "-m", "celery", "-A", "config", "beat", "-l", "info",
                "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }  # fmt: skip
        logs = Path(settings.VAR_DIR) / "log"
        logs.mkdir(parents=True, exist_ok=True)
        environments = {"worker": _worker_environment()}
        processes = {}
        for name, command in commands.items():
            if name == "web":
                processes[name] = subprocess.Popen(command, cwd=settings.BASE_DIR)
                continue
            process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=environments.get(name),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
            threading.Thread(target=_pump, args=(process.stdout, logs / f"{name}.log"), daemon=True).start()
            processes[name] = process
        self._stopping = False

        def stop(signum, frame) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self._say(f"Starting the web server, a worker on {queues} and beat...")
        self._report_round_trip(processes)
        # Said last, so it is not lost above the workers' start-up banners.
        self._say(self.style.SUCCESS(f"\nQuorum is running at http://{addrport}/  (Ctrl-C stops it)"))
        self._say(demo_accounts_text(accounts, secrets_file=secrets_file))
        self._say(f"Worker and beat logs: {logs / 'worker.log'}, {logs / 'beat.log'} (their warnings show here too)")
        demo = Project.objects.get(name=DEMO_PROJECT_NAME)
        self._say(
            f"Demo project: http://{addrport}/projects/{demo.pk}/ "
            f"(split report: http://{addrport}/projects/{demo.pk}/splits/)"
        )
        if demo_run is not None:
            self._say(
                f"A first model is training on the demo in the background (a few minutes on the CPU): "
                f"http://{addrport}/training-runs/{demo_run.pk}/ (sign in as admin or reviewer)"
            )
        exit_code = 0
        while not self._stopping:
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead:
                self._say_error(f"{', '.join(dead)} stopped; stopping the rest.")
                exit_code = 1
                break
            time.sleep(0.5)
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if exit_code:
            sys.exit(exit_code)

    def _seed_demo_project(self, count: int) -> None:
        """Fill the demo project with synthetic street scenes, the first time only."""
        project = Project.objects.get(name=DEMO_PROJECT_NAME)
        if project.images.count() >= count:
            return
        self._say(f"Rendering {count} synthetic street scenes for {project.name!r} (first run only)...")

        def progress(done: int, total: int) -> None:
            if done % 48 == 0 or done == total:
                self._say(f"  {done}/{total}")

        totals = synthetic_images_add(project=project, count=count, seed=0, progress=progress)
        counts = image_split_counts(project=project)
        self._say(
            f"Demo project: {totals['stored']} images added; split {counts['train']} train, "
            f"{counts['val']} val, {counts['test']} test."
        )
        # Five simulated annotators do about 70% of the work; the rest is left for people.
        run = panel_simulate(project=project, annotators=5, fraction=0.7)
        self._say(
            f"Simulated annotators submitted {run.submitted} of the {project.images.count() * project.overlap_k} slots."
        )
        gold = demo_gold_ensure(project=project)
        self._say(f"{gold} fully annotated images are gold tasks, their reference boxes the scenes' known truth.")

    def _say(self, text: str) -> None:
        # Flushed at once: the children write to the same terminal (or pipe) meanwhile.
        self.stdout.write(text)
        self.stdout.flush()

    def _say_error(self, text: str) -> None:
        self.stderr.write(text)
        self.stderr.flush()

    def _report_round_trip(self, processes: dict, timeout: float = 60) -> None:
        """Send a heartbeat through the broker and say when the worker has run it."""
        sent_at = timezone.now()
        with app.connection_for_write() as connection:
            worker_heartbeat_task.apply_async(kwargs={"sent_at": sent_at.isoformat()}, connection=connection)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and processes["worker"].poll() is None and not self._stopping:
            beat = WorkerHeartbeat.objects.filter(sent_at=sent_at).first()
            if beat:
                self._say(
                    self.style.SUCCESS(
                        f"Worker {beat.hostname} ran a test task from the {beat.queue!r} queue "
                        f"{beat.latency_seconds:.1f} s after it was sent."
                    )
                )
                return
            time.sleep(0.5)
        self._say_error("The worker did not run the test task within a minute; see its log above.")


def _worker_environment() -> dict[str, str] | None:
    """The worker's environment: when it serves task metrics (QUORUM_WORKER_METRICS_PORT and
    the token), its prefork pool's processes write them to a folder of the worker's own under
    var/ (PROMETHEUS_MULTIPROC_DIR), where its main process reads them for a scrape; without
    one, the tasks' durations stay in the pool's processes and the endpoint lacks them. None:
    this process's environment as it is."""
    if not (settings.QUORUM_WORKER_METRICS_PORT and settings.QUORUM_METRICS_TOKEN):
        return None
    folder = Path(settings.VAR_DIR) / "metrics" / "worker"
    folder.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}


# A log record's first line, as Celery writes it: "[2026-12-04 18:53:51,565: WARNING/MainProcess] ..."
RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: (\w+)/")
LOUD = {"WARNING", "ERROR", "CRITICAL"}
LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Warning:")


def _pump(stream, path: Path) -> None:
    """Copy a child's output to `path`, line by line, and echo to the console its warning and
    error records, any traceback (to its last line), and any other line that names a
    warning or an error (Python's own warnings, a library's log line in its own format).
    The start-up banner and the info records stay in the file."""
    in_traceback = False
    with path.open("a", encoding="utf-8") as log:
        for line in stream:
            log.write(line)
            log.flush()
            record = RECORD.match(line)
            if record:
                in_traceback, show = False, record.group(1) in LOUD
            elif in_traceback:
                show = True
                in_traceback = line[:1].isspace()  # "SomeError: why" ends it
            elif line.startswith("Traceback"):
                in_traceback = show = True
            else:
                show = bool(LEVEL.search(line))
            if show:
                sys.stdout.write(line)
                sys.stdout.flush()
