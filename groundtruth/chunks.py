"""What one chunk of a consensus version hands to the version's finish: its images'
agreement counts (`boxes.agreement.ImageCounts`), the report's counts (the leave-one-out
baseline's per-annotator counts and how many images each annotator saw) and the histogram of
member IoUs, stored on the chunk's row as a numpy .npz of plain arrays (read back with
`allow_pickle=False`: never code)."""

import io
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from boxes.agreement import ImageCounts
from boxes.baseline import AnnotatorCounts

_AGREEMENT = ("counts", "units", "uncertain", "seen", "pair_image", "pair_a", "pair_b", "pair_stats")


@dataclass(frozen=True)
class ReportCounts:
    """The agreement report's share of one chunk: baseline counts and images seen per annotator."""

    baseline: dict[int, AnnotatorCounts]
    annotator_images: dict[int, int]


@dataclass(frozen=True)
class ChunkCounts:
    counted: ImageCounts
    report: ReportCounts
    iou_counts: np.ndarray


def chunk_counts_dump(counted: ImageCounts, report: ReportCounts, iou_counts: np.ndarray) -> bytes:
    """The chunk's counts as .npz bytes; annotators are user ids (integers)."""
    arrays = {name: np.asarray(getattr(counted, name)) for name in _AGREEMENT}
    arrays["pair_a"] = arrays["pair_a"].astype(np.int64)
    arrays["pair_b"] = arrays["pair_b"].astype(np.int64)
    seen = sorted(report.annotator_images)
    arrays["annotators"] = np.array(counted.annotators, dtype=np.int64)
    arrays["seen_annotator"] = np.array(seen, dtype=np.int64)
    arrays["seen_images"] = np.array([report.annotator_images[a] for a in seen], dtype=np.int64)
    rows, heights, offsets = [], [], []
    for annotator, record in sorted(report.baseline.items()):
        rows.extend((annotator, image, *counts) for image, counts in zip(record.images, record.counts, strict=True))
        heights.extend((annotator, label, found, total) for label, (found, total) in record.heights.items())
        offsets.append((annotator, record.offset_count, *record.offset_sum))
    arrays["baseline_rows"] = np.array(rows, dtype=np.int64).reshape(-1, 5)
    arrays["height_annotator"] = np.array([row[0] for row in heights], dtype=np.int64)
    arrays["height_label"] = np.array([row[1] for row in heights], dtype=str)
    arrays["height_counts"] = np.array([row[2:] for row in heights], dtype=np.int64).reshape(-1, 2)
    arrays["offsets"] = np.array(offsets, dtype=float).reshape(-1, 14)
    arrays["iou_counts"] = np.asarray(iou_counts, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def chunk_counts_load(data: bytes) -> ChunkCounts:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        values = {name: arrays[name] for name in arrays.files}
    counted = ImageCounts(
        **{name: values[name] for name in _AGREEMENT},
        annotators=tuple(int(a) for a in values["annotators"]),
    )
    baseline: dict[int, AnnotatorCounts] = defaultdict(AnnotatorCounts)
    rows = values["baseline_rows"]
    for annotator in np.unique(rows[:, 0]).tolist():
        mine = rows[rows[:, 0] == annotator]
        baseline[annotator] = AnnotatorCounts(images=mine[:, 1], counts=mine[:, 2:5])
    for annotator, label, (found, total) in zip(
        values["height_annotator"].tolist(), values["height_label"].tolist(), values["height_counts"].tolist(),
        strict=True,
    ):  # fmt: skip
        baseline[annotator].heights[label] = [found, total]
    for annotator, count, *sums in values["offsets"].tolist():
        record = baseline[int(annotator)]
        record.offset_count, record.offset_sum = int(count), np.array(sums)
    report = ReportCounts(
        baseline=dict(baseline),
        annotator_images=dict(zip(values["seen_annotator"].tolist(), values["seen_images"].tolist(), strict=True)),
    )
    return ChunkCounts(counted=counted, report=report, iou_counts=values["iou_counts"])
