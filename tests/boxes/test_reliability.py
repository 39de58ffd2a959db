"""estimate_reliability: the EM finds the poor annotator, and weighted consensus beats everyone."""

import numpy as np
import pytest

from boxes.consensus import consolidate, estimate_reliability
from boxes.matching import match
from tests.boxes.panels import simulated_project


def f1_against(truths, predictions) -> float:
    tp = n_pred = n_truth = 0
    for truth, pred in zip(truths, predictions, strict=True):
        tp += match(pred, truth).count
        n_pred += len(pred)
        n_truth += len(truth)
    return 2 * tp / (n_pred + n_truth)


@pytest.mark.parametrize(
    "names",
    [
        ["careful", "loose", "poor", "misses-small", "shifted"],
        ["careful", "tight", "poor", "trigger-happy", "loose", "sloppy", "misses-occluded"],
    ],
)
def test_em_ranks_the_poor_annotator_last_and_weighted_consensus_is_at_least_the_best(names):
    truths, images = simulated_project(names, seed=len(names), count=200)
    reliability = estimate_reliability(images)
    assert reliability.converged
    assert reliability.ranking()[-1] == "poor"
    assert reliability.annotators["poor"].miss_rate > reliability.annotators["careful"].miss_rate
    singles = {name: f1_against(truths, [image[name] for image in images]) for name in names}
    weighted = f1_against(truths, [consolidate(image, weights=reliability).boxes for image in images])
    assert weighted >= max(singles.values())


def test_a_careful_lone_box_outweighs_two_careless_misses():
    # reliabilities learnt on a project the three share with two other annotators
    _, images = simulated_project(["careful", "loose", "shifted", "poor", "sloppy"], seed=9, count=200)
    reliability = estimate_reliability(images)
    image = {"careful": np.array([[100.0, 100.0, 140.0, 200.0]]), "poor": np.zeros((0, 4)), "sloppy": np.zeros((0, 4))}
    assert len(consolidate(image).boxes) == 0  # a head count drops it
    assert len(consolidate(image, weights=reliability).boxes) == 1  # the evidence keeps it


def test_estimate_is_deterministic():
    _, images = simulated_project(["careful", "loose", "poor"], seed=3, count=60)
    first, second = estimate_reliability(images), estimate_reliability(images)
    assert first.annotators == second.annotators and first.iterations == second.iterations
