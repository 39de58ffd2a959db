"""The one path from an image to a model's boxes, shared by evaluation and serving.

Decoding is `datasets.imaging.decode_upright_rgb` everywhere (EXIF orientation applied
once, RGB), as for the training snapshot's images. The model input is that image
letterboxed exactly as ultralytics' own predictor does it for the same model file
(`ultralytics.data.augment.LetterBox`: the longer side scaled to `imgsz`, centred, padded
with grey 114, to the smallest multiple-of-32 rectangle when the export takes any size,
which Quorum's exports do, else to imgsz x imgsz), as a float32 array in [0, 1]. The ONNX
export a run produced is run by ONNX Runtime (the CUDA provider when present, else the
CPU); its output goes through ultralytics' own non-maximum suppression (an end-to-end
head's output is only filtered) and the boxes are mapped back to the original image's
pixels with ultralytics' `scale_boxes`. So a served image is seen exactly as the
evaluation saw it, and both as ultralytics' validator sees a val image.
"""

import hashlib
import threading
from pathlib import Path

import numpy as np
from django.conf import settings

PADDING = 114


def model_input(rgb: np.ndarray, *, imgsz: int, is_rectangle: bool = False) -> np.ndarray:
    """`rgb` (H x W x 3 uint8) letterboxed into imgsz x imgsz (or, `is_rectangle`, into the
    smallest multiple-of-32 rectangle holding it at that scale, as ultralytics predicts
    with a model that takes any size), as a 1 x 3 x h x w float32 array in [0, 1] (RGB
    channel order, as ultralytics feeds its models)."""
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox(new_shape=(imgsz, imgsz), auto=is_rectangle, stride=32, padding_value=PADDING)
    letterboxed = letterbox(image=rgb)
    return np.ascontiguousarray(letterboxed.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelFileMismatch(Exception):
    """A model file's sha256 is not the registry's: it is not loaded."""


class OnnxDetector:
    """One ONNX export, loaded once and warmed up. `predict` may be called from several
    threads at once: ONNX Runtime's `InferenceSession.run` is safe to call concurrently, so
    one process answers several predictions together. Its threads per run come from
    `QUORUM_ONNX_INTRA_OP_THREADS` and `QUORUM_ONNX_INTER_OP_THREADS` unless given."""

    def __init__(
        self,
        path: Path,
        *,
        imgsz: int,
        sha256: str | None = None,
        providers: list[str] | None = None,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
    ):
        import onnxruntime

        if sha256 is not None and file_sha256(path) != sha256:
            raise ModelFileMismatch(f"{path} does not match its sha256 {sha256[:12]}; refusing to load it.")
        available = onnxruntime.get_available_providers()
        self.providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = (
            settings.QUORUM_ONNX_INTRA_OP_THREADS if intra_op_threads is None else intra_op_threads
        )
        options.inter_op_num_threads = (
            settings.QUORUM_ONNX_INTER_OP_THREADS if inter_op_threads is None else inter_op_threads
        )
        self.session = onnxruntime.InferenceSession(str(path), options, providers=self.providers)
        # what answers, said where the answer goes: CUDA with onnxruntime-gpu installed, else the CPU
        self.runtime = f"onnxruntime {self.session.get_providers()[0]}"
        model_input_spec = self.session.get_inputs()[0]
        self.input_name = model_input_spec.name
        # an export with dynamic height and width takes each image's own letterbox rectangle
        self.is_dynamic = not all(isinstance(size, int) for size in model_input_spec.shape[2:])
        self.imgsz = imgsz
        self.forward(np.zeros((1, 3, imgsz, imgsz), dtype=np.float32))  # warm-up: the first run allocates

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def predict(self, rgb: np.ndarray, *, conf: float = 0.25, iou: float = 0.7, max_det: int = 300) -> np.ndarray:
        """Boxes on `rgb` (H x W x 3 uint8, upright): m x 6 rows x1, y1, x2, y2, score,
        class, in the image's own pixels, highest score first."""
        import torch
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import scale_boxes

        batch = model_input(rgb, imgsz=self.imgsz, is_rectangle=self.is_dynamic)
        output = self.forward(batch)
        (kept,) = non_max_suppression(torch.from_numpy(output), conf_thres=conf, iou_thres=iou, max_det=max_det)
        if len(kept):
            kept[:, :4] = scale_boxes(batch.shape[2:], kept[:, :4], rgb.shape[:2])
        rows = _sound(kept[:, :6].numpy().astype(float))
        return rows[np.argsort(-rows[:, 4], kind="stable")]


def _sound(rows: np.ndarray) -> np.ndarray:
    """Rows whose numbers are finite and whose boxes are the right way round: a model's
    degenerate outputs (NaN from an overflow, a box inverted by letterbox rounding) are not
    detections."""
    keep = np.isfinite(rows).all(axis=1) & (rows[:, 2] >= rows[:, 0]) & (rows[:, 3] >= rows[:, 1])
    return rows[keep]


class TorchDetector:
    """The fallback when a model has no usable ONNX export: its PyTorch weights (checked by
    sha256) through ultralytics' own predictor; `predict` answers like OnnxDetector's."""

    def __init__(self, path: Path, *, imgsz: int, sha256: str | None = None):
        from ultralytics import YOLO

        if sha256 is not None and file_sha256(path) != sha256:
            raise ModelFileMismatch(f"{path} does not match its sha256 {sha256[:12]}; refusing to load it.")
        self.model = YOLO(str(path), task="detect")
        self.runtime = "pytorch (ultralytics)"
        self.imgsz = imgsz
        self._lock = threading.Lock()
        self.predict(np.zeros((imgsz, imgsz, 3), dtype=np.uint8))  # warm-up

    def predict(self, rgb: np.ndarray, *, conf: float = 0.25, iou: float = 0.7, max_det: int = 300) -> np.ndarray:
        with self._lock:
            (result,) = self.model.predict(
                np.ascontiguousarray(rgb[:, :, ::-1]), imgsz=self.imgsz, conf=conf, iou=iou, max_det=max_det,
                verbose=False,
            )  # fmt: skip
        boxes = result.boxes
        rows = np.hstack([
            boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()[:, None], boxes.cls.cpu().numpy()[:, None]
        ]).astype(float).reshape(-1, 6)  # fmt: skip
        rows = _sound(rows)
        return rows[np.argsort(-rows[:, 4], kind="stable")]
