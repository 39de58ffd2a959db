"""Loaded models, once per process: each model version's ONNX export copied from Quorum's
own storage to a local folder, checked by sha256, loaded and warmed up by
`training.runtime.OnnxDetector`, and kept by (version id, sha256). A version without a
usable ONNX export (none recorded, or ONNX Runtime cannot load it) falls back to its
PyTorch weights (`TorchDetector`), checked by sha256 the same way; a file whose sha256
does not match is never loaded. A deployment target's build is loaded the same way, by
(build, sha256), at the target's input size and threads."""

import logging
import os
import threading
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from training.models import ModelVersion, TargetBuild
from training.runtime import ModelFileMismatch, OnnxDetector, TorchDetector, file_sha256

logger = logging.getLogger(__name__)

_detectors: dict[tuple[int | str, str], OnnxDetector | TorchDetector] = {}
_lock = threading.Lock()


def detector_for(model: ModelVersion) -> OnnxDetector | TorchDetector:
    """The loaded detector of `model` (loaded on first use; later calls are a dict read)."""
    return _cached((model.pk, model.onnx_sha256), lambda: _load(model))


def _cached(key: tuple, load) -> OnnxDetector | TorchDetector:
    detector = _detectors.get(key)
    if detector is not None:
        return detector
    with _lock:
        detector = _detectors.get(key)
        if detector is None:
            detector = _detectors[key] = load()
    return detector


def _load(model: ModelVersion) -> OnnxDetector | TorchDetector:
    if model.onnx:
        path = _local_copy(model.onnx, model.onnx_sha256, ".onnx")
        try:
            return OnnxDetector(path, imgsz=model.imgsz, sha256=model.onnx_sha256)
        except ModelFileMismatch:
            raise
        except Exception:
            logger.exception("ONNX Runtime could not load model %s; using its PyTorch weights", model.pk)
    path = _local_copy(model.weights, model.weights_sha256, ".pt")
    return TorchDetector(path, imgsz=model.imgsz, sha256=model.weights_sha256)


def _local_copy(name: str, sha256: str, suffix: str) -> Path:
    folder = Path(settings.QUORUM_MODEL_CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha256}{suffix}"
    if not path.exists() or file_sha256(path) != sha256:
        # a name of this thread's own: gunicorn's forked workers share the folder (and may
        # share the main thread's ident)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        with default_storage.open(name, "rb") as source, partial.open("wb") as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
        partial.replace(path)
    return path


def detector_for_build(build: TargetBuild) -> OnnxDetector:
    """The loaded artifact of a deployment target's build, at the target's input size and
    with its threads, as the device runs it (loaded on first use, checked by sha256)."""

    def load() -> OnnxDetector:
        path = _local_copy(build.artifact, build.artifact_sha256, ".onnx")
        return OnnxDetector(
            path,
            imgsz=build.settings["input_size"],
            sha256=build.artifact_sha256,
            intra_op_threads=build.settings["threads"],
            inter_op_threads=1,
        )

    return _cached((f"build-{build.pk}", build.artifact_sha256), load)


def cache_clear() -> None:
    with _lock:
        _detectors.clear()
