"""Counting a project in chunks gives the same figures as one pass over it: the agreement
report (`boxes.agreement`) and the human baseline (`boxes.baseline`) from per-chunk counts,
merged, against the one-pass functions on random panels (partial ones included)."""

import itertools

import numpy as np
import pytest

from boxes.agreement import counts_concatenate, image_counts, measure, report_from_counts
from boxes.baseline import baseline_counts, baseline_counts_merge, baseline_from_counts, human_baseline
from boxes.consensus import consolidate_image
from boxes.reliability import estimate_reliability
from tests.boxes.panels import simulated_project

PANEL = ["careful", "loose", "sloppy", "shifted", "misses-small"]


def partial_panels(seed: int, count: int) -> list[dict]:
    """Simulated panels where each image lost a random subset of its annotators (one image
    in ten keeps a single one), with annotators as integers, as Quorum's user ids."""
    _, images = simulated_project(PANEL, count=count, seed=seed)
    rng = np.random.default_rng(seed + 100)
    result = []
    for image in images:
        names = list(image)
        keep = 1 if rng.random() < 0.1 else int(rng.integers(2, len(names) + 1))
        chosen = sorted(rng.choice(len(names), size=keep, replace=False).tolist())
        result.append({10 + index * 7: image[names[index]] for index in chosen})  # ids that sort differently as text
    return result


def cuts(count: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    edges = sorted({0, count, *rng.integers(1, count, size=4).tolist()})
    return list(itertools.pairwise(edges))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_agreement_report_from_chunks_equals_one_pass(seed):
    images = partial_panels(seed, 90)
    whole = measure(images, bootstrap=300, seed=seed)
    parts = [image_counts(images[start:end]) for start, end in cuts(len(images), seed)]
    chunked = report_from_counts(counts_concatenate(parts), bootstrap=300, seed=seed)

    for name in ("f1", "mean_pair_f1", "mean_iou", "alpha"):
        assert getattr(chunked, name) == pytest.approx(getattr(whole, name), abs=1e-9)
        assert chunked.intervals[name] == pytest.approx(whole.intervals[name], abs=1e-9, nan_ok=True)
        np.testing.assert_allclose(chunked.draws[name], whole.draws[name], atol=1e-9, equal_nan=True)
    for name in ("annotators", "f1", "mean_iou", "alpha", "units", "uncertain"):
        np.testing.assert_allclose(
            getattr(chunked.images, name), getattr(whole.images, name), atol=1e-9, equal_nan=True
        )
    assert chunked.pairwise.annotators == whole.pairwise.annotators
    assert chunked.pairwise.pairs == whole.pairwise.pairs
    np.testing.assert_allclose(chunked.pairwise.f1_matrix, whole.pairwise.f1_matrix, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("seed", [4, 5])
def test_the_human_baseline_from_chunks_equals_one_pass(seed):
    images = partial_panels(seed, 120)
    whole = human_baseline(images, min_images=10, bootstrap=300, seed=seed)
    parts = [baseline_counts(images[start:end], first_index=start) for start, end in cuts(len(images), seed)]
    chunked = baseline_from_counts(baseline_counts_merge(parts), images=len(images), min_images=10, bootstrap=300,
                                   seed=seed)  # fmt: skip

    assert chunked.too_few_images == whole.too_few_images
    assert list(chunked.annotators) == list(whole.annotators) and len(whole.annotators) >= 4
    for annotator, expected in whole.annotators.items():
        got = chunked.annotators[annotator]
        assert got.point == expected.point
        assert got.recall_by_height == expected.recall_by_height
        for name, interval in expected.intervals.items():
            assert got.intervals[name] == pytest.approx(interval, abs=1e-9)
        assert got.habits.boxes == expected.habits.boxes
        for field in ("edges_px", "shift_px", "edges_heights", "shift_heights"):
            assert getattr(got.habits, field) == pytest.approx(getattr(expected.habits, field), abs=1e-9)
    for name, value in whole.human_mean.items():
        assert chunked.human_mean[name] == pytest.approx(value, abs=1e-9)
        assert chunked.human_intervals[name] == pytest.approx(whole.human_intervals[name], abs=1e-9)


def test_the_bootstrap_drawn_in_blocks_is_the_one_drawn_at_once():
    """The baseline now draws its resamples 100 at a time (memory: 100 x images, whatever
    the bootstrap); with numpy's generator the draws are the same as 1,000 at once, so the
    intervals of earlier versions do not move."""
    rng_once, rng_blocks = np.random.default_rng(0), np.random.default_rng(0)
    once = rng_once.integers(0, 5000, size=(1000, 5000))
    blocks = np.vstack([rng_blocks.integers(0, 5000, size=(100, 5000)) for _ in range(10)])
    assert (once == blocks).all()


def test_the_reliability_estimated_on_a_sample_is_within_tolerance_of_the_whole():
    """A weighted version of a project larger than QUORUM_CONSENSUS_RELIABILITY_SAMPLE
    estimates the annotators' rates on a seeded sample. The tolerance stated in
    docs/scaling.md: every rate within 0.03 of the estimate over every image (here a
    third of 2,400 images), and the consensus it weighs gives the same kept boxes on at
    least 98% of the images."""
    _, images = simulated_project(PANEL, count=2400, seed=11)
    whole = estimate_reliability(images)
    picked = np.sort(np.random.default_rng(1).choice(len(images), size=800, replace=False))
    sample = estimate_reliability([images[i] for i in picked])
    assert whole.used and sample.used
    for annotator, rates in whole.annotators.items():
        other = sample.annotators[annotator]
        for name in ("false_positive_rate", "miss_rate", "false_alarm_rate"):
            assert abs(getattr(other, name) - getattr(rates, name)) <= 0.03, (annotator, name)
    same = 0
    for image in images[:600]:
        kept_whole = consolidate_image(image, weights=whole).consensus.kept
        kept_sample = consolidate_image(image, weights=sample).consensus.kept
        boxes_whole = np.array([c.box for c in kept_whole]).reshape(-1, 4)
        boxes_sample = np.array([c.box for c in kept_sample]).reshape(-1, 4)
        same += boxes_whole.shape == boxes_sample.shape and np.allclose(boxes_whole, boxes_sample)
    assert same / 600 >= 0.98
