"""Loaded models, once per process: each model version's ONNX export copied from Quorum's
own storage to a local folder, checked by sha256, loaded and warmed up by
`training.runtime.OnnxDetector`, and kept by (version id, sha256)."""

import threading
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from training.models import ModelVersion
from training.runtime import OnnxDetector, file_sha256

_detectors: dict[tuple[int, str], OnnxDetector] = {}
_lock = threading.Lock()


def detector_for(model: ModelVersion) -> OnnxDetector:
    """The loaded detector of `model` (loaded on first use; later calls are a dict read)."""
    key = (model.pk, model.onnx_sha256)
    detector = _detectors.get(key)
    if detector is not None:
        return detector
    with _lock:
        detector = _detectors.get(key)
        if detector is None:
            detector = OnnxDetector(_local_copy(model), imgsz=model.imgsz, sha256=model.onnx_sha256)
            _detectors[key] = detector
    return detector


def _local_copy(model: ModelVersion) -> Path:
    folder = Path(settings.QUORUM_MODEL_CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.onnx_sha256}.onnx"
    if not path.exists() or file_sha256(path) != model.onnx_sha256:
        partial = path.with_suffix(f".{threading.get_ident()}.part")
        with default_storage.open(model.onnx, "rb") as source, partial.open("wb") as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
        partial.replace(path)
    return path


def cache_clear() -> None:
    with _lock:
        _detectors.clear()
