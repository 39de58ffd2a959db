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

from collections.abc import Hashable, Mapping, Sequence
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
    weights: "Mapping[Hashable, float] | Reliability | None" = None,  # Reliability is defined below
    fuse: str = "median",
    ignored: Mapping[Hashable, np.ndarray] | None = None,
) -> Consensus:
    """The consensus of one image's annotations (annotator -> n x 4 boxes; an empty array
    means "saw it, found nobody"). `quorum` is in annotators (or in summed weight when
    `weights` are given); by default a strict majority of those who saw the image.
    `ignored` marks, per annotator, which of their boxes are ignore regions. With a
    `Reliability` (from `estimate_reliability`) as `weights`, a cluster is kept when the
    evidence for a pedestrian outweighs the evidence against (see there), and members are
    fused with weights 1 / boundary noise."""
    if fuse not in ("median", "mean"):
        raise ValueError("fuse must be 'median' or 'mean'")
    annotators = tuple(sorted(annotations, key=repr))
    reliability = weights if isinstance(weights, Reliability) else None
    if reliability is not None:
        rates = {a: reliability.annotators.get(a) for a in annotators}
        weight_of = {a: 1.0 / max(r.boundary_noise, 0.02) if r else 1.0 for a, r in rates.items()}
    else:
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
    strength = {}
    for cluster in fused:
        if reliability is not None:
            strength[id(cluster)] = _evidence(cluster, annotators, rates)
            reaches = strength[id(cluster)] > 0
        else:
            strength[id(cluster)] = cluster.weight
            reaches = cluster.weight >= quorum - 1e-12
        if cluster.is_ignore:
            (ignore if reaches else uncertain).append(cluster)
        else:
            (kept if reaches else uncertain).append(cluster)
    kept, duplicates = _split_duplicates(kept, strength, iou_threshold)
    uncertain += duplicates
    kept.sort(key=lambda c: tuple(c.box))
    uncertain.sort(key=lambda c: tuple(c.box))
    return Consensus(
        annotators=annotators,
        quorum=quorum,
        kept=tuple(kept),
        uncertain=tuple(uncertain),
        ignore_regions=tuple(ignore),
        clusters=tuple(fused),
    )


def _split_duplicates(kept: list[Cluster], strength: dict, threshold: float) -> tuple[list[Cluster], list[Cluster]]:
    """One pedestrian, two clusters: when annotators disagree systematically (one shifts,
    one draws loose), the complete-linkage rule can split one person's boxes in two
    clusters with no annotator in common. Of two kept clusters whose fused boxes overlap
    at the threshold and share no annotator, the weaker goes to the uncertain ones. Two
    people standing close are boxed twice by the same annotators, so their clusters share
    annotators and both stay."""
    ordered = sorted(kept, key=lambda c: (-strength[id(c)], -c.support, tuple(c.box)))
    accepted: list[Cluster] = []
    duplicates: list[Cluster] = []
    for cluster in ordered:
        mine = {member[0] for member in cluster.members}
        clash = any(
            not mine & {member[0] for member in other.members}
            and iou_matrix(cluster.box[None, :], other.box[None, :])[0, 0] >= threshold
            for other in accepted
        )
        (duplicates if clash else accepted).append(cluster)
    return accepted, duplicates


def _evidence(cluster: Cluster, annotators: tuple, rates: Mapping) -> float:
    """Log-likelihood ratio of "a pedestrian is here" from who boxed it and who did not."""
    present = {member[0] for member in cluster.members}
    total = 0.0
    for annotator in annotators:
        rate = rates.get(annotator)
        if rate is None:
            total += 1.0 if annotator in present else -1.0
        else:
            total += rate.evidence_for if annotator in present else rate.evidence_against
    return total


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


# --- Annotator reliability ---------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatorReliability:
    false_positive_rate: float  # share of their boxes that are not real pedestrians
    miss_rate: float  # share of real pedestrians they did not box
    boundary_noise: float  # mean 1 - IoU of their boxes with the consensus boxes they matched
    images: int

    @property
    def evidence_for(self) -> float:
        """Log-likelihood ratio a box of theirs adds for "a pedestrian is here"."""
        return float(np.log((1 - self.miss_rate) / self.false_positive_rate))

    @property
    def evidence_against(self) -> float:
        """Log-likelihood ratio their not boxing anything there adds (negative)."""
        return float(np.log(self.miss_rate / (1 - self.false_positive_rate)))


@dataclass(frozen=True)
class Reliability:
    """Per-annotator rates from `estimate_reliability`; `consolidate(weights=...)` takes it."""

    annotators: dict[Hashable, AnnotatorReliability]
    iterations: int
    converged: bool

    def ranking(self) -> list[Hashable]:
        """Annotators from the most to the least reliable (by the evidence a box of theirs carries)."""
        return sorted(self.annotators, key=lambda a: (-self.annotators[a].evidence_for, repr(a)))


def estimate_reliability(
    images: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    iou_threshold: float = 0.5,
    max_iterations: int = 20,
    tolerance: float = 1e-4,
) -> Reliability:
    """Estimate each annotator's false-positive rate, miss rate and boundary noise over a
    whole project by alternating, in the spirit of Branson, Van Horn and Perona, "Lean
    Crowdsourcing: Combining Humans and Machines in an Online System" (CVPR 2017):

    1. consolidate every image with the current reliabilities (plain strict majority on
       the first pass);
    2. score each annotator against that consensus on the images they saw: their boxes
       matched to a kept box are true positives, the others false positives; kept boxes
       they did not match are misses; rates use add-one smoothing so that no rate is 0 or 1;
    3. repeat until no rate moves by more than `tolerance`.

    With reliabilities, `consolidate` keeps a cluster when the log-likelihood ratio of "a
    pedestrian is here" is positive: each member adds log((1 - miss) / fp), each annotator
    who saw the image but drew nothing there adds log(miss / (1 - fp)). So a careful
    annotator's lone box can outweigh two careless misses. Deterministic.
    """
    from boxes.matching import match

    annotators = sorted({a for image in images for a in image}, key=repr)
    reliability: Reliability | None = None
    previous = None
    iterations = 0
    converged = False
    for iterations in range(1, max_iterations + 1):
        counts = {a: [0, 0, 0, 0, 0.0, 0] for a in annotators}  # tp, fp, fn, kept, iou sum, images
        for image in images:
            kept = consolidate(image, iou_threshold=iou_threshold, weights=reliability).boxes
            for annotator, boxes in image.items():
                boxes = as_boxes(boxes)
                result = match(boxes, kept, iou_threshold=iou_threshold)
                total = counts[annotator]
                total[0] += result.count
                total[1] += len(boxes) - result.count
                total[2] += len(kept) - result.count
                total[3] += len(kept)
                total[4] += float(result.ious.sum())
                total[5] += 1
        rates = {}
        for annotator, (tp, fp, fn, kept_total, iou_sum, seen) in counts.items():
            rates[annotator] = AnnotatorReliability(
                false_positive_rate=(fp + 1) / (tp + fp + 2),
                miss_rate=(fn + 1) / (kept_total + 2),
                boundary_noise=1.0 - iou_sum / tp if tp else 1.0,
                images=seen,
            )
        reliability = Reliability(annotators=rates, iterations=iterations, converged=False)
        vector = np.array([[r.false_positive_rate, r.miss_rate, r.boundary_noise] for r in rates.values()])
        if previous is not None and np.abs(vector - previous).max() <= tolerance:
            converged = True
            break
        previous = vector
    return Reliability(
        annotators=reliability.annotators if reliability else {}, iterations=iterations, converged=converged
    )
