"""The worker side of a training run: claim it, train it in a subprocess that can be stopped,
record its progress epoch by epoch, then evaluate and register the model.

A run is claimed under a row lock: a run that is finished, or running with a fresh heartbeat
on another worker (a duplicate delivery), is left alone, so the same run never trains twice
at once. While it is ours a heartbeat thread stamps the row every few seconds and watches
for a cancel request; the reaper (`training.services.training_runs_reap`) settles a run whose
heartbeat went stale. A retried run resumes from the `last.pt` of its working folder when
that is on this machine. The training itself is `python -m training.trainer` (ultralytics,
offline, `plots=False`); it dies with this process.
"""

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from config.media import storage_put, storage_read
from datasets.models import Image
from projects.models import Project
from training.base_weights import BaseWeightsChanged, base_weights_copy
from training.evaluation import coco_figures, detections_predict, ground_truth, model_evaluate, split_images
from training.fractions import fraction_subset
from training.models import DatasetSnapshot, ModelVersion, RunState, TrainingRun
from training.profile import reference_profile_build
from training.runtime import file_sha256
from training.trainer import PREFIX
from transfer.exports import export_file_names

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
STOP_GRACE_SECONDS = 10
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours and cursor moves of ultralytics' console log


class RunStopped(Exception):
    """The run was cancelled, or another worker took it over: stop without a verdict of our own."""


def training_run_execute(*, run_id: int, worker: str) -> TrainingRun | None:
    """Train, evaluate and register run `run_id` if it is ours to run; None when it is not
    (finished, or alive on another worker)."""
    run = _claim(run_id=run_id, worker=worker)
    if run is None:
        return None
    workdir = Path(settings.QUORUM_TRAINING_DIR) / f"run-{run.pk}"
    heartbeat = _Heartbeat(run)
    heartbeat.start()
    keep_workdir = False
    try:
        outcome = _train(run, workdir, heartbeat)
        heartbeat.check()
        _register(run, outcome)
        state, error = RunState.SUCCEEDED, ""
    except RunStopped:
        state, error = (RunState.CANCELLED, "") if heartbeat.cancelled else (None, "")
        keep_workdir = state is None  # another worker owns it now
    except SoftTimeLimitExceeded:
        state, error = RunState.FAILED, "Stopped: the training queue's time limit was reached."
    except Exception as exc:  # any failure ends the run failed, with its reason on the page
        logger.exception("training run %s failed", run.pk)
        state, error = RunState.FAILED, str(exc) or type(exc).__name__
    finally:
        heartbeat.stop()
    if state is not None:
        _finish(run, state=state, error=error)
    if not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    run.refresh_from_db()
    return run


def _claim(*, run_id: int, worker: str) -> TrainingRun | None:
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.QUORUM_TRAINING_STALE_SECONDS)
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return None
        if run.state == RunState.RUNNING and run.heartbeat_at and run.heartbeat_at >= stale_before:
            logger.info("training run %s is alive on %s; this delivery is a duplicate", run.pk, run.worker)
            return None
        if run.cancel_requested_at:
            run.state, run.finished_at = RunState.CANCELLED, now
            run.save(update_fields=["state", "finished_at"])
            return None
        if run.attempts >= settings.QUORUM_TRAINING_MAX_ATTEMPTS:
            run.state, run.finished_at = RunState.FAILED, now
            run.error = f"Worker lost: {run.attempts} attempts ended without a result."
            run.save(update_fields=["state", "finished_at", "error"])
            return None
        run.state, run.worker, run.heartbeat_at = RunState.RUNNING, worker, now
        run.attempts += 1
        run.started_at = run.started_at or now
        run.save(update_fields=["state", "worker", "heartbeat_at", "attempts", "started_at"])
    return run


def _finish(run: TrainingRun, *, state: str, error: str) -> None:
    TrainingRun.objects.filter(pk=run.pk, attempts=run.attempts).exclude(
        state__in=[RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]
    ).update(state=state, error=error[:4000], finished_at=timezone.now(), eta_seconds=None)


class _Heartbeat(threading.Thread):
    """Stamps the run's heartbeat while this attempt owns it; notices a cancel request, or
    that the run was taken over (the reaper gave it to another attempt)."""

    def __init__(self, run: TrainingRun):
        super().__init__(daemon=True, name=f"training-run-{run.pk}-heartbeat")
        self.run_id, self.attempt = run.pk, run.attempts
        self.cancelled = self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(settings.QUORUM_TRAINING_HEARTBEAT_SECONDS):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        mine = TrainingRun.objects.filter(pk=self.run_id, attempts=self.attempt, state=RunState.RUNNING)
        if not mine.update(heartbeat_at=timezone.now()):
            self.lost = True
        elif mine.filter(cancel_requested_at__isnull=False).exists():
            self.cancelled = True

    def check(self) -> None:
        if self.cancelled or self.lost:
            raise RunStopped

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def snapshot_local_dataset(snapshot: DatasetSnapshot, folder: Path) -> Path:
    """The snapshot's data.yaml on this machine: in place when storage is a local folder,
    otherwise copied into `folder`."""
    with contextlib.suppress(NotImplementedError):
        path = Path(default_storage.path(f"{snapshot.storage_prefix}/data.yaml"))
        if path.exists():
            return path
    for split in ("train", "val"):
        for kind in ("images", "labels"):
            prefix = f"{snapshot.storage_prefix}/{kind}/{split}"
            _, names = default_storage.listdir(prefix)
            (folder / kind / split).mkdir(parents=True, exist_ok=True)
            for name in names:
                (folder / kind / split / name).write_bytes(storage_read(f"{prefix}/{name}"))
    (folder / "data.yaml").write_bytes(storage_read(f"{snapshot.storage_prefix}/data.yaml"))
    return folder / "data.yaml"


def train_subset_yaml(run: TrainingRun, data: Path, workdir: Path) -> Path:
    """A data.yaml in `workdir` whose train split is the run's fraction of the snapshot's
    (nested and stratified by condition, `training.fractions`), listed in a text file; val
    is the snapshot's own."""
    import yaml

    config = yaml.safe_load(data.read_text())
    root = Path(config.get("path") or data.parent)
    files = sorted(path for path in (root / config["train"]).iterdir() if path.suffix == ".jpg")
    names = export_file_names(run.project)
    rows = Image.objects.filter(project_id=run.project_id).values_list("pk", "stratum", "sha256")
    by_stem = {names[pk].rsplit(".", 1)[0]: (stratum, sha256) for pk, stratum, sha256 in rows if pk in names}
    items = [(index, *by_stem.get(path.stem, ("", path.stem))) for index, path in enumerate(files)]
    kept = fraction_subset(items, run.train_fraction, seed=run.seed)
    listing = workdir / "train_subset.txt"
    listing.write_text("".join(f"{files[index]}\n" for index in kept))
    subset = workdir / "data_subset.yaml"
    subset.write_text(
        yaml.safe_dump({**config, "path": str(root), "train": str(listing), "val": str(root / config["val"])})
    )
    return subset


def _train(run: TrainingRun, workdir: Path, heartbeat: _Heartbeat) -> dict:
    """Run the trainer subprocess to its end; its "done" event."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = snapshot_local_dataset(run.snapshot, workdir / "dataset")
    if run.train_fraction < 1:
        data = train_subset_yaml(run, data, workdir)
    last = workdir / "train" / "weights" / "last.pt"
    spec = {
        "data": str(data),
        "model": run.architecture,
        "imgsz": run.imgsz,
        "epochs": run.epochs,
        "batch": run.batch,
        "patience": run.patience,
        "seed": run.seed,
        "device": "" if run.device == "auto" else run.device,
        "project_dir": str(workdir),
        "name": "train",
        "workers": None,  # the trainer's choice: 2 on the CPU, up to 8 beside a GPU
    }
    if run.init == TrainingRun.Init.CHAMPION and run.parent_model_id:
        spec["model"] = str(_verified_weights(run.parent_model, workdir / "parent.pt"))
        spec["fine_tune"] = True
    if run.init == TrainingRun.Init.BASE:
        base = run.base_weights
        if base is None:
            raise RuntimeError("The base weights this run starts from were removed from the registry.")
        if base.sha256 != run.base_weights_sha256:
            raise BaseWeightsChanged(f"The base weights {base.name!r} are not the file this run was started with.")
        path = base_weights_copy(base, workdir / f"base.{base.format}")
        spec["base"] = {
            "path": str(path),
            "format": base.format,
            "architecture": base.architecture,
            "classes": base.classes,
        }
        spec["labels"] = list(run.project.labels)
        spec["fine_tune"] = True
    if last.exists() and run.attempts > 1:
        spec["resume_from"] = str(last)
        _log(run, f"attempt {run.attempts}: resuming from last.pt after epoch {run.epoch}")
    elif run.attempts > 1:
        TrainingRun.objects.filter(pk=run.pk).update(epoch=0, history=[])
        run.epoch, run.history = 0, []
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return _supervise(run, spec_path, heartbeat)


def _verified_weights(model: ModelVersion, target: Path) -> Path:
    """A model's weights copied from storage after their sha256 matched the registry's:
    ultralytics unpickles .pt files, so only files this project wrote are loaded."""
    with default_storage.open(model.weights, "rb") as source:
        data = source.read()
    if hashlib.sha256(data).hexdigest() != model.weights_sha256:
        raise RuntimeError(f"The weights of model {model.number} do not match their sha256; refusing to load them.")
    target.write_bytes(data)
    return target


def verified_onnx_path(model: ModelVersion, folder: Path) -> Path:
    """The model's ONNX export copied from storage into `folder` (checked by sha256 when loaded)."""
    target = folder / "model.onnx"
    with default_storage.open(model.onnx, "rb") as source:
        target.write_bytes(source.read())
    return target


@contextlib.contextmanager
def verified_weights_path(model: ModelVersion):
    """A local file of the model's weights, checked by sha256, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="quorum-weights-") as folder:
        yield _verified_weights(model, Path(folder) / "best.pt")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _supervise(run: TrainingRun, spec_path: Path, heartbeat: _Heartbeat) -> dict:
    launched_at = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "training.trainer", str(spec_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read, args=(process.stdout, lines), daemon=True)
    reader.start()
    tail: deque[str] = deque(run.log_tail.splitlines(), maxlen=settings.QUORUM_TRAINING_LOG_TAIL_LINES)
    seconds_before = run.train_seconds or 0.0
    done: dict | None = None
    error: str | None = None
    started = flushed = time.monotonic()
    try:
        while True:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line.startswith(PREFIX):
                event = json.loads(line[len(PREFIX) :])
                if event["event"] == "epoch":
                    _record_epoch(run, event, seconds_before)
                    # a cancel request is looked for at every epoch's end too, not only on the
                    # heartbeat's clock: a run stops within one epoch however short its epochs
                    heartbeat.beat()
                elif event["event"] == "start":
                    TrainingRun.objects.filter(pk=run.pk).update(train_images=event["train_images"])
                    run.train_images = event["train_images"]
                elif event["event"] == "base":
                    TrainingRun.objects.filter(pk=run.pk).update(base_start=event["how"][:300])
                    tail.append(f"[quorum] started from base weights {run.base_weights.name}: {event['how']}")
                elif event["event"] == "done":
                    done = event
                    done["subprocess_seconds"] = time.monotonic() - started
                elif event["event"] == "error":
                    error = event["message"]
            elif line.strip():
                tail.append(ANSI.sub("", line).rstrip()[:500])
            if time.monotonic() - flushed > 2:
                TrainingRun.objects.filter(pk=run.pk).update(log_tail="\n".join(tail))
                flushed = time.monotonic()
            if heartbeat.cancelled or heartbeat.lost:
                _stop(process)
                raise RunStopped
        process.wait()
    except BaseException:
        _stop(process)
        raise
    finally:
        TrainingRun.objects.filter(pk=run.pk).update(log_tail="\n".join(tail))
        run.log_tail = "\n".join(tail)
    if done is None:
        reason = error or (tail[-1] if tail else f"the trainer exited with status {process.returncode}")
        raise RuntimeError(f"Training failed: {reason}")
    done["train_seconds"] = seconds_before + done["train_seconds"]
    # launch to the end of ultralytics' train(): what a plain `YOLO(...).train(...)` is timed by
    done["train_call_seconds"] = done["trained_at"] - launched_at if done.get("trained_at") else None
    return done


def _read(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the trainer's process group (its data loaders too), SIGKILL after a grace."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _record_epoch(run: TrainingRun, event: dict, seconds_before: float) -> None:
    entry = {
        "epoch": event["epoch"],
        "losses": event["losses"],
        "val_losses": event["val_losses"],
        "map50": event["map50"],
        "map50_95": event["map50_95"],
        "precision": event["precision"],
        "recall": event["recall"],
        "lr": event["lr"],
        "elapsed": round(seconds_before + event["elapsed"], 3),
        "attempt": run.attempts,
    }
    run.history = [h for h in run.history if h["epoch"] < event["epoch"]] + [entry]
    run.epoch = event["epoch"]
    TrainingRun.objects.filter(pk=run.pk).update(
        epoch=run.epoch, epochs=event["epochs"], history=run.history, eta_seconds=event["eta"]
    )


def _log(run: TrainingRun, message: str) -> None:
    run.log_tail = (run.log_tail + "\n" if run.log_tail else "") + f"[quorum] {message}"
    TrainingRun.objects.filter(pk=run.pk).update(log_tail=run.log_tail)


def _store(path: Path, name: str) -> str:
    return storage_put(name, path.read_bytes())


def onnx_latency_ms(path: Path, *, imgsz: int, repeats: int = 20) -> float:
    """Median ms of one image through the ONNX model with ONNX Runtime on the CPU, after a
    warm-up: the serving path's cost per image at the model's input size."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    image = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    for _ in range(3):
        session.run(None, {name: image})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {name: image})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _register(run: TrainingRun, done: dict) -> ModelVersion:
    """Evaluate the best weights with Quorum's evaluator and make the run's ModelVersion."""
    started = time.monotonic()
    version = run.snapshot.consensus_version
    best, onnx = Path(done["best"]), Path(done["onnx"]) if done.get("onnx") else None
    if onnx is None or not onnx.exists():
        raise RuntimeError("The trainer produced no ONNX export.")
    _log(run, "evaluating the best weights' ONNX export on val with Quorum's evaluator")
    val_ids = split_images(version=version, split="val")
    val_detections = detections_predict(onnx=onnx, image_ids=val_ids, imgsz=run.imgsz)
    train_ids = split_images(version=version, split="train", limit=settings.QUORUM_TRAINING_EVAL_TRAIN_IMAGES)
    train_detections = detections_predict(onnx=onnx, image_ids=train_ids, imgsz=run.imgsz)
    train_ap50 = coco_figures(ground_truth(version=version, image_ids=train_ids), train_detections)["ap50"]
    evaluation = model_evaluate(
        version=version, image_ids=val_ids, detections=val_detections, train_ap50=train_ap50 if train_ids else None
    )
    evaluation["source"] = "boxes.metrics"
    profile = reference_profile_build(version=version, val_detections=val_detections)
    latency = onnx_latency_ms(onnx, imgsz=run.imgsz)
    prefix = f"models/{run.project_id}/run-{run.pk}"
    weights_name = _store(best, f"{prefix}/best.pt")
    onnx_name = _store(onnx, f"{prefix}/best.onnx")
    images_seen = run.epoch * (run.train_images or 0)
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=run.project_id)  # one number at a time
        number = (ModelVersion.objects.filter(project=run.project).aggregate(n=Max("number"))["n"] or 0) + 1
        model = ModelVersion.objects.create(
            project=run.project,
            number=number,
            run=run,
            snapshot=run.snapshot,
            consensus_version=version,
            parent=run.parent_model,
            weights=weights_name,
            weights_sha256=file_sha256(best),
            onnx=onnx_name,
            onnx_sha256=file_sha256(onnx),
            architecture=run.architecture,
            imgsz=run.imgsz,
            latency_ms=latency,
            evaluation=evaluation,
            reference_profile=profile,
        )
        TrainingRun.objects.filter(pk=run.pk).update(
            evaluation=evaluation,
            ultralytics_metrics=done.get("metrics") or {},
            train_seconds=done["train_seconds"],
            images_per_second=images_seen / done["train_seconds"] if done["train_seconds"] else None,
            device_name=(done.get("device_name") or "")[:200],
            peak_gpu_memory_mb=done.get("peak_gpu_memory_mb"),
            timings={
                # this attempt's trainer subprocess, start to "done" (ONNX export included)
                "subprocess": round(done["subprocess_seconds"], 3),
                "export": round(done.get("export_seconds", 0.0), 3),
                "train_call": round(done["train_call_seconds"], 3) if done.get("train_call_seconds") else None,
                "evaluate_and_register": round(time.monotonic() - started, 3),
            },
        )
    return model
