"""Simulated annotators do what their habit profiles say, measurably."""

import numpy as np
import pytest

from boxes.geometry import iou_matrix
from boxes.simulate import PROFILES, HabitProfile, simulate_annotator

WIDTH, HEIGHT = 1280, 720


def truth(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    heights = np.exp(rng.uniform(np.log(20), np.log(300), n))
    widths = heights * 0.4
    x = rng.uniform(0, WIDTH - widths)
    y = rng.uniform(0, HEIGHT - heights)
    return np.column_stack([x, y, x + widths, y + heights])


def run(profile: HabitProfile, boxes: np.ndarray, seed: int = 0, occluded=None):
    return simulate_annotator(
        boxes, profile=profile, rng=np.random.default_rng(seed), width=WIDTH, height=HEIGHT, occluded=occluded
    )


def test_careful_annotator_matches_truth_closely():
    boxes = truth(np.random.default_rng(1))
    result = run(PROFILES["careful"], boxes)
    assert (result.source == np.arange(len(boxes))).all()
    matched_iou = np.diag(iou_matrix(result.boxes, boxes))
    assert np.median(matched_iou) > 0.9


@pytest.mark.parametrize(("name", "expected_area_ratio"), [("loose", 1.12**2), ("tight", 0.9**2)])
def test_loose_and_tight_scale_the_area(name, expected_area_ratio):
    # boxes away from the borders, so clipping does not shrink them
    boxes = np.array([[500, 200, 540, 300]] * 3000, dtype=float)
    result = run(PROFILES[name], boxes)
    area = (result.boxes[:, 2] - result.boxes[:, 0]) * (result.boxes[:, 3] - result.boxes[:, 1])
    assert area.mean() / 4000 == pytest.approx(expected_area_ratio, rel=0.02)


def test_shift_moves_every_box_by_its_height():
    boxes = np.array([[500, 200, 540, 300]] * 3000, dtype=float)
    result = run(PROFILES["shifted"], boxes)
    offset = ((result.boxes[:, :2] + result.boxes[:, 2:]) / 2 - (boxes[:, :2] + boxes[:, 2:]) / 2).mean(axis=0)
    np.testing.assert_allclose(offset, [0.06 * 100, 0.04 * 100], atol=0.3)


def test_misses_small_and_occluded_pedestrians_at_their_rates():
    boxes = truth(np.random.default_rng(2))
    heights = boxes[:, 3] - boxes[:, 1]
    small = heights < 40
    result = run(PROFILES["misses-small"], boxes)
    found = np.zeros(len(boxes), dtype=bool)
    found[result.source[result.source >= 0]] = True
    assert 1 - found[small].mean() == pytest.approx(0.7, abs=0.05)
    assert found[~small].all()
    occluded = np.random.default_rng(3).random(len(boxes)) < 0.3
    result = run(PROFILES["misses-occluded"], boxes, occluded=occluded)
    found = np.zeros(len(boxes), dtype=bool)
    found[result.source] = True
    assert 1 - found[occluded].mean() == pytest.approx(0.6, abs=0.05)
    assert found[~occluded].all()


def test_false_positives_average_the_profile_rate():
    counts = [(run(PROFILES["trigger-happy"], np.zeros((0, 4)), seed=s).source == -1).sum() for s in range(2000)]
    assert np.mean(counts) == pytest.approx(0.8, abs=0.06)


def test_boxes_stay_inside_the_image_and_seed_repeats():
    boxes = np.array([[0, 0, 30, 80], [1250, 640, 1280, 720]], dtype=float)
    for profile in PROFILES.values():
        result = run(profile, boxes, seed=5)
        assert (result.boxes[:, :2] >= 0).all()
        assert (result.boxes[:, 2] <= WIDTH).all() and (result.boxes[:, 3] <= HEIGHT).all()
        assert ((result.boxes[:, 2:] - result.boxes[:, :2]) >= 2).all()
        again = run(profile, boxes, seed=5)
        np.testing.assert_array_equal(result.boxes, again.boxes)
        assert result.seconds == again.seconds >= 1.0
