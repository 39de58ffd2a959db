"""boxes.matching: the best one-to-one matching at the threshold, checked by brute force."""

import itertools

import numpy as np
import pytest

from boxes.geometry import iou_matrix
from boxes.matching import match


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
