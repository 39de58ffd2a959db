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

from boxes.geometry import as_boxes
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
