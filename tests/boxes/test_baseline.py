"""boxes.baseline.human_baseline: leave-one-out references, the model on the same references,
the paired image bootstrap."""

import numpy as np
import pytest

from boxes.baseline import human_baseline
from boxes.consensus import consolidate
from boxes.metrics import ImageTruth, match_detections, score_boxes
from tests.boxes.panels import simulated_project

PERSON = np.array([[100.0, 100, 140, 200]])
OTHER = np.array([[400.0, 100, 440, 200]])
NOBODY = np.zeros((0, 4))


def model_for(truths, *, seed: int, jitter: float, miss: float, false_positives: float, false_score: float = 0.9):
    """A detector: jittered true boxes scored 0.5 to 1, misses, and false positives scored
    0 to `false_score`."""
    rng = np.random.default_rng(seed)
    detections = []
    for truth in truths:
        kept = truth[rng.random(len(truth)) >= miss]
        height = (kept[:, 3] - kept[:, 1])[:, None]
        boxes = kept + rng.normal(0, jitter, kept.shape) * height
        scores = rng.uniform(0.5, 1.0, len(kept))
        n_false = int(rng.poisson(false_positives))
        xy = rng.uniform(0, 1000, (n_false, 2))
        false = np.hstack([xy, xy + rng.uniform(20, 120, (n_false, 2))])
        false_scores = rng.uniform(0, false_score, n_false)
        detections.append(np.vstack([np.column_stack([boxes, scores]), np.column_stack([false, false_scores])]))
    return detections


def test_each_annotator_is_scored_against_the_others_only():
    images = [
        {"a": PERSON, "b": PERSON, "c": PERSON},
        {"a": PERSON, "b": NOBODY, "c": PERSON},  # b misses
        {"a": np.vstack([PERSON, OTHER]), "b": PERSON, "c": PERSON},  # a boxes someone nobody else sees
    ]
    baseline = human_baseline(images, min_images=1, bootstrap=0)
    a, b, c = (baseline.annotators[name].point for name in "abc")
    # a vs consensus of (b, c): image 2 has b, c split 1-1, below a strict majority of two
    assert (a.true_positives, a.false_positives, a.false_negatives) == (2, 2, 0)
    assert (b.true_positives, b.false_positives, b.false_negatives) == (2, 0, 1)
    assert (c.true_positives, c.false_positives, c.false_negatives) == (2, 1, 0)  # like a on image 2
    assert a.images == b.images == c.images == 3
    assert baseline.human_mean["recall"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert baseline.human_spread["recall"] == pytest.approx(np.std([1, 2 / 3, 1], ddof=1))


def test_quorum_is_rescaled_to_the_others_and_ignore_regions_count_neither_way():
    images = [{"a": PERSON, "b": PERSON, "c": NOBODY, "d": NOBODY}] * 2
    # 30% of the annotators: for a, one of the three others (b) suffices
    loose = human_baseline(images, min_images=1, bootstrap=0, quorum=0.3)
    assert loose.annotators["a"].point.true_positives == 2
    strict = human_baseline(images, min_images=1, bootstrap=0)
    assert strict.annotators["a"].point.false_positives == 2
    result, false_positives = score_boxes(NOBODY, PERSON + 2, ignore=PERSON)
    assert result.count == 0 and false_positives == 0  # inside an ignore region


def test_min_images_conditions_and_height_bins():
    images = [
        {"a": PERSON, "b": PERSON},
        {"a": NOBODY, "b": np.array([[0.0, 0, 20, 40]])},
        {"a": PERSON, "c": PERSON},
    ]
    baseline = human_baseline(
        images, min_images=2, bootstrap=0, conditions=["day", "night", "day"], height_bins=(50, 100)
    )
    assert set(baseline.annotators) == {"a", "b"} and baseline.too_few_images == ("c",)
    a = baseline.annotators["a"]
    assert a.by_condition["day"].true_positives == 2 and a.by_condition["night"].false_negatives == 1
    assert a.by_condition["night"].images == 1
    # a's references: PERSON (100 px high) from b and from c, found; b's 40 px box, missed
    assert a.recall_by_height == {"<50": (0, 1), ">=100": (2, 2)}


@pytest.mark.parametrize("seed", [0, 1])
def test_careful_annotators_beat_poor_ones_and_the_panel_has_a_spread(seed):
    _, images = simulated_project(["careful", "loose", "shifted", "poor", "misses-small"], count=150, seed=seed)
    baseline = human_baseline(images, bootstrap=200)
    f1 = {name: result.point.f1 for name, result in baseline.annotators.items()}
    assert min(f1, key=f1.get) == "poor"
    assert f1["careful"] > f1["poor"] + 0.2
    assert baseline.human_spread["f1"] > 0.05
    for result in baseline.annotators.values():
        low, high = result.intervals["f1"]
        assert low <= result.point.f1 <= high


def brute_force_recall_at_precision(images, detections, annotator, precision):
    """Every score threshold tried one by one, each image rescored from scratch."""
    truths = []
    for index, image in enumerate(images):
        if annotator in image and len(image) > 1:
            others = {b: v for b, v in image.items() if b != annotator}
            reference = consolidate(others)
            truths.append((index, reference.boxes, reference.ignore))
    best = 0.0
    for threshold in sorted({float(s) for d in detections for s in d[:, 4]}):
        tp = fp = positives = 0
        for index, truth, regions in truths:
            kept = detections[index][detections[index][:, 4] >= threshold]
            image_truth = ImageTruth(
                boxes=np.vstack([truth, regions]),
                ignore=np.r_[np.zeros(len(truth), bool), np.ones(len(regions), bool)],
            )
            _, is_tp, is_ignored, _ = match_detections(image_truth, kept, setup="none")
            tp += int((is_tp & ~is_ignored).sum())
            fp += int((~is_tp & ~is_ignored).sum())
            positives += len(truth)
        if tp + fp and tp / (tp + fp) >= precision - 1e-12:
            best = max(best, tp / positives)
    return best


def test_model_recall_at_the_human_precision_equals_trying_every_threshold():
    truths, images = simulated_project(["careful", "loose", "sloppy"], count=40, seed=3)
    detections = model_for(truths, seed=4, jitter=0.04, miss=0.1, false_positives=1.0)
    # scores on a coarse grid: ties between images, which thresholds cannot split
    detections = [np.column_stack([d[:, :4], np.round(d[:, 4], 1)]) for d in detections]
    baseline = human_baseline(images, model_detections=detections, min_images=1, bootstrap=0)
    for name, result in baseline.annotators.items():
        expected = brute_force_recall_at_precision(images, detections, name, result.point.precision)
        assert result.model.recall_at_precision == pytest.approx(expected, abs=1e-12)
        assert result.model.recall_gap == pytest.approx(expected - result.point.recall)


def test_a_better_model_has_a_better_gap_and_beats_a_sloppy_human():
    truths, images = simulated_project(["careful", "loose", "sloppy", "misses-small", "shifted"], count=120, seed=5)
    good_detections = model_for(truths, seed=1, jitter=0.02, miss=0.0, false_positives=0.3, false_score=0.5)
    good = human_baseline(images, model_detections=good_detections, bootstrap=300)
    poor = human_baseline(
        images, model_detections=model_for(truths, seed=1, jitter=0.10, miss=0.4, false_positives=3.0), bootstrap=300
    )
    assert good.gap["recall_gap"] > poor.gap["recall_gap"] + 0.2
    assert good.gap["miss_rate_gap"] < poor.gap["miss_rate_gap"] - 0.2
    assert good.gap_intervals["recall_gap"][0] > poor.gap_intervals["recall_gap"][1]
    assert poor.gap["recall_gap"] < 0 < poor.gap["miss_rate_gap"]
    # the sloppy annotator (about 0.8 precision and recall) is a low bar: the good model clears it
    sloppy = good.annotators["sloppy"]
    assert sloppy.model.recall_gap > 0.1 and sloppy.model.miss_rate_gap < -0.1
    assert sloppy.model.score_at_precision <= 0.55  # it can keep nearly every true detection
    assert good.model_mean["ap50"] > poor.model_mean["ap50"] + 0.2
    assert good.model_mean["mr2"] < poor.model_mean["mr2"]
    for baseline in (good, poor):
        for name in ("recall_gap", "miss_rate_gap"):
            low, high = baseline.gap_intervals[name]
            assert low <= baseline.gap[name] <= high


def test_the_bootstrap_is_paired_over_images_and_seeded():
    truths, images = simulated_project(["careful", "loose", "sloppy"], count=30, seed=7)
    detections = model_for(truths, seed=2, jitter=0.04, miss=0.1, false_positives=1.0)
    baseline = human_baseline(images, model_detections=detections, min_images=1, bootstrap=20, seed=9)
    picks = np.random.default_rng(9).integers(0, len(images), size=(20, len(images)))
    for row in range(3):
        resampled = human_baseline(
            [images[i] for i in picks[row]], model_detections=[detections[i] for i in picks[row]], min_images=1,
            bootstrap=0,
        )  # fmt: skip
        for name in ("recall_gap", "miss_rate_gap"):
            assert baseline.gap_draws[name][row] == pytest.approx(resampled.gap[name], abs=1e-12)
    again = human_baseline(images, model_detections=detections, min_images=1, bootstrap=20, seed=9)
    assert again.gap_intervals == baseline.gap_intervals


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one array per image"):
        human_baseline([{"a": PERSON, "b": PERSON}], model_detections=[])
    with pytest.raises(ValueError, match="one label per image"):
        human_baseline([{"a": PERSON, "b": PERSON}], conditions=["day", "night"])
