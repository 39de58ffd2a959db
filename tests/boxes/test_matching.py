"""boxes.matching: the best one-to-one matching at the threshold, checked by brute force."""

import itertools

import numpy as np
import pytest

from boxes.geometry import ioa_matrix, iou_matrix
from boxes.matching import match, match_blocks, match_by_score, match_iou


def brute_force_best(ious: np.ndarray, threshold: float) -> float:
    """The largest total IoU of a one-to-one matching using pairs at or above the threshold."""
    n, m = ious.shape
    best = 0.0
    small, large = (n, m) if n <= m else (m, n)
    matrix = ious if n <= m else ious.T
    for chosen in itertools.permutations(range(large), small):
        total = sum(matrix[i, j] for i, j in enumerate(chosen) if matrix[i, j] >= threshold)
        best = max(best, total)
    return best


@pytest.mark.parametrize("seed", range(60))
def test_match_finds_the_best_total_iou(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 60, (int(rng.integers(0, 6)), 2))
    b = rng.uniform(0, 60, (int(rng.integers(0, 6)), 2))
    a = np.hstack([a, a + rng.uniform(10, 40, a.shape)])
    b = np.hstack([b, b + rng.uniform(10, 40, b.shape)])
    result = match(a, b, iou_threshold=0.3)
    ious = iou_matrix(a, b)
    assert (result.ious >= 0.3).all()
    assert len(set(result.pairs[:, 0])) == len(result.pairs) == len(set(result.pairs[:, 1]))
    assert result.ious.sum() == pytest.approx(brute_force_best(ious, 0.3) if len(a) and len(b) else 0.0)
    assert sorted([*result.pairs[:, 0], *result.unmatched_a]) == list(range(len(a)))
    assert sorted([*result.pairs[:, 1], *result.unmatched_b]) == list(range(len(b)))


def test_pairs_below_the_threshold_are_dropped_and_results_repeat():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]])
    b = np.array([[0, 0, 10, 10], [105, 105, 115, 115]])
    result = match(a, b, iou_threshold=0.5)
    assert result.pairs.tolist() == [[0, 0]]
    assert result.unmatched_a.tolist() == [1] and result.unmatched_b.tolist() == [1]
    again = match(a, b, iou_threshold=0.5)
    assert again.pairs.tolist() == result.pairs.tolist()
    assert match(np.zeros((0, 4)), b).count == 0


def evalres_loop(gt: np.ndarray, ignore: np.ndarray, dt: np.ndarray, threshold: float = 0.5):
    """Caltech's bbGt.evalRes loop, transcribed: ground truths non-ignored first, each
    detection by score takes the best overlap >= threshold, later on ties, and stops
    looking at ignore regions once it holds a pedestrian."""
    dt = dt[np.argsort(-dt[:, 4], kind="stable")]
    order = np.argsort(ignore, kind="stable")
    gt, ignore = gt[order], ignore[order]
    iou, ioa = iou_matrix(dt[:, :4], gt), ioa_matrix(dt[:, :4], gt)
    used = np.zeros(len(gt), dtype=bool)
    result = []
    for d in range(len(dt)):
        best, best_overlap = -1, threshold
        for g in range(len(gt)):
            if used[g] and not ignore[g]:
                continue
            if best >= 0 and not ignore[best] and ignore[g]:
                break
            overlap = ioa[d, g] if ignore[g] else iou[d, g]
            if overlap < best_overlap:
                continue
            best, best_overlap = g, overlap
        if best >= 0 and not ignore[best]:
            used[best] = True
        result.append(-1 if best < 0 else int(order[best]))
    return np.array(result, dtype=int)


@pytest.mark.parametrize("seed", range(40))
def test_match_by_score_is_the_evalres_loop(seed):
    rng = np.random.default_rng(seed)
    n_gt, n_dt = int(rng.integers(0, 12)), int(rng.integers(0, 30))
    xy = rng.integers(0, 60, (n_gt, 2)).astype(float)  # a small grid: overlaps and exact ties
    gt = np.hstack([xy, xy + rng.integers(10, 40, (n_gt, 2))])
    ignore = rng.random(n_gt) < 0.3
    picks = rng.integers(0, max(n_gt, 1), n_dt)
    base = gt[picks] if n_gt else np.zeros((n_dt, 4))
    boxes = base + rng.integers(-4, 5, (n_dt, 4)) * (rng.random((n_dt, 1)) < 0.7)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    dt = np.column_stack([boxes, np.round(rng.random(n_dt), 1)])  # score ties
    result = match_by_score(gt, dt, ignore=ignore)
    np.testing.assert_array_equal(result.matched, evalres_loop(gt, ignore, dt))
    np.testing.assert_array_equal(result.is_ignored, [m >= 0 and bool(ignore[m]) for m in result.matched])
    np.testing.assert_array_equal(result.is_tp, (result.matched >= 0) & ~result.is_ignored)
    np.testing.assert_array_equal(result.scores, dt[result.order, 4])


@pytest.mark.parametrize("seed", range(30))
def test_match_blocks_equals_matching_each_block(seed):
    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(0, 25)), int(rng.integers(0, 25))
    # IoUs on a coarse grid: many rows with two candidates in a block, and exact ties
    ious = np.round(rng.random((rows, columns)), 1) * (rng.random((rows, columns)) < 0.5)
    row_group, column_group = rng.integers(0, 3, rows), rng.integers(0, 4, columns)
    count, iou_sum = match_blocks(ious, row_group, column_group, groups=(3, 4))
    for r in range(3):
        for c in range(4):
            block = ious[np.ix_(row_group == r, column_group == c)]
            expected = match_iou(block, iou_threshold=0.5)
            assert count[r, c] == expected.count
            assert iou_sum[r, c] == pytest.approx(expected.ious.sum(), abs=1e-12)
