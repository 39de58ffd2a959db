"""A model's reference profile: what its inputs and outputs looked like when it was made, the
baseline that serving's drift reports compare a window of predictions with.

Image features come from the snapshot's train images (their stored originals): width,
height, brightness and contrast (mean and standard deviation of the grey level, ITU-R
BT.601 luma, on every 4th pixel: the same measure serving logs). Output features come from
the model's own predictions on the val images at the serving default confidence (0.25):
boxes per image, median box height per image, mean confidence per image. Values are kept
as samples (at most `SAMPLE` per feature) so that any binning can be made later.
"""

import io
from collections.abc import Sequence

import numpy as np
from django.conf import settings

from config.media import storage_read
from datasets.imaging import decode_upright_rgb
from datasets.models import Image
from groundtruth.models import ConsensusVersion
from training.evaluation import split_images

SAMPLE = 200
SERVING_CONFIDENCE = 0.25
FEATURES = ("width", "height", "brightness", "contrast", "boxes", "median_box_height", "mean_confidence")


def grey_features(rgb: np.ndarray) -> dict[str, float]:
    """Brightness and contrast of an upright RGB image (see the module docstring)."""
    sample = rgb[::4, ::4].astype(np.float32)
    grey = sample @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return {"brightness": float(grey.mean()), "contrast": float(grey.std())}


def image_features(image_ids) -> dict[int, dict[str, float]]:
    """Per stored image (by id, in id order): width, height, brightness and contrast, the
    measures serving logs for each image it answers."""
    out = {}
    rows = Image.objects.filter(pk__in=list(image_ids)).order_by("pk").values_list("pk", "file", "width", "height")
    for pk, file, width, height in rows:
        stored = io.BytesIO(storage_read(file))
        rgb = np.asarray(decode_upright_rgb(stored, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS).image)
        out[pk] = {"width": width, "height": height, **grey_features(rgb)}
    return out


def output_features(rows: np.ndarray) -> dict[str, float | None]:
    """Boxes, median box height and mean confidence of one answer (m x 5+ rows)."""
    rows = np.asarray(rows, dtype=float)
    if rows.size == 0:
        return {"boxes": 0, "median_box_height": None, "mean_confidence": None}
    return {
        "boxes": len(rows),
        "median_box_height": float(np.median(rows[:, 3] - rows[:, 1])),
        "mean_confidence": float(rows[:, 4].mean()),
    }


def reference_profile_build(*, version: ConsensusVersion, val_detections: Sequence[np.ndarray]) -> dict:
    """The profile (feature -> list of values) of a model trained on `version`'s train split,
    whose detections on the val split (in `split_images` order) are `val_detections`."""
    train_ids = split_images(version=version, split="train")
    rng = np.random.default_rng(0)
    if len(train_ids) > SAMPLE:
        train_ids = sorted(rng.choice(train_ids, SAMPLE, replace=False).tolist())
    profile: dict[str, list] = {name: [] for name in FEATURES}
    for features in image_features(train_ids).values():
        for name, value in features.items():
            profile[name].append(round(value, 3) if name in ("brightness", "contrast") else value)
    for rows in val_detections:
        rows = np.asarray(rows, dtype=float).reshape(-1, 5)
        for name, value in output_features(rows[rows[:, 4] >= SERVING_CONFIDENCE]).items():
            if value is not None:
                profile[name].append(round(value, 4))
    return profile
