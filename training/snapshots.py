"""Dataset snapshots: a consensus version's ground truth and the project's split, frozen as
a YOLO dataset in storage.

Only the train and val splits go in; the test split is kept apart for the registry's
scoring. Below-quorum clusters are left out. Ignore regions (crowds, "can't tell") are
not boxes a detector should learn or be punished for: they are masked out of the training
images, filled with the image's mean colour, so that neither a detection nor a miss there
teaches anything. The content hash covers every image's bytes (by sha256), split, boxes
and ignore regions, and the labels, so the same inputs give the same snapshot, and a
snapshot is written once.
"""

import hashlib
import io
import json

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from boxes.formats import FormatBox, FormatImage, yolo_data_yaml, yolo_label_text
from config.errors import Conflict
from config.media import storage_put, storage_read
from datasets.imaging import decode_upright_rgb
from groundtruth.models import ConsensusVersion, GroundTruthBox, ImageConsensus, VersionState
from projects.models import Split
from training.models import DatasetSnapshot
from transfer.exports import export_file_names

FORMAT = "quorum-yolo-snapshot-1"
SPLITS = (Split.TRAIN, Split.VAL)


def snapshot_create(*, version: ConsensusVersion, user: AbstractBaseUser | None) -> DatasetSnapshot:
    """The snapshot of `version` (a finished consensus version): made and written to
    storage the first time, the existing one when the same inputs were frozen before."""
    if version.state != VersionState.DONE:
        raise Conflict(f"Version {version.number} is {version.state}; snapshot a finished version.", code="not_done")
    project = version.project
    label = project.labels[0]
    rows = list(
        ImageConsensus.objects.filter(version=version, image__split__in=SPLITS)
        .order_by("image_id")
        .values_list("pk", "image_id", "image__sha256", "image__split", "image__file", "image__width", "image__height")
    )
    boxes: dict[int, list[tuple]] = {}
    for row_id, x1, y1, x2, y2, ignore in (
        GroundTruthBox.objects.filter(image_consensus__version=version, is_uncertain=False)
        .order_by("pk")
        .values_list("image_consensus_id", "x1", "y1", "x2", "y2", "is_ignore")
    ):
        boxes.setdefault(row_id, []).append((x1, y1, x2, y2, ignore))
    digest = hashlib.sha256(json.dumps({"format": FORMAT, "labels": list(project.labels)}).encode())
    for row_id, _, sha256, split, *_ in rows:
        entry = [
            sha256,
            split,
            sorted([round(v, 4) for v in box[:4]] + [bool(box[4])] for box in boxes.get(row_id, [])),
        ]
        digest.update(json.dumps(entry).encode())
    content_hash = digest.hexdigest()
    existing = DatasetSnapshot.objects.filter(project=project, content_hash=content_hash).first()
    if existing is not None:
        return existing
    prefix = f"snapshots/{project.pk}/{content_hash}"
    names = export_file_names(project)
    counts = {split.value: 0 for split in SPLITS}
    box_count = masked = 0
    for row_id, image_id, _, split, file, width, height in rows:
        stem = names[image_id].rsplit(".", 1)[0]
        image_boxes = boxes.get(row_id, [])
        regions = [box[:4] for box in image_boxes if box[4]]
        pixels = _masked_jpeg(file, regions)
        pedestrians = [FormatBox(*box[:4], label) for box in image_boxes if not box[4]]
        _save(f"{prefix}/images/{split}/{stem}.jpg", pixels)
        text = yolo_label_text(FormatImage(file_name=f"{stem}.jpg", width=width, height=height,
                                           boxes=tuple(pedestrians)), labels=list(project.labels))  # fmt: skip
        _save(f"{prefix}/labels/{split}/{stem}.txt", text.encode())
        counts[split] += 1
        box_count += len(pedestrians)
        masked += len(regions)
    splits = {"train": "images/train", "val": "images/val"}
    _save(f"{prefix}/data.yaml", yolo_data_yaml(labels=project.labels, splits=splits).encode())
    with transaction.atomic():
        snapshot, _ = DatasetSnapshot.objects.get_or_create(
            project=project,
            content_hash=content_hash,
            defaults={
                "consensus_version": version,
                "storage_prefix": prefix,
                "images": counts,
                "boxes": box_count,
                "masked_regions": masked,
                "created_by": user,
            },
        )
    return snapshot


def _masked_jpeg(file: str, regions: list[tuple]) -> bytes:
    """The stored image, upright, with each ignore region filled with the image's mean colour."""
    image = decode_upright_rgb(io.BytesIO(storage_read(file)), max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS).image
    if regions:
        pixels = np.asarray(image).copy()
        mean = pixels.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        for x1, y1, x2, y2 in regions:
            pixels[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))] = mean
        from PIL import Image

        image = Image.fromarray(pixels)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def _save(name: str, data: bytes) -> None:
    storage_put(name, data)
