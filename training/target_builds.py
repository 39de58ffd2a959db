"""A model measured on a deployment target, on a worker: the artifact, its accuracy at the
camera's resolution, its latency on the target's threads, its size, pass or fail.

- The artifact: for fp32, the model's own ONNX export (dynamic height and width, letterboxed
  to the target's input size on the longer side, as serving runs it); for int8, that export's
  convolutions quantized statically with ONNX Runtime (QDQ, int8 weights per channel, uint8
  activations),
  calibrated on train images of the model's snapshot (QUORUM_TARGET_CALIBRATION_IMAGES, at
  least 100 when the snapshot has them), never val or test ones.
- Accuracy: every val image is first resized to fit the camera's frame (the scene as the
  camera would see it, aspect kept, never enlarged), the artifact predicts on that, and its
  boxes are scaled back to the stored image's pixels and scored by `model_evaluate` against
  the humans' leave-one-out references, exactly as the model page is (AP50, MR-2, recall at
  the humans' precision, the operating score).
- Latency: one image at a time through the whole predict path (letterbox, ONNX Runtime
  with the target's intra-op threads and one inter-op thread, non-maximum suppression) on
  the camera-sized val images, after a warm-up; p50 and p95 of at least 30 calls.
"""

import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from config.media import storage_read
from datasets.imaging import decode_upright_rgb
from datasets.models import Image
from training.evaluation import CONFIDENCE_FLOOR, MAX_DETECTIONS, model_evaluate, split_images
from training.models import DeploymentTarget, TargetBuild
from training.runner import verified_onnx_path
from training.runtime import OnnxDetector, file_sha256, model_input
from training.targets import build_reasons

logger = logging.getLogger(__name__)
LATENCY_CALLS = 30
WARM_UP = 3
CALIBRATION_MIN_IMAGES = 100  # int8 is calibrated on at least this many train images where the snapshot has them


def target_build_execute(*, build_id: int) -> TargetBuild | None:
    """Measure one queued build; None when it is not queued (taken, or gone)."""
    with transaction.atomic():
        build = (
            TargetBuild.objects.select_for_update()
            .select_related("model__consensus_version", "model__snapshot__consensus_version", "target")
            .filter(pk=build_id, state=TargetBuild.State.QUEUED)
            .first()
        )
        if build is None:
            return None
        build.state = TargetBuild.State.RUNNING
        build.save(update_fields=["state"])
    try:
        _measure(build)
    except Exception as error:
        logger.exception("Build %s of model %s on target %s failed.", build.pk, build.model_id, build.target_id)
        build.state, build.error, build.passed = TargetBuild.State.FAILED, f"{type(error).__name__}: {error}", False
        build.reasons = [f"the build failed: {error}"]
        build.finished_at = timezone.now()
        build.save(update_fields=["state", "error", "passed", "reasons", "finished_at"])
        return build
    return build


def _measure(build: TargetBuild) -> None:
    model, spec = build.model, build.settings
    size, threads = spec["input_size"], spec["threads"]
    camera = (spec["camera_width"], spec["camera_height"])
    with tempfile.TemporaryDirectory(prefix="quorum-target-") as folder:
        source = verified_onnx_path(model, Path(folder))
        if file_sha256(source) != model.onnx_sha256:
            raise RuntimeError(f"The ONNX export of model {model.number} does not match its sha256.")
        if spec["precision"] == DeploymentTarget.Precision.INT8:
            calibration = split_images(
                version=model.snapshot.consensus_version,
                split="train",
                limit=max(CALIBRATION_MIN_IMAGES, settings.QUORUM_TARGET_CALIBRATION_IMAGES),
            )
            artifact = Path(folder) / "int8.onnx"
            onnx_quantize_int8(source, artifact, images=_camera_images(calibration, camera), imgsz=size)
            build.calibration_images = len(calibration)
            name = f"targets/{model.project_id}/model-{model.number}/build-{build.pk}-int8.onnx"
            build.artifact = default_storage.save(name, ContentFile(artifact.read_bytes()))
            build.artifact_sha256 = file_sha256(artifact)
        else:
            artifact = source
            build.artifact, build.artifact_sha256 = model.onnx, model.onnx_sha256
        build.size_bytes = artifact.stat().st_size
        detector = OnnxDetector(artifact, imgsz=size, intra_op_threads=threads, inter_op_threads=1)
        version = model.consensus_version
        val_ids = split_images(version=version, split="val")
        detections, timings = [], []
        for rgb, scale in _camera_images(val_ids, camera):
            started = time.perf_counter()
            rows = detector.predict(rgb, conf=CONFIDENCE_FLOOR, max_det=MAX_DETECTIONS)
            timings.append((time.perf_counter() - started) * 1000)
            rows = rows[:, :5].copy()
            rows[:, :4] /= scale  # back to the stored image's pixels, where the references are
            detections.append(rows)
        timings = _latencies(detector, val_ids, camera, timings)
    evaluation = model_evaluate(version=version, image_ids=val_ids, detections=detections, bootstrap=200)
    evaluation["camera"] = {"width": camera[0], "height": camera[1]}
    if spec["precision"] == DeploymentTarget.Precision.INT8 and build.calibration_images < CALIBRATION_MIN_IMAGES:
        evaluation["note"] = f"calibrated on {build.calibration_images} train images: the snapshot has no more"
    build.evaluation = evaluation
    build.latency_p50_ms = float(np.percentile(timings, 50))
    build.latency_p95_ms = float(np.percentile(timings, 95))
    build.reasons = build_reasons(spec, p95_ms=build.latency_p95_ms, size_bytes=build.size_bytes)
    build.passed = not build.reasons
    build.state, build.finished_at = TargetBuild.State.DONE, timezone.now()
    build.save()


def _latencies(detector: OnnxDetector, image_ids: list[int], camera, timings: list[float]) -> list[float]:
    """The val pass's timings, after the warm-up, topped up to LATENCY_CALLS calls."""
    timings = timings[WARM_UP:]
    if len(timings) >= LATENCY_CALLS or not image_ids:
        return timings or [float("nan")]
    images = [rgb for rgb, _ in _camera_images(image_ids[:10], camera)]
    index = 0
    while len(timings) < LATENCY_CALLS:
        started = time.perf_counter()
        detector.predict(images[index % len(images)], conf=CONFIDENCE_FLOOR, max_det=MAX_DETECTIONS)
        timings.append((time.perf_counter() - started) * 1000)
        index += 1
    return timings


def camera_view(rgb: np.ndarray, camera: tuple[int, int]) -> tuple[np.ndarray, float]:
    """`rgb` as a camera of `camera` (width, height) pixels would see the scene: scaled to fit
    its frame, aspect kept, never enlarged; and the scale applied."""
    height, width = rgb.shape[:2]
    scale = min(camera[0] / width, camera[1] / height, 1.0)
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = PILImage.fromarray(rgb).resize(size, PILImage.Resampling.BILINEAR)
    return np.asarray(resized), size[0] / width


def _camera_images(image_ids: list[int], camera: tuple[int, int]):
    """Each image decoded as stored, then seen by the camera: (rgb, scale), lazily."""
    files = dict(Image.objects.filter(pk__in=image_ids).values_list("pk", "file"))
    for image_id in image_ids:
        stored = io.BytesIO(storage_read(files[image_id]))
        decoded = decode_upright_rgb(stored, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
        yield camera_view(np.asarray(decoded.image), camera)


def onnx_quantize_int8(source: Path, target: Path, *, images, imgsz: int) -> None:
    """`source` quantized statically to int8 at `target`, calibrated on `images` ((rgb,
    scale) pairs) letterboxed as serving letterboxes them."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(images)

        def get_next(self):
            item = next(self.batches, None)
            return None if item is None else {input_name: model_input(item[0], imgsz=imgsz)}

    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        # Convolutions only: quantizing the head's Concat too puts box pixels (0 to the input
        # size) and class scores (0 to 1) in one uint8 scale, and every score rounds to 0 (the
        # whole-graph int8 of a yolo26n found nothing on synthetic HD scenes; conv-only kept
        # fp32's detections; bench/targets.py measures both sides).
        op_types_to_quantize=["Conv"],
    )
