"""boxes.geometry, cross-checked against pycocotools on random boxes."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from boxes.geometry import (
    as_boxes,
    box_areas,
    ioa_matrix,
    iou_matrix,
    xywh_to_xyxy,
    xyxy_to_xywh,
    xyxy_to_yolo,
    yolo_to_xyxy,
)


def random_boxes(rng: np.random.Generator, n: int, size: float = 200.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(0, size / 3, (n, 2))
    return np.hstack([xy, xy + wh])


@pytest.mark.parametrize("seed", range(5))
def test_iou_matrix_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    a, b = random_boxes(rng, 37), random_boxes(rng, 23)
    expected = mask_utils.iou(xyxy_to_xywh(a).tolist(), xyxy_to_xywh(b).tolist(), [0] * len(b))
    np.testing.assert_allclose(iou_matrix(a, b), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_ioa_matrix_matches_pycocotools_crowd(seed):
    # pycocotools scores a detection against an iscrowd region as intersection / area(dt)
    rng = np.random.default_rng(100 + seed)
    dt, region = random_boxes(rng, 31), random_boxes(rng, 7)
    expected = mask_utils.iou(xyxy_to_xywh(dt).tolist(), xyxy_to_xywh(region).tolist(), [1] * len(region))
    np.testing.assert_allclose(ioa_matrix(dt, region), expected, rtol=0, atol=1e-9)


def test_iou_hand_cases():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_empty_inputs_give_empty_matrices():
    assert iou_matrix(np.zeros((0, 4)), np.array([[0, 0, 1, 1]])).shape == (0, 1)
    assert iou_matrix([], []).shape == (0, 0)
    assert box_areas([]).shape == (0,)


def test_degenerate_boxes_have_zero_iou_not_nan():
    point = np.array([[5, 5, 5, 5]])
    assert iou_matrix(point, point).tolist() == [[0.0]]
    assert ioa_matrix(point, np.array([[0, 0, 10, 10]])).tolist() == [[0.0]]


@pytest.mark.parametrize(
    "bad",
    [np.array([[0, 0, 1]]), np.array([[0, 0, np.nan, 1]]), np.array([[0, 0, np.inf, 1]]), np.array([[5, 0, 1, 1]])],
)
def test_invalid_boxes_are_refused(bad):
    with pytest.raises(ValueError):
        as_boxes(bad)


def test_coco_and_yolo_conversions_round_trip():
    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 50, size=600)
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes, atol=1e-9)
    yolo = xyxy_to_yolo(boxes, width=800, height=700)
    np.testing.assert_allclose(yolo_to_xyxy(yolo, width=800, height=700), boxes, atol=1e-9)
    # YOLO's form is the normalised centre and size
    np.testing.assert_allclose(
        xyxy_to_yolo(np.array([[100, 50, 300, 250]]), width=400, height=500), [[0.5, 0.3, 0.5, 0.4]]
    )
