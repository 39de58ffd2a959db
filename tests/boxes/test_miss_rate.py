"""MR-2 (Caltech) and operating points, on hand-worked cases."""

import math

import numpy as np
import pytest

from boxes.metrics import ImageTruth, log_average_miss_rate, operating_point

PERSON = [100.0, 100.0, 140.0, 200.0]  # 100 px tall


def det(box, score):
    return [*box, score]


def test_a_perfect_detector_scores_the_floor_and_no_detection_scores_one():
    truth = [ImageTruth(boxes=np.array([PERSON]))]
    assert log_average_miss_rate(truth, [np.array([det(PERSON, 0.9)])]) == pytest.approx(1e-10)
    assert log_average_miss_rate(truth, [np.zeros((0, 5))]) == pytest.approx(1.0)


def test_fppi_points_with_no_value_count_as_a_full_miss():
    truth = [ImageTruth(boxes=np.array([PERSON]))]
    # a false positive ranked above the true one: every FPPI below 1 has no point at or under it
    detections = [np.array([det([500, 100, 540, 200], 0.9), det(PERSON, 0.8)])]
    assert log_average_miss_rate(truth, detections) == pytest.approx(math.exp(math.log(1e-10) / 9))
    # over two images FPPI is 0.5 after that false positive: 10^-0.25 and 10^0 have a value
    two = [truth[0], ImageTruth(boxes=np.zeros((0, 4)))]
    assert log_average_miss_rate(two, [detections[0], np.zeros((0, 5))]) == pytest.approx(
        math.exp(2 * math.log(1e-10) / 9)
    )


def test_height_and_visibility_filters_ignore_instead_of_removing():
    small = [300.0, 100.0, 316.0, 140.0]  # 40 px: below "reasonable", ignored
    hidden = [600.0, 100.0, 640.0, 200.0]  # 100 px but 50% visible: ignored
    truth = [ImageTruth(boxes=np.array([PERSON, small, hidden]), visible=np.array([1.0, 1.0, 0.5]))]
    # detections on the ignored ones count neither way; the real one is found
    detections = [np.array([det(small, 0.95), det(hidden, 0.9), det(PERSON, 0.5)])]
    assert log_average_miss_rate(truth, detections) == pytest.approx(1e-10)
    # a detection too small even for the widened range (30 px < 40) is dropped before matching
    tiny = [np.array([det([700, 100, 712, 130], 0.99), det(PERSON, 0.5)])]
    assert log_average_miss_rate(truth, tiny) == pytest.approx(1e-10)
    # with only ignored pedestrians nothing counts
    assert math.isnan(log_average_miss_rate([ImageTruth(boxes=np.array([small]))], [np.zeros((0, 5))]))
    # "all" setup counts the 40 px pedestrian: missing it now costs
    assert log_average_miss_rate(truth, [np.array([det(PERSON, 0.5)])], setup="all") > 0.5


def test_ignore_regions_match_many_detections_by_area_of_the_detection():
    crowd = [0.0, 0.0, 400.0, 100.0]
    truth = [ImageTruth(boxes=np.array([PERSON, crowd]), ignore=np.array([False, True]))]
    inside = [det([10, 10, 40, 90], 0.99), det([50, 10, 80, 90], 0.98), det([350, 20, 380, 95], 0.97)]
    assert log_average_miss_rate(truth, [np.array([*inside, det(PERSON, 0.5)])]) == pytest.approx(1e-10)
    # half outside the region: a false positive
    outside = det([380, 40, 420, 120], 0.99)
    assert log_average_miss_rate(truth, [np.array([outside, det(PERSON, 0.5)])]) > 1e-3


def test_operating_point_of_unscored_boxes():
    gt = [np.array([PERSON, [300, 100, 340, 200]]), np.zeros((0, 4))]
    dt = [np.array([PERSON, [600, 100, 640, 200], [10, 10, 30, 50]]), np.array([[5, 5, 25, 45]])]
    regions = [np.array([[0, 0, 50, 60]]), np.zeros((0, 4))]
    point = operating_point(gt, dt, ignore=regions)
    assert (point.true_positives, point.false_positives, point.false_negatives) == (1, 2, 1)
    assert point.precision == pytest.approx(1 / 3)
    assert point.recall == pytest.approx(0.5)
    assert point.f1 == pytest.approx(2 / 5)
    assert point.fppi == pytest.approx(1.0)
    assert point.miss_rate == pytest.approx(0.5)
