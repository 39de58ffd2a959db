"""The training subprocess: one Ultralytics YOLO training run, offline, reporting to its parent.

Run as `python -m training.trainer SPEC.json` by `training.runner`; it never imports Django.
The spec names the dataset yaml, the model to start from (a detection `.yaml` that ships
with ultralytics, or weights this project wrote), the settings, and the folder to write
in. Progress goes to stdout as one JSON object per line after the `@quorum ` prefix:

- `{"event": "start", "epochs": E, "start_epoch": S, "train_images": N}`
- `{"event": "epoch", "epoch": i (1-based), "epochs": E, "losses": {...}, "val_losses": {...},
  "map50": .., "map50_95": .., "precision": .., "recall": .., "lr": .., "elapsed": s, "eta": s}`
- `{"event": "done", "best": path, "last": path, "onnx": path, "metrics": {...}, "epochs_run": n,
  "train_seconds": s, "images_seen": n, "export_seconds": s}`
- `{"event": "error", "message": "..."}` when training raised

Everything else on stdout is ultralytics' own log, kept by the parent as the log tail. The
process dies with its parent (the Celery worker): a training that nobody watches is not
worth its GPU.
"""

import json
import os
import sys
import time
from pathlib import Path

PREFIX = "@quorum "
METRIC_KEYS = {
    "map50": "metrics/mAP50(B)",
    "map50_95": "metrics/mAP50-95(B)",
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
}


def emit(event: str, **fields) -> None:
    print(PREFIX + json.dumps({"event": event, **fields}), flush=True)


def _offline() -> None:
    # Before ultralytics is imported (DESIGN.md, "Ultralytics without the internet").
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_VERBOSE", "True")


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def train(spec: dict) -> None:
    _offline()
    from ultralytics import YOLO, settings

    settings.update({"sync": False})
    parent = os.getppid()
    state = {"stopping": False, "started": None, "start_epoch": 0, "train_images": 0}

    def on_train_start(trainer) -> None:
        state["started"] = time.time()
        state["start_epoch"] = trainer.start_epoch
        state["train_images"] = len(trainer.train_loader.dataset)
        emit("start", epochs=trainer.epochs, start_epoch=trainer.start_epoch, train_images=state["train_images"])

    def on_train_batch_end(trainer) -> None:
        if os.getppid() != parent:  # the worker died: do not train for nobody
            os._exit(3)

    def on_fit_epoch_end(trainer) -> None:
        if state["stopping"]:
            return  # the final validation of best.pt, reported with "done"
        state["stopping"] = bool(trainer.stop)
        epoch = trainer.epoch + 1
        elapsed = time.time() - trainer.train_time_start
        done_here = epoch - state["start_epoch"]
        eta = elapsed / done_here * (trainer.epochs - epoch) if done_here > 0 else None
        losses = trainer.label_loss_items(trainer.tloss, prefix="train")
        metrics = trainer.metrics or {}
        emit(
            "epoch",
            epoch=epoch,
            epochs=trainer.epochs,
            losses={k.split("/", 1)[1]: _number(v) for k, v in losses.items()},
            val_losses={k.split("/", 1)[1]: _number(v) for k, v in metrics.items() if k.startswith("val/")},
            **{name: _number(metrics.get(key)) for name, key in METRIC_KEYS.items()},
            lr=_number(next(iter(trainer.lr.values()), None)) if trainer.lr else None,
            elapsed=elapsed,
            eta=eta,
        )

    model = YOLO(spec["resume_from"] if spec.get("resume_from") else spec["model"])
    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_train_batch_end", on_train_batch_end)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    arguments = {
        "data": spec["data"],
        "imgsz": spec["imgsz"],
        "batch": spec["batch"],
        "device": spec.get("device") or None,
        "workers": spec.get("workers", 2),
        "project": spec["project_dir"],
        "name": spec["name"],
        "exist_ok": True,
        "plots": False,
        "verbose": True,
    }
    if spec.get("resume_from"):
        model.train(resume=spec["resume_from"], save_dir=str(Path(spec["project_dir"]) / spec["name"]), **arguments)
    else:
        model.train(
            epochs=spec["epochs"], patience=spec["patience"], seed=spec["seed"], deterministic=True, **arguments
        )
    trainer = model.trainer
    seconds = time.time() - (state["started"] or time.time())
    best = Path(trainer.best if Path(trainer.best).exists() else trainer.last)
    metrics = trainer.metrics or {}
    epochs_run = trainer.epoch + 1 - state["start_epoch"]
    onnx = None
    export_started = time.time()
    if spec.get("onnx", True):
        # dynamic: each image is letterboxed to the smallest stride-32 rectangle, as ultralytics predicts
        onnx = YOLO(str(best)).export(format="onnx", imgsz=spec["imgsz"], simplify=True, dynamic=True, verbose=False)
    emit(
        "done",
        best=str(best),
        last=str(trainer.last),
        onnx=str(onnx) if onnx else None,
        metrics={name: _number(metrics.get(key)) for name, key in METRIC_KEYS.items()},
        epochs_run=epochs_run,
        epochs_total=trainer.epoch + 1,
        train_seconds=seconds,
        images_seen=epochs_run * state["train_images"],
        export_seconds=time.time() - export_started,
    )


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    try:
        train(spec)
    except Exception as error:
        emit("error", message=f"{type(error).__name__}: {error}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
