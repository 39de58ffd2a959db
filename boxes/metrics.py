"""Detection metrics: the COCO AP family, MR-2, and operating points of unscored boxes.

`coco_evaluate` reproduces pycocotools' COCOeval for iouType "bbox" (Lin et al., "Microsoft
COCO: Common Objects in Context", ECCV 2014; cocodataset/cocoapi PythonAPI/pycocotools/
cocoeval.py and common/maskApi.c, version 2.0.x), number for number, vectorised with numpy.
The conventions it follows, all pycocotools':

Inputs (COCO, COCOeval._prepare, COCO.loadRes)
- Images and categories are the distinct ids of `images` and `categories`, in sorted order.
  Ground truths of other images or categories are left out, and so are detections of
  other categories; a detection of an image not in `images` is an error (loadRes asserts).
- Ground truths are fetched by annotation id (loadAnns(getAnnIds(...))): when several
  annotations share an id, each of them stands for the last one with that id. The ground
  truths of one image and category keep the file's order.
- A ground truth is ignored when it is a crowd (`iscrowd`, 0 when absent) or when its
  `area` field (not its box's) lies outside the area range: area < low or area > high.
  A detection's area is the w * h of its box, with the same test.

IoU (maskApi.c bbIou, through maskUtils.iou)
- Boxes are [x, y, width, height]. The intersection's extents are min(x + w) - max(x) and
  min(y + h) - max(y); where either is <= 0 the IoU is 0, whatever the boxes' areas (two
  zero-area boxes have IoU 0, not 0 / 0). Otherwise IoU is intersection / (dt area +
  gt area - intersection), areas as w * h, and against a crowd intersection / dt area.

Matching (COCOeval.evaluateImg)
- Detections of one image and category are ordered by score, descending, with a stable
  sort (ties keep input order), and cut to 100 before anything else. They are matched
  once, at 100 detections, per (image, category, area range): the matches at 1 and 10
  detections are prefixes of those (evaluate() calls evaluateImg with maxDets[-1] only).
- Ground truths are ordered non-ignored first, stably. For each detection, best score
  first, and each IoU threshold t in 0.50:0.05:0.95 (floor min(t, 1 - 1e-10)): among the
  ground truths not yet matched at t (crowds can be matched any number of times) with
  IoU >= floor, the detection takes the non-ignored one with the highest IoU, the later
  one on ties; only if no non-ignored one qualifies, the ignored one chosen the same way.
- A detection's ignore flag is its ground truth's; an unmatched detection whose area lies
  outside the area range is ignored too.
- A match is recorded as the ground truth's annotation *id*, which accumulate() reads as
  a boolean: a detection matched to a ground truth whose id is 0 counts as unmatched, a
  false positive, or ignored when its area lies outside the area range; the ground truth
  is still used up.

Accumulation and summary (COCOeval.accumulate, summarize)
- Per (category, area range, max detections): every image's first max-det detections,
  images in id order, merged by score with a stable sort; ignored detections count
  neither way; recall = TP / non-ignored ground truths, precision = TP / (TP + FP + eps).
- Precision is interpolated (made monotone from the right) and read at the 101 recall
  points 0:0.01:1 with a left-sided search; recall points past the last recall reached
  stay 0. A cell without any non-ignored ground truth is left out (-1); a cell with ground
  truths and no detection has recall 0.
- AP is the mean over IoU thresholds, recall points and categories of the cells that are
  not -1; AR the mean of the final recall over IoU thresholds and categories.

Boxes here are COCO's [x, y, width, height]: this module reads COCO dicts, and converting
to xyxy and back would change the last bits of the numbers pycocotools computes.
Coordinates and scores are taken to be finite (pycocotools' matching loop accepts a NaN
IoU; this one does not).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from boxes.geometry import as_boxes, ioa_matrix
from boxes.matching import Matches, match, match_by_score

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
IOU_FLOORS = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETECTIONS = (1, 10, 100)
AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")
_PAIR_CHUNK = 1 << 20  # about how many IoUs are computed at once, to bound memory


def _box_iou(dt: np.ndarray, gt: np.ndarray, is_crowd: np.ndarray) -> np.ndarray:
    """IoU of [x, y, w, h] boxes `dt` and `gt` (... x 4, broadcast against each other), as
    maskApi.c bbIou computes it: 0 where the boxes do not overlap, never NaN."""
    width = np.fmin(dt[..., 0] + dt[..., 2], gt[..., 0] + gt[..., 2]) - np.fmax(dt[..., 0], gt[..., 0])
    height = np.fmin(dt[..., 1] + dt[..., 3], gt[..., 1] + gt[..., 3]) - np.fmax(dt[..., 1], gt[..., 1])
    intersection = width * height
    dt_area = dt[..., 2] * dt[..., 3]
    union = np.where(is_crowd, dt_area, dt_area + gt[..., 2] * gt[..., 3] - intersection)
    return np.divide(intersection, union, out=np.zeros(intersection.shape), where=(width > 0) & (height > 0))


def coco_box_iou(dt: np.ndarray, gt: np.ndarray, iscrowd: np.ndarray) -> np.ndarray:
    """IoU of detections (D x 4) with ground truths (G x 4), both [x, y, w, h], as
    pycocotools' maskUtils.iou computes it for boxes; crowd columns use the detection area.
    Boxes that do not overlap, zero-area ones included, have IoU 0."""
    dt = np.asarray(dt, dtype=float).reshape(-1, 4)
    gt = np.asarray(gt, dtype=float).reshape(-1, 4)
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    return _box_iou(dt[:, None, :], gt[None, :, :], np.asarray(iscrowd, dtype=bool)[None, :])


@dataclass(frozen=True)
class _GroundTruths:
    """Ground truths ordered by (category, image), file order within; one column more at the
    end of `is_crowd`, `is_ignored` and `has_id` stands for "no ground truth" in padding."""

    pair: np.ndarray  # category index * images + image index
    category: np.ndarray
    box: np.ndarray  # n x 4, [x, y, w, h]
    is_crowd: np.ndarray  # n + 1
    is_ignored: np.ndarray  # areas x (n + 1): crowd, or `area` outside the area range
    has_id: np.ndarray  # n + 1: annotation id != 0, what accumulate() counts as a match


@dataclass(frozen=True)
class _Detections:
    """Detections ordered by (category, image, score rank), at most 100 per image and category."""

    pair: np.ndarray
    category: np.ndarray
    rank: np.ndarray  # 0 for the best score of its image and category
    score: np.ndarray
    box: np.ndarray
    is_outside: np.ndarray  # areas x n: w * h outside the area range


def _outside(area: np.ndarray) -> np.ndarray:
    """Areas x n: whether each area lies outside each area range, pycocotools' comparison."""
    return np.array([(area < low) | (area > high) for low, high in AREA_RANGES.values()])


def _indices(records: Sequence[Mapping], key: str, index: dict) -> np.ndarray:
    """Each record's position of record[key] in `index`, -1 where it is not there."""
    return np.fromiter((index.get(record[key], -1) for record in records), dtype=np.int64, count=len(records))


def _ground_truths(coco_gt: Mapping, image_index: dict, category_index: dict) -> _GroundTruths:
    annotations = coco_gt.get("annotations", [])
    # COCO.anns keeps the last annotation of each id, and loadAnns looks every id up there
    by_id = {annotation["id"]: annotation for annotation in annotations}
    resolved = annotations if len(by_id) == len(annotations) else [by_id[a["id"]] for a in annotations]
    listed_image = _indices(annotations, "image_id", image_index)
    listed_category = _indices(annotations, "category_id", category_index)
    image, category = listed_image, listed_category
    if resolved is not annotations:
        image, category = _indices(resolved, "image_id", image_index), _indices(resolved, "category_id", category_index)
    kept = np.flatnonzero((listed_image >= 0) & (listed_category >= 0) & (image >= 0) & (category >= 0))
    # getAnnIds walks the sorted images, each image's annotations in file order
    kept = kept[np.argsort(listed_image[kept], kind="stable")]
    pair = category * len(image_index) + image
    kept = kept[np.argsort(pair[kept], kind="stable")]
    resolved = [resolved[i] for i in kept]
    is_crowd = np.array([bool(a.get("iscrowd", 0)) for a in resolved] + [False])
    area = np.array([a["area"] for a in resolved], dtype=float)
    return _GroundTruths(
        pair=pair[kept],
        category=category[kept],
        box=np.array([a["bbox"] for a in resolved], dtype=float).reshape(-1, 4),
        is_crowd=is_crowd,
        is_ignored=np.concatenate([is_crowd[:-1] | _outside(area), np.ones((len(AREA_RANGES), 1), bool)], axis=1),
        has_id=np.array([a["id"] != 0 for a in resolved] + [False]),
    )


def _detections(coco_dt: Sequence[Mapping], image_index: dict, category_index: dict) -> _Detections:
    image = _indices(coco_dt, "image_id", image_index)
    if (image < 0).any():
        missing = coco_dt[int(np.argmax(image < 0))]["image_id"]
        raise ValueError(f"detection for image {missing}, which is not in the ground truth")
    category = _indices(coco_dt, "category_id", category_index)
    score = np.fromiter((d["score"] for d in coco_dt), dtype=float, count=len(coco_dt))
    box = np.array([d["bbox"] for d in coco_dt], dtype=float).reshape(-1, 4)
    known = np.flatnonzero(category >= 0)
    pair = category * len(image_index) + image
    # by category and image, then by score, ties in input order (lexsort is stable)
    order = known[np.lexsort((-score[known], pair[known]))]
    rank = np.arange(len(order)) - np.searchsorted(pair[order], pair[order], side="left")
    order, rank = order[rank < MAX_DETECTIONS[-1]], rank[rank < MAX_DETECTIONS[-1]]
    box = box[order]
    return _Detections(
        pair=pair[order],
        category=category[order],
        rank=rank,
        score=score[order],
        box=box,
        is_outside=_outside(box[:, 2] * box[:, 3]),
    )


def _ceil_power_of_two(count: np.ndarray) -> np.ndarray:
    """The smallest power of two at least each count (counts >= 1)."""
    return np.left_shift(1, np.ceil(np.log2(count)).astype(np.int64))


def _stack(values: np.ndarray, start: np.ndarray, count: np.ndarray, width: int) -> np.ndarray:
    """values[start[i] : start[i] + count[i]] as row i of a len(start) x width array, zero-padded."""
    stacked = np.zeros((len(start), width, *values.shape[1:]), dtype=values.dtype)
    owner = np.repeat(np.arange(len(start)), count)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    stacked[owner, position] = values[start[owner] + position]
    return stacked


def _candidates(gt: _GroundTruths, dt: _Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (detection, ground truth) of one image and category with IoU >= 0.5, the lowest
    floor: (detection index, ground-truth index, IoU), by detection, then ground truth."""
    pairs, dt_start, dt_count = np.unique(dt.pair, return_index=True, return_counts=True)
    gt_start = np.searchsorted(gt.pair, pairs, side="left")
    gt_count = np.searchsorted(gt.pair, pairs, side="right") - gt_start
    both = gt_count > 0
    dt_start, dt_count, gt_start, gt_count = dt_start[both], dt_count[both], gt_start[both], gt_count[both]
    # Images and categories with about as many detections and ground truths are stacked into
    # blocks (detections x ground truths, padded with zero-size boxes, whose IoU is 0), and
    # the IoUs of a block are computed at once, about _PAIR_CHUNK of them.
    shapes = np.stack([_ceil_power_of_two(dt_count), _ceil_power_of_two(gt_count)], axis=1)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for shape in np.unique(shapes, axis=0):
        members = np.flatnonzero((shapes == shape).all(axis=1))
        rows, columns = dt_count[members].max(), gt_count[members].max()
        step = max(1, _PAIR_CHUNK // (rows * columns))
        for begin in range(0, len(members), step):
            block = members[begin : begin + step]
            iou = _box_iou(
                _stack(dt.box, dt_start[block], dt_count[block], rows)[:, :, None, :],
                _stack(gt.box, gt_start[block], gt_count[block], columns)[:, None, :, :],
                _stack(gt.is_crowd, gt_start[block], gt_count[block], columns)[:, None, :],
            )
            member, row, column = np.nonzero(iou >= IOU_FLOORS.min())
            found.append((dt_start[block][member] + row, gt_start[block][member] + column, iou[member, row, column]))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dt_index, gt_index, iou = (np.concatenate(column) for column in zip(*found, strict=True))
    order = np.lexsort((gt_index, dt_index))
    return dt_index[order], gt_index[order], iou[order]


@dataclass(frozen=True)
class _CandidateRows:
    """The candidates of detections with about as many of them (up to a power of two), one
    detection a row, rows by score rank; padding points at the extra ground-truth column."""

    detection: np.ndarray  # n, detection indices
    ground_truth: np.ndarray  # n x width, ground-truth indices in file order
    iou: np.ndarray  # n x width, -1 in padding
    priority: np.ndarray  # areas x n x width: non-ignored above ignored, then by IoU
    bounds: np.ndarray  # the rows of rank r are bounds[r]:bounds[r + 1]


def _candidate_rows(gt: _GroundTruths, dt: _Detections) -> list[_CandidateRows]:
    dt_index, gt_index, iou = _candidates(gt, dt)
    # pycocotools' choice, as one integer key: a non-ignored ground truth above an ignored
    # one, then the higher IoU. The IoU enters as its rank among the distinct IoUs, so that
    # exact ties stay ties. (Ground truths sorted non-ignored first, stably, keep file order
    # within each kind, so "the later on ties" is the later in file order.)
    iou_values, iou_rank = np.unique(iou, return_inverse=True)
    priority = iou_rank + len(iou_values) * ~gt.is_ignored[:, gt_index]  # areas x candidates
    count = np.bincount(dt_index, minlength=len(dt.rank))
    column = np.arange(len(dt_index)) - (np.cumsum(count) - count)[dt_index]
    width = np.zeros(len(count), dtype=np.int64)
    width[count > 0] = _ceil_power_of_two(count[count > 0])
    layouts = []
    for size in np.unique(width[width > 0]):
        rows = np.flatnonzero(width == size)
        rows = rows[np.argsort(dt.rank[rows], kind="stable")]
        slot = np.empty(len(count), dtype=np.int64)
        slot[rows] = np.arange(len(rows))
        own = np.flatnonzero(width[dt_index] == size)
        where = (slot[dt_index[own]], column[own])
        ground_truth = np.full((len(rows), size), len(gt.pair), dtype=np.int64)
        ground_truth[where] = gt_index[own]
        row_iou = np.full((len(rows), size), -1.0)
        row_iou[where] = iou[own]
        row_priority = np.full((len(AREA_RANGES), len(rows), size), -1, dtype=np.int64)
        row_priority[:, where[0], where[1]] = priority[:, own]
        bounds = np.searchsorted(dt.rank[rows], np.arange(MAX_DETECTIONS[-1] + 1))
        layouts.append(_CandidateRows(rows, ground_truth, row_iou, row_priority, bounds))
    return layouts


def _match(gt: _GroundTruths, dt: _Detections) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' greedy matching of every (image, category, area range) at once, at 100
    detections: (is_matched, is_ignored), each areas x thresholds x detections, where
    is_matched is what accumulate() makes of dtMatches (the ground truth's id, as a boolean).

    Only (detection, ground truth) pairs with IoU >= 0.5 can match; they are kept per
    (image, category), not per area range, in rows padded to a power of two wide, so that a
    detection near 300 ground truths pads only the rows as wide as its own."""
    areas, thresholds = len(AREA_RANGES), len(IOU_THRESHOLDS)
    is_matched = np.zeros((areas, thresholds, len(dt.rank)), dtype=bool)
    is_ignored = np.zeros((areas, thresholds, len(dt.rank)), dtype=bool)
    layouts = _candidate_rows(gt, dt)
    # taken[a, t, g]: ground truth g matched by an earlier detection at area range a, threshold t
    taken = np.zeros((areas, thresholds, len(gt.pair) + 1), dtype=bool)
    floors = IOU_FLOORS[:, None, None]
    # One detection rank after the other, as a match uses its ground truth up for the next
    # detections of the image and category; within a rank, every image, category, area range
    # and threshold at once.
    for rank in range(MAX_DETECTIONS[-1]):
        for rows in layouts:
            low, high = rows.bounds[rank], rows.bounds[rank + 1]
            if low == high:
                continue
            ground_truth = rows.ground_truth[low:high]
            # areas x thresholds x detections x width; crowds can be matched again and again
            is_free = ~taken[:, :, ground_truth] | gt.is_crowd[ground_truth]
            key = np.where(is_free & (rows.iou[low:high] >= floors), rows.priority[:, None, low:high], -1)
            # the last column holding the largest key: pycocotools keeps the later ground truth on ties
            best = key.shape[-1] - 1 - np.argmax(key[..., ::-1], axis=-1)
            area, threshold, row = np.nonzero(np.take_along_axis(key, best[..., None], axis=-1)[..., 0] >= 0)
            chosen = ground_truth[row, best[area, threshold, row]]
            taken[area, threshold, chosen] = True
            detection = rows.detection[low + row]
            is_matched[area, threshold, detection] = gt.has_id[chosen]
            is_ignored[area, threshold, detection] = gt.is_ignored[area, chosen]
    # unmatched as accumulate() sees it (ground truth id 0 included) and outside the area range
    is_ignored |= ~is_matched & dt.is_outside[:, None, :]
    return is_matched, is_ignored


def _precision_recall(tp: np.ndarray, fp: np.ndarray, positives: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision at the recall points (T x R) and final recall (T) of one (category, area
    range, max detections) cell from its score-ordered TP and FP flags (T x n), pycocotools' way."""
    count = tp.shape[1]
    tp_sum = np.cumsum(tp, axis=1).astype(float)
    fp_sum = np.cumsum(fp, axis=1).astype(float)
    rc = tp_sum / positives
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    recall = rc[:, -1] if count else np.zeros(len(tp))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    precision = np.zeros((len(tp), len(RECALL_POINTS)))
    for t_index in range(len(tp)):
        found = np.searchsorted(rc[t_index], RECALL_POINTS, side="left")
        valid = found < count
        # recall points past the last recall reached keep precision 0
        precision[t_index, valid] = pr[t_index, found[valid]]
    return precision, recall


def _accumulate(
    gt: _GroundTruths, dt: _Detections, is_matched: np.ndarray, is_ignored: np.ndarray, categories: int
) -> tuple[np.ndarray, np.ndarray]:
    """Precision (T x R x K x A x M) and recall (T x K x A x M) as COCOeval.accumulate lays them out."""
    thresholds, areas = len(IOU_THRESHOLDS), len(AREA_RANGES)
    shape = (thresholds, categories, areas, len(MAX_DETECTIONS))
    precision = -np.ones((thresholds, len(RECALL_POINTS), *shape[1:]))
    recall = -np.ones(shape)
    positives = np.array([np.bincount(gt.category[~ignored[:-1]], minlength=categories) for ignored in gt.is_ignored])
    is_tp = is_matched & ~is_ignored
    is_fp = ~is_matched & ~is_ignored
    # Detections are in (category, image id, score rank) order, the order in which accumulate
    # concatenates them, so a stable sort by score within category reproduces its mergesort.
    order = np.lexsort((-dt.score, dt.category))
    for m_index, max_det in enumerate(MAX_DETECTIONS):
        kept = order[dt.rank[order] < max_det]
        bounds = np.searchsorted(dt.category[kept], np.arange(categories + 1))
        for area in range(areas):
            tp, fp = is_tp[area][:, kept], is_fp[area][:, kept]
            for category in range(categories):
                if positives[area, category] == 0:
                    continue
                cell = slice(bounds[category], bounds[category + 1])
                precision[:, :, category, area, m_index], recall[:, category, area, m_index] = _precision_recall(
                    tp[:, cell], fp[:, cell], positives[area, category]
                )
    return precision, recall


def coco_evaluate(coco_gt: Mapping, coco_dt: Sequence[Mapping]) -> dict[str, float]:
    """COCO bbox evaluation: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100.

    `coco_gt` is a COCO dict (images, annotations with id, bbox, area, iscrowd, categories);
    `coco_dt` a list of results {image_id, category_id, bbox, score}, boxes [x, y, w, h] in
    pixels. The numbers equal pycocotools' COCOeval(iouType="bbox").stats[0:9] (see the
    module docstring for every convention). Detections of images not in `coco_gt` raise
    ValueError, as loadRes asserts.
    """
    image_ids = sorted({image["id"] for image in coco_gt.get("images", [])})
    category_ids = sorted({category["id"] for category in coco_gt.get("categories", [])})
    image_index = {image: index for index, image in enumerate(image_ids)}
    category_index = {category: index for index, category in enumerate(category_ids)}
    gt = _ground_truths(coco_gt, image_index, category_index)
    dt = _detections(coco_dt, image_index, category_index)
    is_matched, is_ignored = _match(gt, dt)
    precision, recall = _accumulate(gt, dt, is_matched, is_ignored, len(category_ids))

    def mean(values: np.ndarray) -> float:
        # COCOeval.summarize: the mean of the cells that are not -1
        kept = values[values > -1]
        return float(np.mean(kept)) if kept.size else -1.0

    def at(iou: float) -> np.ndarray:
        return np.where(iou == IOU_THRESHOLDS)[0]

    area = {name: index for index, name in enumerate(AREA_RANGES)}
    stats = [
        mean(precision[:, :, :, area["all"], 2]),
        mean(precision[at(0.5), :, :, area["all"], 2]),
        mean(precision[at(0.75), :, :, area["all"], 2]),
        mean(precision[:, :, :, area["small"], 2]),
        mean(precision[:, :, :, area["medium"], 2]),
        mean(precision[:, :, :, area["large"], 2]),
        mean(recall[:, :, area["all"], 0]),
        mean(recall[:, :, area["all"], 1]),
        mean(recall[:, :, area["all"], 2]),
    ]
    return dict(zip(STAT_KEYS, stats, strict=True))


# --- Pedestrian detection: log-average miss rate (Caltech) -------------------------------

MR_REFERENCE_FPPI = 10.0 ** np.arange(-2.0, 0.0001, 0.25)  # 1e-2 ... 1, nine points
SETUPS = {
    # height range in pixels, visible fraction range (Dollar et al., PAMI 2012, "reasonable")
    "reasonable": ((50.0, np.inf), (0.65, np.inf)),
    "all": ((20.0, np.inf), (0.2, np.inf)),
    # every box, whatever its height: for references without visibility (the human baseline)
    "none": ((0.0, np.inf), (-np.inf, np.inf)),
}
EXPAND = 1.25  # detections are kept if their height is within the height range expanded by 1.25


@dataclass(frozen=True)
class ImageTruth:
    """One image's ground truth for MR-2: boxes (n x 4 xyxy), which are ignore regions
    (crowds, can't tell), and each pedestrian's visible fraction (1 when unknown)."""

    boxes: np.ndarray
    ignore: np.ndarray | None = None
    visible: np.ndarray | None = None


def match_detections(
    truth: ImageTruth, detections: np.ndarray, *, setup: str = "reasonable", iou_threshold: float = 0.5
):
    """bbGt evalRes for one image under a setup: returns (scores, is_tp, is_ignored) of the
    detections kept, in score order, and the number of ground truths that count.

    Ground truths outside the setup's height and visibility ranges are not removed but
    ignored; detections are kept only if their height lies in the height range widened by
    `EXPAND`; then `boxes.matching.match_by_score` (setup "none": no filter at all)."""
    (h_low, h_high), (v_low, v_high) = SETUPS[setup]
    gt = as_boxes(truth.boxes)
    heights = gt[:, 3] - gt[:, 1]
    visible = np.ones(len(gt)) if truth.visible is None else np.asarray(truth.visible, dtype=float)
    ignore = np.zeros(len(gt), dtype=bool) if truth.ignore is None else np.asarray(truth.ignore, dtype=bool)
    ignore = ignore | (heights < h_low) | (heights > h_high) | (visible < v_low) | (visible > v_high)
    detections = np.asarray(detections, dtype=float).reshape(-1, 5)
    d_heights = detections[:, 3] - detections[:, 1]
    detections = detections[(d_heights >= h_low / EXPAND) & (d_heights <= h_high * EXPAND)]
    result = match_by_score(gt, detections, ignore=ignore, iou_threshold=iou_threshold)
    return result.scores, result.is_tp, result.is_ignored, int((~ignore).sum())


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
        s, tp, ig, n = match_detections(truth, detections, setup=setup, iou_threshold=iou_threshold)
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
    """Counts of unscored boxes against references, and the figures an ML lead reads from them."""

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
    """Precision, recall, F1, FPPI of boxes without scores (a human's) against references,
    summed over images (`score_boxes` on each): precision = TP / (TP + FP), recall = TP /
    (TP + FN), F1 = 2 TP / (2 TP + FP + FN), FPPI = FP / images; an empty denominator
    gives 1 (0 for FPPI)."""
    tp = fp = fn = 0
    for index, (truth, boxes) in enumerate(zip(gt, dt, strict=True)):
        result, false_positives = score_boxes(
            truth, boxes, ignore=None if ignore is None else ignore[index], iou_threshold=iou_threshold
        )
        tp += result.count
        fp += false_positives
        fn += len(as_boxes(truth)) - result.count
    return OperatingPoint(true_positives=tp, false_positives=fp, false_negatives=fn, images=len(gt))


def score_boxes(
    truth: np.ndarray, boxes: np.ndarray, *, ignore: np.ndarray | None = None, iou_threshold: float = 0.5
) -> tuple[Matches, int]:
    """One image's unscored boxes against its references: the one-to-one matching
    (`boxes.matching.match`, Hungarian at the IoU threshold; pairs are (box, reference))
    and the number of false positives. An unmatched box lying inside an ignore region
    (intersection over its own area >= the threshold) counts neither way, as in MR-2."""
    truth, boxes = as_boxes(truth), as_boxes(boxes)
    result = match(boxes, truth, iou_threshold=iou_threshold)
    unmatched = boxes[result.unmatched_a]
    regions = as_boxes(ignore) if ignore is not None else np.zeros((0, 4))
    if len(unmatched) and len(regions):
        unmatched = unmatched[ioa_matrix(unmatched, regions).max(axis=1) < iou_threshold]
    return result, len(unmatched)
