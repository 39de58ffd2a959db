"""How far annotators agree on the same images.

Pairwise agreement between two annotators on the images both saw: matched pairs TP from
`boxes.matching.match` at the IoU threshold, F1 = 2 TP / (|A| + |B|) (the Dice form, so an
image where both drew nothing agrees fully and counts as F1 = 1), and the mean IoU of the
matched pairs. Summed over images before dividing, so images with many pedestrians weigh
more, as in detection benchmarks.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from boxes.geometry import as_boxes, iou_matrix
from boxes.matching import match


@dataclass(frozen=True)
class PairAgreement:
    images: int  # images both annotators saw
    true_positives: int
    boxes_a: int
    boxes_b: int
    iou_sum: float

    @property
    def f1(self) -> float:
        total = self.boxes_a + self.boxes_b
        return 1.0 if total == 0 else 2 * self.true_positives / total

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.true_positives if self.true_positives else None


@dataclass(frozen=True)
class Agreement:
    annotators: tuple[Hashable, ...]
    pairs: dict[tuple[Hashable, Hashable], PairAgreement] = field(default_factory=dict)

    @property
    def f1_matrix(self) -> np.ndarray:
        """Annotator x annotator pairwise F1 (NaN where two never saw the same image, 1 on the diagonal)."""
        index = {annotator: i for i, annotator in enumerate(self.annotators)}
        matrix = np.full((len(self.annotators),) * 2, np.nan)
        np.fill_diagonal(matrix, 1.0)
        for (a, b), pair in self.pairs.items():
            if pair.images:
                matrix[index[a], index[b]] = matrix[index[b], index[a]] = pair.f1
        return matrix

    @property
    def mean_f1(self) -> float | None:
        """Mean pairwise F1 over pairs that shared at least one image."""
        values = [pair.f1 for pair in self.pairs.values() if pair.images]
        return float(np.mean(values)) if values else None


def pairwise(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]], *, iou_threshold: float = 0.5
) -> Agreement:
    """Agreement of every pair of annotators over the images both saw.

    `annotations_per_image`: one mapping per image, annotator -> boxes (n x 4 xyxy pixels);
    an empty array means "saw it, found nobody", an absent key "did not see it".
    """
    annotators = tuple(sorted({a for image in annotations_per_image for a in image}, key=repr))
    totals: dict[tuple, list] = {pair: [0, 0, 0, 0, 0.0] for pair in combinations(annotators, 2)}
    for image in annotations_per_image:
        present = [a for a in annotators if a in image]
        for a, b in combinations(present, 2):
            boxes_a, boxes_b = as_boxes(image[a]), as_boxes(image[b])
            result = match(boxes_a, boxes_b, iou_threshold=iou_threshold)
            total = totals[a, b]
            total[0] += 1
            total[1] += result.count
            total[2] += len(boxes_a)
            total[3] += len(boxes_b)
            total[4] += float(result.ious.sum())
    pairs = {pair: PairAgreement(*values) for pair, values in totals.items()}
    return Agreement(annotators=annotators, pairs=pairs)


def alpha_units(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]], *, iou_threshold: float = 0.5
) -> tuple[list[list[int | None]], np.ndarray, tuple[Hashable, ...]]:
    """Krippendorff units: one per consensus cluster (kept, uncertain or ignore region).

    Returns the units as lists of value codes, one per annotator (None: did not see the
    image; 0: saw it, drew no box in this cluster; k > 0: their box number k), the distance
    matrix between codes (1 - IoU between boxes of the same image and across images alike,
    1 between a box and 0, 0 between two 0s), and the annotators in column order.
    """
    from boxes.consensus import consolidate

    annotators = tuple(sorted({a for image in annotations_per_image for a in image}, key=repr))
    units: list[list[int | None]] = []
    code_boxes: list[np.ndarray] = []
    for image in annotations_per_image:
        consensus = consolidate(image, iou_threshold=iou_threshold)
        boxes = {a: as_boxes(image[a]) for a in image}
        for cluster in consensus.clusters:
            member_of = dict(cluster.members)
            unit: list[int | None] = []
            for annotator in annotators:
                if annotator not in image:
                    unit.append(None)
                elif annotator in member_of:
                    code_boxes.append(boxes[annotator][member_of[annotator]])
                    unit.append(len(code_boxes))
                else:
                    unit.append(0)
            units.append(unit)
    all_boxes = np.array(code_boxes, dtype=float).reshape(-1, 4)
    distance = np.ones((len(code_boxes) + 1, len(code_boxes) + 1))
    distance[0, 0] = 0.0
    distance[1:, 1:] = 1.0 - iou_matrix(all_boxes, all_boxes)
    return units, distance, annotators


def krippendorff_alpha(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]], *, iou_threshold: float = 0.5
) -> float:
    """Krippendorff's alpha (Krippendorff, "Content Analysis", 4th ed., ch. 12) with the
    distance 1 - IoU between boxes, 1 between a box and "absent", 0 between two absents,
    over units = the consensus clusters of every image (see `alpha_units`).

    alpha = 1 - D_o / D_e, with D_o the mean distance between the values paired within a
    unit (each unit with m >= 2 values weighs 1 / (m - 1) per pair) and D_e the mean
    distance between all pairable values pooled. NaN when nothing is pairable or every
    value is the same.
    """
    units, distance, _ = alpha_units(annotations_per_image, iou_threshold=iou_threshold)
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [unit for unit in pairable if len(unit) >= 2]
    n = sum(len(unit) for unit in pairable)
    if n < 2:
        return float("nan")
    observed = 0.0
    for unit in pairable:
        values = np.array(unit)
        block = distance[np.ix_(values, values)]
        observed += block.sum() / (len(values) - 1)
    observed /= n
    codes, counts = np.unique(np.concatenate([np.array(unit) for unit in pairable]), return_counts=True)
    pooled = distance[np.ix_(codes, codes)]
    expected = (counts[:, None] * counts[None, :] * pooled).sum() / (n * (n - 1))
    return float("nan") if expected == 0 else 1.0 - observed / expected
