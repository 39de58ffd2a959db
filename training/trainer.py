"""The training subprocess: one Ultralytics YOLO training run, offline, reporting to its parent.

Run as `python -m training.trainer SPEC.json` by `training.runner`; it never imports Django.
The spec names the dataset yaml, the model to start from (a detection `.yaml` that ships
with ultralytics, weights this project wrote, or `base` weights: a safetensors state dict,
or an operator's `.pt`, both checked by sha256 before this process starts), the settings,
and the folder to write in. Progress goes to stdout as one JSON object per line after the `@quorum ` prefix:

- `{"event": "base", "how": "..."}` when it starts from base weights: how the head was made
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

import functools
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


# Names a base's class may have for the project's label (a COCO model's `person` is a pedestrian).
LABEL_SYNONYMS = {"pedestrian": {"pedestrian", "person", "people"}, "person": {"person", "pedestrian"}}


def class_rows(classes: list[str], labels: list[str]) -> list[int] | None:
    """For each project label, the row of the base's head that already detects it, or None
    when some label has none (the head is then new)."""
    lowered = [name.lower() for name in classes]
    rows = []
    for label in labels:
        names = LABEL_SYNONYMS.get(label.lower(), {label.lower()})
        row = next((index for index, name in enumerate(lowered) if name == label.lower()), None)
        row = row if row is not None else next((index for index, name in enumerate(lowered) if name in names), None)
        if row is None:
            return None
        rows.append(row)
    return rows


def base_model(base: dict, labels: list[str]):
    """(the detection model a run starts from, how its head was made) from base weights:
    the base's head narrowed to the rows of the project's labels where it has them, else
    every layer whose shape fits and a new head, as ultralytics does for a new data set."""
    import copy

    import torch
    from ultralytics.nn.tasks import DetectionModel

    if base["format"] == "pt":  # an operator's file, vouched for and checked by sha256
        from ultralytics import YOLO

        source = YOLO(base["path"]).model.float()
        cfg = copy.deepcopy(source.yaml)
    else:
        from safetensors.torch import load_file

        cfg = base["architecture"]
        source = DetectionModel(cfg, nc=len(base["classes"]), verbose=False)
        tensors = {name: t.float() if t.is_floating_point() else t for name, t in load_file(base["path"]).items()}
        source.load_state_dict(tensors, strict=False)
    rows = class_rows(base["classes"], labels)
    if rows is not None:
        detect = source.model[-1]
        for branch in (getattr(detect, "cv3", None), getattr(detect, "one2one_cv3", None)):
            for sequence in branch or ():
                last = sequence[-1]
                narrowed = torch.nn.Conv2d(last.in_channels, len(rows), 1)
                narrowed.weight.data = last.weight.data[rows].clone()
                narrowed.bias.data = last.bias.data[rows].clone()
                sequence[-1] = narrowed
        detect.nc, detect.no = len(rows), len(rows) + detect.reg_max * 4
        source.yaml["nc"] = len(rows)
        return source, f"head narrowed to the base's {', '.join(base['classes'][r] for r in rows)}"
    model = DetectionModel(cfg, nc=len(labels), verbose=False)
    own = model.state_dict()
    fitting = {name: t for name, t in source.state_dict().items() if name in own and own[name].shape == t.shape}
    model.load_state_dict(fitting, strict=False)
    return model, f"new head; {len(fitting)} of {len(own)} tensors from the base"


def _quorum_trainer(model=None):
    """Ultralytics' detection trainer, handed `model` (when given) instead of building one,
    and checking mixed precision without a download. A local class: for several GPUs
    ultralytics pickles it (cloudpickle, by value) into each DDP process, so both hold there."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    class QuorumTrainer(DetectionTrainer):
        def get_model(self, cfg=None, weights=None, verbose=True):
            return model if model is not None else super().get_model(cfg=cfg, weights=weights, verbose=verbose)

        def _setup_train(self, *args, **kwargs):
            if self.device.type == "cuda":
                # ultralytics checks mixed precision by downloading yolo26n.pt: never here (offline);
                # torch's CUDA autocast is trusted as is, and the losses show a failure in the first
                # epoch. Elsewhere ultralytics' own check turns it off without a download.
                import ultralytics.engine.trainer

                ultralytics.engine.trainer.check_amp = lambda model: True
            return super()._setup_train(*args, **kwargs)

    return QuorumTrainer


def _ddp_rank() -> int:
    """This process's rank in ultralytics' DDP (several GPUs), -1 outside it."""
    return int(os.environ.get("RANK", -1))


def _gpu(device: str) -> bool:
    """Whether this training runs on CUDA: `device` names GPUs, or is auto and one is here."""
    import torch

    if device.lower() in ("cpu", "mps"):
        return False
    return torch.cuda.is_available()


def _usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _workers(gpu: bool) -> int:
    """Dataloader workers: 2 on the CPU (the cores train), up to 8 feeding a GPU."""
    cores = os.cpu_count() or 1
    return max(1, min(8, cores - 1)) if gpu else min(2, cores)


def _device_name(gpu: bool) -> str:
    import platform

    import torch

    if gpu:
        count = torch.cuda.device_count()
        return f"{torch.cuda.get_device_name(0)}" + (f" x{count}" if count > 1 else "")
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _peak_gpu_memory_mb(gpu: bool) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if gpu else None


def train(spec: dict) -> None:
    _offline()
    from ultralytics import YOLO, settings

    settings.update({"sync": False})
    parent = os.getppid()
    state = {"stopping": False, "started": None, "start_epoch": 0, "train_images": 0}

    # With several GPUs ultralytics trains in DDP processes of its own, each with a copy of
    # these callbacks: rank 0 reports (start, epochs, done), the others stay quiet.
    def on_train_start(trainer) -> None:
        state["started"] = time.time()
        state["start_epoch"] = trainer.start_epoch
        state["train_images"] = len(trainer.train_loader.dataset)
        if _ddp_rank() in (-1, 0):
            emit("start", epochs=trainer.epochs, start_epoch=trainer.start_epoch, train_images=state["train_images"])

    def on_train_batch_end(trainer) -> None:
        # the worker died: do not train for nobody (a DDP process's parent is torch's launcher)
        if _ddp_rank() == -1 and os.getppid() != parent:
            os._exit(3)
        if _ddp_rank() != -1:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(3)

    def on_fit_epoch_end(trainer) -> None:
        if state["stopping"] or _ddp_rank() > 0:
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
    started = None
    if spec.get("base") and not spec.get("resume_from"):
        started, how = base_model(spec["base"], spec["labels"])
        emit("base", how=how)
    trainer_class = _quorum_trainer(started)

    def on_pretrain_routine_start(trainer) -> None:
        # ultralytics trains on the CPU with one thread fewer than the cores (one thread on
        # two cores); a training worker's cores are the training's: those it may run on
        # (a worker pinned with taskset or a container's cpuset gets no more threads than cores)
        if trainer.device.type == "cpu":
            import torch

            torch.set_num_threads(_usable_cores())

    model.add_callback("on_pretrain_routine_start", on_pretrain_routine_start)
    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_train_batch_end", on_train_batch_end)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    gpu = _gpu(spec.get("device") or "")
    report_done = functools.partial(_report_done, spec=spec, state=state, gpu=gpu)

    def on_train_end(trainer) -> None:
        if _ddp_rank() == 0:  # DDP's rank 0 holds the trained state; its launcher does not
            report_done(trainer)

    model.add_callback("on_train_end", on_train_end)
    arguments = {
        "data": spec["data"],
        "imgsz": spec["imgsz"],
        # 0 asks for a batch sized to the GPU's memory (ultralytics' autobatch); 16 on the CPU
        "batch": spec["batch"] or (-1 if gpu else 16),
        "device": spec.get("device") or None,
        "workers": spec["workers"] if spec.get("workers") is not None else _workers(gpu),
        "amp": True,  # mixed precision where a GPU has it; ultralytics checks it and ignores it on the CPU
        "project": spec["project_dir"],
        "name": spec["name"],
        "exist_ok": True,
        "plots": False,
        "verbose": True,
    }
    if spec.get("resume_from"):
        model.train(
            resume=spec["resume_from"],
            save_dir=str(Path(spec["project_dir"]) / spec["name"]),
            trainer=trainer_class,
            **arguments,
        )
    else:
        model.train(
            trainer=trainer_class,
            epochs=spec["epochs"],
            patience=spec["patience"],
            seed=spec["seed"],
            deterministic=True,
            **_fine_tuning(spec),
            **arguments,
        )
    if not getattr(model.trainer, "ddp", False):  # else rank 0 reported it
        report_done(model.trainer)


def _fine_tuning(spec: dict) -> dict:
    """A run that starts from trained weights (base weights, or the champion) is fine-tuned:
    AdamW at lr0 0.0005 (a quarter of what ultralytics' "auto" picks for a small data set),
    one warm-up epoch, the biases warmed from 0 rather than from 0.1. At ultralytics'
    defaults the demo's first run from the starter lost what the starter knew (val mAP50
    0.76, 0.66, 0.51 over the first three epochs, 0.79 after ten; recall share 0.60); fine-tuned,
    it keeps it (0.81 after the first, 0.82 after ten; recall share 0.74)."""
    if not spec.get("fine_tune"):
        return {}
    return {"optimizer": "AdamW", "lr0": 0.0005, "warmup_epochs": 1.0, "warmup_bias_lr": 0.0}


def _report_done(trainer, *, spec: dict, state: dict, gpu: bool) -> None:
    """The "done" event: where the weights are, their ONNX export, the figures."""
    from ultralytics import YOLO

    trained_at = time.time()
    seconds = trained_at - (state["started"] or trained_at)
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
        trained_at=trained_at,
        device_name=_device_name(gpu),
        peak_gpu_memory_mb=_peak_gpu_memory_mb(gpu),
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
