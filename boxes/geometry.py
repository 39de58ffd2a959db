"""Box arrays and their overlaps: N x 4 float arrays in absolute pixel xyxy."""

import numpy as np


def as_boxes(boxes) -> np.ndarray:
    """`boxes` as an N x 4 float64 array; an empty input gives a 0 x 4 array.

    Raises ValueError for another shape, a non-finite coordinate, or x2 < x1 or y2 < y1.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be N x 4, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("boxes must have finite coordinates")
    if (array[:, 2] < array[:, 0]).any() or (array[:, 3] < array[:, 1]).any():
        raise ValueError("boxes must be xyxy with x2 >= x1 and y2 >= y1")
    return array


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Area of every box, in square pixels (N,)."""
    boxes = as_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area of every box in `a` (N x 4) with every box in `b` (M x 4): N x M."""
    return _intersections(as_boxes(a), as_boxes(b))


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N x 4) with every box in `b` (M x 4), xyxy pixels: N x M.

    Boxes are continuous regions (no +1 pixel convention, as in COCO). Two empty boxes
    have IoU 0.
    """
    return iou_matrix_unchecked(as_boxes(a), as_boxes(b))


def iou_matrix_unchecked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`iou_matrix` for arrays already checked by `as_boxes` (the hot path of consensus)."""
    intersection = _intersections(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box i of `a` with box i of `b` (both N x 4, already checked): N."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    intersection = width * height
    union = _areas(a) + _areas(b) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def ioa_matrix(dt: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Intersection over the area of each `dt` box (N x 4) with each `region` (M x 4): N x M.

    This is how COCO scores a detection against an ignore ("crowd") region: the share of
    the detection that lies inside the region. An empty detection scores 0.
    """
    dt, region = as_boxes(dt), as_boxes(region)
    intersection = intersection_matrix(dt, region)
    area = box_areas(dt)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, intersection / area, 0.0)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """xyxy -> COCO's [x, y, width, height], pixels."""
    boxes = as_boxes(boxes)
    return np.column_stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])


def xywh_to_xyxy(boxes) -> np.ndarray:
    """COCO's [x, y, width, height] -> xyxy, pixels."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return as_boxes(np.column_stack([array[:, 0], array[:, 1], array[:, 0] + array[:, 2], array[:, 1] + array[:, 3]]))


def xyxy_to_yolo(boxes: np.ndarray, *, width: float, height: float) -> np.ndarray:
    """xyxy pixels -> YOLO's normalised [x_centre, y_centre, width, height] in [0, 1]."""
    boxes = as_boxes(boxes)
    scale = np.array([width, height, width, height], dtype=np.float64)
    centre_size = np.column_stack(
        [
            (boxes[:, 0] + boxes[:, 2]) / 2,
            (boxes[:, 1] + boxes[:, 3]) / 2,
            boxes[:, 2] - boxes[:, 0],
            boxes[:, 3] - boxes[:, 1],
        ]
    )
    return centre_size / scale


def yolo_to_xyxy(boxes, *, width: float, height: float) -> np.ndarray:
    """YOLO's normalised [x_centre, y_centre, width, height] -> xyxy pixels."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], dtype=np.float64)
    cx, cy, w, h = (array * scale).T
    return as_boxes(np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
