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

from boxes.geometry import as_boxes, ioa_matrix, iou_matrix


@dataclass(frozen=True)
class Matches:
    """A one-to-one matching of boxes `a` to boxes `b`."""

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
    matched_a, matched_b = np.zeros(n, dtype=bool), np.zeros(m, dtype=bool)
    matched_a[rows], matched_b[cols] = True, True
    return Matches(
        pairs=np.column_stack([rows, cols]).astype(int),
        ious=ious[rows, cols],
        unmatched_a=np.flatnonzero(~matched_a),
        unmatched_b=np.flatnonzero(~matched_b),
    )


@dataclass(frozen=True)
class ScoredMatches:
    """Detections in score order (highest first, ties in input order) and their fate."""

    order: np.ndarray  # D: input index of each detection, in score order
    scores: np.ndarray  # D: their scores
    matched: np.ndarray  # D: index of the truth box each took, -1 for none
    is_tp: np.ndarray  # D: took a truth box that is not an ignore region
    is_ignored: np.ndarray  # D: took an ignore region: counts neither as true nor as false positive


def match_by_score(
    truth: np.ndarray, detections: np.ndarray, *, ignore: np.ndarray | None = None, iou_threshold: float = 0.5
) -> ScoredMatches:
    """Score-ordered evaluation matching of detections (D x 5: x1, y1, x2, y2, score) to one
    image's truth boxes (G x 4), as detection benchmarks do (Caltech's bbGt.evalRes; COCO's
    evaluateImg is the same rule):

    - detections are taken by score, highest first (a stable sort: ties keep input order);
    - each takes the not-yet-taken truth box with the highest IoU >= the threshold, the
      later one on ties, looking at ignore regions only when no real box qualifies;
    - against an ignore region the overlap is the intersection over the detection's own
      area (a detection inside a crowd is not penalised), and a region may be taken by
      any number of detections; a detection that takes one counts neither way.
    """
    truth = as_boxes(truth)
    detections = np.asarray(detections, dtype=float).reshape(-1, 5)
    regions = np.zeros(len(truth), dtype=bool) if ignore is None else np.asarray(ignore, dtype=bool)
    order = np.argsort(-detections[:, 4], kind="stable")
    boxes = as_boxes(detections[order, :4])
    real, crowd = np.flatnonzero(~regions), np.flatnonzero(regions)
    iou = iou_matrix(boxes, truth[real])
    ioa = ioa_matrix(boxes, truth[crowd])
    taken = np.zeros(len(real), dtype=bool)
    matched = np.full(len(boxes), -1)
    is_tp = np.zeros(len(boxes), dtype=bool)
    is_ignored = np.zeros(len(boxes), dtype=bool)
    for d in range(len(boxes)):
        if len(real):
            row = np.where(taken, -1.0, iou[d])
            best = row.max()
            if best >= iou_threshold:
                g = len(row) - 1 - int(np.argmax(row[::-1]))  # the later one on ties
                taken[g] = True
                matched[d], is_tp[d] = real[g], True
                continue
        if len(crowd):
            row = ioa[d]
            best = row.max()
            if best >= iou_threshold:
                matched[d], is_ignored[d] = crowd[len(row) - 1 - int(np.argmax(row[::-1]))], True
    return ScoredMatches(order=order, scores=detections[order, 4], matched=matched, is_tp=is_tp, is_ignored=is_ignored)


def match_blocks(
    ious: np.ndarray,
    row_group: np.ndarray,
    column_group: np.ndarray,
    *,
    groups: tuple[int, int],
    iou_threshold: float = 0.5,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`match_iou` within every block of a grouped IoU matrix at once: rows belong to
    `row_group` (0 .. R-1), columns to `column_group` (0 .. C-1), and block (r, c) is
    matched one to one on its own. Returns R x C arrays: matched pairs and their IoU sum.

    `allowed` (same shape as `ious`) leaves blocks out (for one annotator against another,
    each pair once). Where no row or column of a block has two candidates at the threshold,
    the candidates are the matching (the Hungarian result, found without solving); the
    other blocks are solved by `match_iou`."""
    rows_total, columns_total = groups
    valid = ious >= iou_threshold
    if allowed is not None:
        valid &= allowed
    first, second = np.nonzero(valid)
    block = row_group[first] * columns_total + column_group[second]
    size = rows_total * columns_total
    count = np.bincount(block, minlength=size).astype(float)
    iou_sum = np.bincount(block, weights=ious[first, second], minlength=size)
    if len(first):
        row_key = first * columns_total + column_group[second]
        column_key = second * rows_total + row_group[first]
        crowded = (np.bincount(row_key)[row_key] > 1) | (np.bincount(column_key)[column_key] > 1)
        for index in np.unique(block[crowded]).tolist():
            r, c = divmod(index, columns_total)
            sub = ious[np.ix_(np.flatnonzero(row_group == r), np.flatnonzero(column_group == c))]
            result = match_iou(sub, iou_threshold=iou_threshold)
            count[index], iou_sum[index] = result.count, float(result.ious.sum())
    return count.reshape(rows_total, columns_total), iou_sum.reshape(rows_total, columns_total)
