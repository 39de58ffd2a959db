"""Detection metrics: the COCO AP family, MR-2, and operating points of unscored boxes.

`coco_evaluate` reproduces pycocotools' COCOeval for iouType "bbox" (Lin et al., "Microsoft
COCO: Common Objects in Context", ECCV 2014; cocodataset/cocoapi PythonAPI/pycocotools/
cocoeval.py), number for number. The conventions it follows, all pycocotools':

- IoU is computed on [x, y, width, height] boxes exactly as maskUtils.iou does for boxes:
  intersection from min(x + w) - max(x), areas as w * h; against a crowd ground truth
  the denominator is the detection's area (intersection over detection area).
- A ground truth is ignored when it is a crowd (`iscrowd`) or its `area` field (not the
  box's) lies outside the area range. Ground truths are ordered non-ignored first.
- Detections are ordered by score, descending, with a stable sort (ties keep input
  order), and cut to the largest max-detections setting (100) before IoUs are computed.
- Greedy matching per IoU threshold t in 0.50:0.05:0.95 (capped at 1 - 1e-10): each
  detection takes the not-yet-matched ground truth (crowds may be matched many times)
  with the highest IoU >= t, the later one on ties; it looks at ignored ground truths
  only when no non-ignored one qualifies. A detection matched to an ignored ground
  truth is ignored; so is an unmatched detection whose area lies outside the area range.
- Precision is interpolated (made monotone from the right) and read at the 101 recall
  points 0:0.01:1 with a left-sided search; recall points past the last recall reached
  stay 0. A (category, area range, max detections) cell without any non-ignored ground
  truth is left out (-1), and so are images with neither ground truths nor detections.
- AP is the mean over IoU thresholds, recall points and categories of the cells that are
  not -1; AR the mean of the final recall over IoU thresholds and categories.

Boxes here are COCO's [x, y, width, height]: this module reads COCO dicts, and converting
to xyxy and back would change the last bits of the numbers pycocotools computes.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from boxes.geometry import as_boxes, ioa_matrix, iou_matrix

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETECTIONS = (1, 10, 100)
AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


def coco_box_iou(dt: np.ndarray, gt: np.ndarray, iscrowd: np.ndarray) -> np.ndarray:
    """IoU of detections (D x 4) with ground truths (G x 4), both [x, y, w, h], as
    pycocotools' maskUtils.iou computes it for boxes; crowd columns use the detection area."""
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    width = np.minimum(dt[:, None, 0] + dt[:, None, 2], gt[None, :, 0] + gt[None, :, 2]) - np.maximum(
        dt[:, None, 0], gt[None, :, 0]
    )
    height = np.minimum(dt[:, None, 1] + dt[:, None, 3], gt[None, :, 1] + gt[None, :, 3]) - np.maximum(
        dt[:, None, 1], gt[None, :, 1]
    )
    intersection = np.where((width > 0) & (height > 0), width * height, 0.0)
    dt_area = (dt[:, 2] * dt[:, 3])[:, None]
    gt_area = (gt[:, 2] * gt[:, 3])[None, :]
    union = np.where(iscrowd[None, :].astype(bool), dt_area, dt_area + gt_area - intersection)
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersection / union


def _evaluate_image(gt: list, dt: list, ious: np.ndarray, area: tuple[float, float], max_det: int) -> dict | None:
    if not gt and not dt:
        return None
    gt_ignore_raw = np.array([g["ignore"] or g["area"] < area[0] or g["area"] > area[1] for g in gt], dtype=bool)
    gt_order = np.argsort(gt_ignore_raw.astype(int), kind="mergesort")
    gt_ignore = gt_ignore_raw[gt_order]
    iscrowd = np.array([int(gt[i]["iscrowd"]) for i in gt_order], dtype=bool)
    dt = dt[:max_det]  # already sorted by score
    ious = ious[: len(dt), gt_order] if ious.size else ious
    thresholds, n_dt, n_gt = len(IOU_THRESHOLDS), len(dt), len(gt)
    gt_matched = np.zeros((thresholds, n_gt), dtype=bool)
    dt_matched = np.zeros((thresholds, n_dt), dtype=bool)
    dt_ignore = np.zeros((thresholds, n_dt), dtype=bool)
    if ious.size:
        for t_index, threshold in enumerate(IOU_THRESHOLDS):
            floor = min(threshold, 1 - 1e-10)
            for d_index in range(n_dt):
                available = ~gt_matched[t_index] | iscrowd
                row = ious[d_index]
                chosen = -1
                for group in (~gt_ignore, gt_ignore):
                    candidates = np.flatnonzero(available & group & (row >= floor))
                    if candidates.size:
                        values = row[candidates]
                        best = values.max()
                        chosen = candidates[np.flatnonzero(values == best)[-1]]
                        break
                if chosen < 0:
                    continue
                dt_ignore[t_index, d_index] = gt_ignore[chosen]
                dt_matched[t_index, d_index] = True
                gt_matched[t_index, chosen] = True
    outside = np.array([d["area"] < area[0] or d["area"] > area[1] for d in dt], dtype=bool)
    dt_ignore |= ~dt_matched & outside[None, :]
    return {
        "scores": np.array([d["score"] for d in dt], dtype=float),
        "matched": dt_matched,
        "ignored": dt_ignore,
        "gt_ignore": gt_ignore,
    }


def _accumulate(cells: list[dict]) -> tuple[np.ndarray, float]:
    """Precision at the recall points (T x R) and final recall (T) of one cell, pycocotools' way."""
    thresholds = len(IOU_THRESHOLDS)
    precision = -np.ones((thresholds, len(RECALL_POINTS)))
    recall = -np.ones(thresholds)
    if not cells:
        return precision, recall
    scores = np.concatenate([c["scores"] for c in cells])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([c["matched"] for c in cells], axis=1)[:, order]
    ignored = np.concatenate([c["ignored"] for c in cells], axis=1)[:, order]
    gt_ignore = np.concatenate([c["gt_ignore"] for c in cells])
    positives = np.count_nonzero(gt_ignore == 0)
    if positives == 0:
        return precision, recall
    tp_sum = np.cumsum(np.logical_and(matched, ~ignored), axis=1).astype(dtype=float)
    fp_sum = np.cumsum(np.logical_and(~matched, ~ignored), axis=1).astype(dtype=float)
    for t_index, (tp, fp) in enumerate(zip(tp_sum, fp_sum, strict=True)):
        count = len(tp)
        rc = tp / positives
        pr = tp / (fp + tp + np.spacing(1))
        recall[t_index] = rc[-1] if count else 0
        q = np.zeros(len(RECALL_POINTS))
        pr = np.maximum.accumulate(pr[::-1])[::-1] if count else pr
        found = np.searchsorted(rc, RECALL_POINTS, side="left")
        valid = found < count
        # recall points past the last recall reached keep precision 0
        q[valid] = pr[found[valid]]
        precision[t_index] = q
    return precision, recall


def coco_evaluate(coco_gt: Mapping, coco_dt: Sequence[Mapping]) -> dict[str, float]:
    """COCO bbox evaluation: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100.

    `coco_gt` is a COCO dict (images, annotations with bbox, area, iscrowd, categories);
    `coco_dt` a list of results {image_id, category_id, bbox, score}. The numbers equal
    pycocotools' COCOeval(iouType="bbox").stats[0:9] (see the module docstring for every
    convention). Detections of images not in `coco_gt` raise ValueError, as loadRes asserts.
    """
    image_ids = sorted({image["id"] for image in coco_gt.get("images", [])})
    category_ids = sorted({category["id"] for category in coco_gt.get("categories", [])})
    known_images = set(image_ids)
    gts: dict = defaultdict(list)
    for annotation in coco_gt.get("annotations", []):
        gts[annotation["image_id"], annotation["category_id"]].append(
            {
                "bbox": annotation["bbox"],
                "area": annotation["area"],
                "iscrowd": annotation.get("iscrowd", 0),
                "ignore": bool(annotation.get("iscrowd", 0)),
            }
        )
    dts: dict = defaultdict(list)
    for result in coco_dt:
        if result["image_id"] not in known_images:
            raise ValueError(f"detection for image {result['image_id']}, which is not in the ground truth")
        x, y, w, h = result["bbox"]
        dts[result["image_id"], result["category_id"]].append(
            {"bbox": [x, y, w, h], "area": w * h, "score": result["score"]}
        )
    largest = MAX_DETECTIONS[-1]
    evaluations: dict = {}
    for category in category_ids:
        for image in image_ids:
            gt, dt = gts.get((image, category), []), dts.get((image, category), [])
            order = np.argsort([-d["score"] for d in dt], kind="mergesort")
            dt = [dt[i] for i in order[:largest]]
            if gt and dt:
                ious = coco_box_iou(
                    np.array([d["bbox"] for d in dt], dtype=float),
                    np.array([g["bbox"] for g in gt], dtype=float),
                    np.array([int(g["iscrowd"]) for g in gt]),
                )
            else:
                ious = np.zeros((0, 0))
            for name, area in AREA_RANGES.items():
                evaluations[category, name, image] = (gt, dt, ious, area)
    precision = {}
    recall = {}
    for category in category_ids:
        for name in AREA_RANGES:
            for max_det in MAX_DETECTIONS:
                cells = []
                for image in image_ids:
                    gt, dt, ious, area = evaluations[category, name, image]
                    cell = _evaluate_image(gt, dt, ious, area, max_det)
                    if cell is not None:
                        cells.append(cell)
                precision[category, name, max_det], recall[category, name, max_det] = _accumulate(cells)

    def summary(kind: str, name: str, max_det: int, threshold: float | None = None) -> float:
        source = precision if kind == "ap" else recall
        values = np.stack([source[category, name, max_det] for category in category_ids]) if category_ids else None
        if values is None:
            return -1.0
        if threshold is not None:
            values = values[:, np.flatnonzero(threshold == IOU_THRESHOLDS)]
        kept = values[values > -1]
        return float(np.mean(kept)) if kept.size else -1.0

    stats = [
        summary("ap", "all", 100),
        summary("ap", "all", 100, 0.5),
        summary("ap", "all", 100, 0.75),
        summary("ap", "small", 100),
        summary("ap", "medium", 100),
        summary("ap", "large", 100),
        summary("ar", "all", 1),
        summary("ar", "all", 10),
        summary("ar", "all", 100),
    ]
    return dict(zip(STAT_KEYS, stats, strict=True))


# --- Pedestrian detection: log-average miss rate (Caltech) -------------------------------

MR_REFERENCE_FPPI = 10.0 ** np.arange(-2.0, 0.0001, 0.25)  # 1e-2 ... 1, nine points
SETUPS = {
    # height range in pixels, visible fraction range (Dollar et al., PAMI 2012, "reasonable")
    "reasonable": ((50.0, np.inf), (0.65, np.inf)),
    "all": ((20.0, np.inf), (0.2, np.inf)),
}
EXPAND = 1.25  # detections are kept if their height is within the height range expanded by 1.25


@dataclass(frozen=True)
class ImageTruth:
    """One image's ground truth for MR-2: boxes (n x 4 xyxy), which are ignore regions
    (crowds, can't tell), and each pedestrian's visible fraction (1 when unknown)."""

    boxes: np.ndarray
    ignore: np.ndarray | None = None
    visible: np.ndarray | None = None


def _caltech_match(truth: ImageTruth, detections: np.ndarray, *, setup: str, threshold: float):
    """bbGt evalRes for one image: (scores, is_tp, is_ignored) of the kept detections, and
    the number of ground truths that count."""
    (h_low, h_high), (v_low, v_high) = SETUPS[setup]
    gt = as_boxes(truth.boxes)
    heights = gt[:, 3] - gt[:, 1]
    visible = np.ones(len(gt)) if truth.visible is None else np.asarray(truth.visible, dtype=float)
    ignore = np.zeros(len(gt), dtype=bool) if truth.ignore is None else np.asarray(truth.ignore, dtype=bool)
    # Ground truths outside the setup's ranges are not removed but ignored.
    ignore = ignore | (heights < h_low) | (heights > h_high) | (visible < v_low) | (visible > v_high)
    detections = np.asarray(detections, dtype=float).reshape(-1, 5)
    d_heights = detections[:, 3] - detections[:, 1]
    detections = detections[(d_heights >= h_low / EXPAND) & (d_heights <= h_high * EXPAND)]
    detections = detections[np.argsort(-detections[:, 4], kind="stable")]
    gt_order = np.argsort(ignore, kind="stable")
    gt, ignore = gt[gt_order], ignore[gt_order]
    iou = iou_matrix(detections[:, :4], gt)
    ioa = ioa_matrix(detections[:, :4], gt)
    used = np.zeros(len(gt), dtype=bool)
    is_tp = np.zeros(len(detections), dtype=bool)
    is_ignored = np.zeros(len(detections), dtype=bool)
    for d in range(len(detections)):
        best, best_overlap = -1, threshold
        for g in range(len(gt)):
            if used[g] and not ignore[g]:
                continue
            # once matched to a pedestrian, ignore regions are not looked at
            if best >= 0 and not ignore[best] and ignore[g]:
                break
            overlap = ioa[d, g] if ignore[g] else iou[d, g]
            if overlap < best_overlap:
                continue
            best, best_overlap = g, overlap
        if best < 0:
            continue
        if ignore[best]:
            is_ignored[d] = True  # matched to an ignore region: counts neither way
        else:
            used[best] = True
            is_tp[d] = True
    return detections[:, 4], is_tp, is_ignored, int((~ignore).sum())


def log_average_miss_rate(
    gt: Sequence[ImageTruth], dt: Sequence[np.ndarray], *, setup: str = "reasonable", iou_threshold: float = 0.5
) -> float:
    """MR-2: the log-average miss rate over nine FPPI points from 1e-2 to 1e0 (Dollar, Wojek,
    Schiele, Perona, "Pedestrian Detection: An Evaluation of the State of the Art", PAMI
    2012; Caltech toolbox dbEval.m and bbGt.m evalRes / compRoc).

    `dt[i]` holds image i's detections as m x 5 rows (x1, y1, x2, y2, score). Conventions:
    - "reasonable": pedestrians 50 px or taller and at least 65% visible; the others, and
      ignore regions, are ignored, not removed. ("all": 20 px, 20% visible.)
    - Detections are first kept only if their height lies in the height range widened by
      a factor 1.25 (40 px for "reasonable"), as dbEval does against border effects.
    - Matching per image, by score: a detection takes the unused pedestrian with the best
      IoU >= 0.5, preferring pedestrians to ignore regions; it may match an ignore region
      by intersection over its own area (>= 0.5), many detections the same region; a
      detection matched to an ignore region counts neither as true nor false positive.
    - Over all images, by score: miss rate = 1 - TP / pedestrians, FPPI = FP / images.
      At each reference FPPI the miss rate of the last point with FPPI at or below it is
      taken; where there is none the miss rate is 1 (compRoc's sentinel point).
    - MR-2 = exp(mean(log(max(1e-10, miss rate)))) over the nine points.
    Returns NaN when no pedestrian counts.
    """
    if len(gt) != len(dt):
        raise ValueError("gt and dt must describe the same images")
    scores, tps, ignored, positives = [], [], [], 0
    for truth, detections in zip(gt, dt, strict=True):
        s, tp, ig, n = _caltech_match(truth, detections, setup=setup, threshold=iou_threshold)
        scores.append(s)
        tps.append(tp)
        ignored.append(ig)
        positives += n
    if positives == 0:
        return float("nan")
    scores = np.concatenate(scores) if scores else np.zeros(0)
    tp = np.concatenate(tps) if tps else np.zeros(0, dtype=bool)
    keep = ~(np.concatenate(ignored) if ignored else np.zeros(0, dtype=bool))
    order = np.argsort(-scores[keep], kind="stable")
    tp = tp[keep][order]
    tp_sum = np.cumsum(tp)
    fp_sum = np.cumsum(~tp)
    fppi = np.concatenate([[-np.inf], fp_sum / len(gt)])
    recall = np.concatenate([[0.0], tp_sum / positives])
    miss = []
    for reference in MR_REFERENCE_FPPI:
        index = np.flatnonzero(fppi <= reference + 1e-12)[-1]
        miss.append(1.0 - recall[index])
    return float(np.exp(np.mean(np.log(np.maximum(1e-10, miss)))))


# --- Unscored boxes (a person's annotation) against references ------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    true_positives: int
    false_positives: int
    false_negatives: int
    images: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        total = self.true_positives + self.false_negatives
        return self.true_positives / total if total else 1.0

    @property
    def f1(self) -> float:
        total = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / total if total else 1.0

    @property
    def fppi(self) -> float:
        return self.false_positives / self.images if self.images else 0.0

    @property
    def miss_rate(self) -> float:
        return 1.0 - self.recall


def operating_point(
    gt: Sequence[np.ndarray],
    dt: Sequence[np.ndarray],
    *,
    iou_threshold: float = 0.5,
    ignore: Sequence[np.ndarray] | None = None,
) -> OperatingPoint:
    """Precision, recall, F1, FPPI of boxes without scores (a human's) against references.

    Per image, boxes are matched one to one (`boxes.matching.match`, Hungarian at the IoU
    threshold); an unmatched box lying at least half inside an ignore region (intersection
    over its own area >= the threshold) counts neither way, as in MR-2.
    """
    from boxes.matching import match

    tp = fp = fn = 0
    for index, (truth, boxes) in enumerate(zip(gt, dt, strict=True)):
        truth, boxes = as_boxes(truth), as_boxes(boxes)
        result = match(boxes, truth, iou_threshold=iou_threshold)
        unmatched = boxes[result.unmatched_a]
        regions = as_boxes(ignore[index]) if ignore is not None else np.zeros((0, 4))
        if len(unmatched) and len(regions):
            unmatched = unmatched[ioa_matrix(unmatched, regions).max(axis=1) < iou_threshold]
        tp += result.count
        fp += len(unmatched)
        fn += len(truth) - result.count
    return OperatingPoint(true_positives=tp, false_positives=fp, false_negatives=fn, images=len(gt))
