"""Consensus of several annotators' boxes on one image: clusters, quorum, fusion.

`consolidate` groups the boxes of the annotators who saw an image into clusters holding at
most one box per annotator, whose members all overlap each other at the IoU threshold
(complete linkage: a cluster never grows by chaining a box that overlaps only one member).
Candidate pairs are merged greedily from the highest IoU down; ties are broken by the
boxes' coordinates, so the result depends neither on the order of the annotators nor on
the order of their boxes. A cluster is kept when its support (distinct annotators, or their
summed weights when `weights` are given) reaches the quorum, by default a strict majority
of the annotators who saw the image; clusters below it are reported as `uncertain`, for
review, not dropped silently. Each kept cluster is fused edge by edge (weighted median by
default, weighted mean as an option) and reports its support, a score (support /
annotators x mean IoU of the members to the fused box), and its spread (per-edge standard
deviation of the members, divided by the fused box's height). Clusters whose members
mostly (by weight) flagged their box as an ignore region become ignore regions.

Pure numpy; boxes are n x 4 absolute pixel xyxy.
"""

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np

from boxes.geometry import as_boxes, iou_matrix


@dataclass(frozen=True)
class Cluster:
    box: np.ndarray  # fused xyxy
    support: int  # distinct annotators
    weight: float  # summed annotator weights
    score: float
    spread: np.ndarray  # per edge, in units of the fused box's height
    members: tuple[tuple[Hashable, int], ...]  # (annotator, index of their box)
    is_ignore: bool = False


@dataclass(frozen=True)
class Consensus:
    annotators: tuple[Hashable, ...]
    quorum: float
    kept: tuple[Cluster, ...] = ()
    uncertain: tuple[Cluster, ...] = ()
    ignore_regions: tuple[Cluster, ...] = ()
    clusters: tuple[Cluster, ...] = field(default=())

    @property
    def boxes(self) -> np.ndarray:
        return np.array([c.box for c in self.kept], dtype=float).reshape(-1, 4)

    @property
    def support(self) -> np.ndarray:
        return np.array([c.support for c in self.kept], dtype=int)

    @property
    def score(self) -> np.ndarray:
        return np.array([c.score for c in self.kept], dtype=float)

    @property
    def spread(self) -> np.ndarray:
        return np.array([c.spread for c in self.kept], dtype=float).reshape(-1, 4)

    @property
    def members(self) -> list[tuple[tuple[Hashable, int], ...]]:
        return [c.members for c in self.kept]

    @property
    def ignore(self) -> np.ndarray:
        return np.array([c.box for c in self.ignore_regions], dtype=float).reshape(-1, 4)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value minimising the weighted absolute deviation; the midpoint where a whole
    interval does (so equal weights give numpy's median)."""
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    half = cumulative[-1] / 2
    index = int(np.searchsorted(cumulative, half - 1e-12 * cumulative[-1]))
    if np.isclose(cumulative[index], half, rtol=1e-12, atol=0) and index + 1 < len(values):
        return float((values[index] + values[index + 1]) / 2)
    return float(values[index])


def consolidate(
    annotations: Mapping[Hashable, np.ndarray],
    *,
    iou_threshold: float = 0.5,
    quorum: float | None = None,
    weights: Mapping[Hashable, float] | None = None,
    fuse: str = "median",
    ignored: Mapping[Hashable, np.ndarray] | None = None,
) -> Consensus:
    """The consensus of one image's annotations (annotator -> n x 4 boxes; an empty array
    means "saw it, found nobody"). `quorum` is in annotators (or in summed weight when
    `weights` are given); by default a strict majority of those who saw the image.
    `ignored` marks, per annotator, which of their boxes are ignore regions."""
    if fuse not in ("median", "mean"):
        raise ValueError("fuse must be 'median' or 'mean'")
    annotators = tuple(sorted(annotations, key=repr))
    weight_of = {a: float(weights[a]) if weights is not None else 1.0 for a in annotators}
    total_weight = sum(weight_of.values())
    if quorum is None:
        quorum = total_weight / 2 + (1e-9 if weights is not None else 0.5)
    items: list[tuple[Hashable, int]] = []
    rows = []
    flags = []
    for annotator in annotators:
        boxes = as_boxes(annotations[annotator])
        marks = (
            np.zeros(len(boxes), dtype=bool)
            if ignored is None or annotator not in ignored
            else np.asarray(ignored[annotator], dtype=bool)
        )
        for index, box in enumerate(boxes):
            items.append((annotator, index))
            rows.append(box)
            flags.append(bool(marks[index]))
    boxes = np.array(rows, dtype=float).reshape(-1, 4)
    clusters = _cluster(items, boxes, iou_threshold)
    fused = [_fuse(members, items, boxes, flags, weight_of, len(annotators), fuse) for members in clusters]
    fused.sort(key=lambda c: tuple(c.box))
    kept, uncertain, ignore = [], [], []
    for cluster in fused:
        reaches = cluster.weight >= quorum - 1e-12
        if cluster.is_ignore:
            (ignore if reaches else uncertain).append(cluster)
        else:
            (kept if reaches else uncertain).append(cluster)
    return Consensus(
        annotators=annotators,
        quorum=quorum,
        kept=tuple(kept),
        uncertain=tuple(uncertain),
        ignore_regions=tuple(ignore),
        clusters=tuple(fused),
    )


def _cluster(items: list[tuple[Hashable, int]], boxes: np.ndarray, threshold: float) -> list[list[int]]:
    """Complete-linkage clusters, at most one box per annotator, merged from the best IoU down."""
    count = len(items)
    if count == 0:
        return []
    ious = iou_matrix(boxes, boxes)
    owner = [item[0] for item in items]
    keys = [tuple(box) for box in boxes]
    edges = [
        (-ious[i, j], min(keys[i], keys[j]), max(keys[i], keys[j]), i, j)
        for i in range(count)
        for j in range(i + 1, count)
        if owner[i] != owner[j] and ious[i, j] >= threshold
    ]
    edges.sort(key=lambda edge: edge[:3])
    cluster_of = list(range(count))
    members = {i: [i] for i in range(count)}
    for _, _, _, i, j in edges:
        a, b = cluster_of[i], cluster_of[j]
        if a == b:
            continue
        if {owner[k] for k in members[a]} & {owner[k] for k in members[b]}:
            continue
        if ious[np.ix_(members[a], members[b])].min() < threshold:
            continue
        for k in members[b]:
            cluster_of[k] = a
        members[a] += members.pop(b)
    return [sorted(group) for group in members.values()]


def _fuse(group, items, boxes, flags, weight_of, annotators: int, fuse: str) -> Cluster:
    member_boxes = boxes[group]
    member_weights = np.array([weight_of[items[k][0]] for k in group], dtype=float)
    if fuse == "median":
        box = np.array([weighted_median(member_boxes[:, edge], member_weights) for edge in range(4)])
    else:
        box = (member_boxes * member_weights[:, None]).sum(axis=0) / member_weights.sum()
    height = max(box[3] - box[1], 1e-9)
    spread = member_boxes.std(axis=0) / height if len(group) > 1 else np.zeros(4)
    mean_iou = float(iou_matrix(member_boxes, box[None, :]).mean())
    ignore_weight = sum(member_weights[n] for n, k in enumerate(group) if flags[k])
    return Cluster(
        box=box,
        support=len(group),
        weight=float(member_weights.sum()),
        score=len(group) / max(annotators, 1) * mean_iou,
        spread=spread,
        members=tuple(sorted((items[k] for k in group), key=lambda item: (repr(item[0]), item[1]))),
        is_ignore=ignore_weight > member_weights.sum() / 2,
    )
