"""One-to-one matching of two sets of boxes at an IoU threshold.

`match` pairs boxes of `a` with boxes of `b` by the Hungarian algorithm (Kuhn 1955;
scipy's linear_sum_assignment) on the cost 1 - IoU, where a pair below the threshold costs
as much as no pair at all (1): the result is the one-to-one matching with the largest total
IoU among pairs at or above the threshold, and pairs below it are dropped. The same input
always gives the same matching.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from boxes.geometry import as_boxes, iou_matrix


@dataclass(frozen=True)
class Matches:
    pairs: np.ndarray  # K x 2: index in a, index in b, sorted by index in a
    ious: np.ndarray  # K: IoU of each pair
    unmatched_a: np.ndarray  # indices of a without a partner
    unmatched_b: np.ndarray  # indices of b without a partner

    @property
    def count(self) -> int:
        return len(self.pairs)


def match(a: np.ndarray, b: np.ndarray, *, iou_threshold: float = 0.5) -> Matches:
    """Match boxes of `a` (N x 4) and `b` (M x 4), xyxy pixels, one to one at `iou_threshold`."""
    a, b = as_boxes(a), as_boxes(b)
    return match_iou(iou_matrix(a, b), iou_threshold=iou_threshold)


def match_iou(ious: np.ndarray, *, iou_threshold: float = 0.5) -> Matches:
    """`match` on a precomputed N x M IoU matrix."""
    n, m = ious.shape
    if n == 0 or m == 0:
        return Matches(np.zeros((0, 2), dtype=int), np.zeros(0), np.arange(n), np.arange(m))
    valid = ious >= iou_threshold
    cost = np.where(valid, 1.0 - ious, 1.0)
    rows, cols = linear_sum_assignment(cost)
    keep = valid[rows, cols]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]
    return Matches(
        pairs=np.column_stack([rows, cols]).astype(int),
        ious=ious[rows, cols],
        unmatched_a=np.setdiff1d(np.arange(n), rows),
        unmatched_b=np.setdiff1d(np.arange(m), cols),
    )
