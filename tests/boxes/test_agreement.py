"""boxes.agreement.pairwise on hand cases and simulated panels."""

import numpy as np
import pytest

from boxes.agreement import pairwise
from boxes.simulate import PROFILES, simulate_annotator


def test_hand_case_f1_and_mean_iou():
    images = [
        {"ann": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "bob": np.array([[0, 0, 10, 10]])},
        {"ann": np.zeros((0, 4)), "bob": np.zeros((0, 4))},
        {"ann": np.array([[0, 0, 10, 10]]), "cid": np.array([[0, 0, 10, 10]])},
    ]
    agreement = pairwise(images)
    ann_bob = agreement.pairs["ann", "bob"]
    assert (ann_bob.images, ann_bob.true_positives, ann_bob.boxes_a, ann_bob.boxes_b) == (2, 1, 2, 1)
    assert ann_bob.f1 == pytest.approx(2 / 3)
    assert ann_bob.mean_iou == pytest.approx(1.0)
    assert agreement.pairs["bob", "cid"].images == 0
    matrix = agreement.f1_matrix
    assert np.isnan(matrix[1, 2]) and matrix[0, 2] == pytest.approx(1.0)


def test_careful_annotators_agree_more_than_sloppy_ones():
    rng = np.random.default_rng(3)
    images = []
    for _ in range(80):
        n = int(rng.integers(1, 8))
        xy = rng.uniform(0, 1000, (n, 2))
        truth = np.hstack([xy, xy + rng.uniform(30, 200, (n, 2))])
        images.append(
            {
                name: simulate_annotator(truth, profile=PROFILES[profile], rng=rng, width=1400, height=1400).boxes
                for name, profile in (("c1", "careful"), ("c2", "careful"), ("s1", "sloppy"), ("s2", "sloppy"))
            }
        )
    agreement = pairwise(images)
    assert agreement.pairs["c1", "c2"].f1 > agreement.pairs["s1", "s2"].f1 + 0.1
    assert agreement.pairs["c1", "c2"].mean_iou > agreement.pairs["s1", "s2"].mean_iou
