"""Consensus of several annotators' boxes on one image: clusters, quorum, fusion.

`consolidate` groups the boxes of the annotators who saw an image into clusters holding at
most one box per annotator, whose members all overlap each other at the IoU threshold
(complete linkage: a cluster never grows by chaining a box that overlaps only one member).
Candidate pairs are merged greedily from the highest IoU down; ties are broken by the
boxes' coordinates, so the result depends neither on the order of the annotators nor on
the order of their boxes. A cluster is kept when its support (distinct annotators, or their
summed weights when `weights` are given) reaches the quorum, by default a strict majority
of the annotators who saw the image. One pedestrian boxed too far apart for complete
linkage (one annotator draws loose, another shifts) can come out as two or three parts
with no annotator in common whose fused boxes overlap at the threshold: parts are judged
together (their support summed), and the strongest part stands for them. Clusters
below the quorum are reported as `uncertain`, for
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

from boxes.estimates import Reliability
from boxes.geometry import as_boxes, iou_matrix_unchecked, iou_pairs


@dataclass(frozen=True)
class Cluster:
    """One cluster of boxes (at most one per annotator) and its fused box."""

    box: np.ndarray  # fused xyxy
    support: int  # distinct annotators
    weight: float  # summed annotator weights
    score: float
    spread: np.ndarray  # per edge, in units of the fused box's height
    members: tuple[tuple[Hashable, int], ...]  # (annotator, index of their box)
    is_ignore: bool = False


@dataclass(frozen=True)
class Consensus:
    """One image's consensus: kept clusters (the boxes), uncertain ones, ignore regions."""

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
    weights: Mapping[Hashable, float] | Reliability | None = None,
    fuse: str = "median",
    ignored: Mapping[Hashable, np.ndarray] | None = None,
) -> Consensus:
    """The consensus of one image's annotations (annotator -> n x 4 boxes; an empty array
    means "saw it, found nobody"). `quorum` is in annotators (or in summed weight when
    `weights` are given); by default a strict majority of those who saw the image.
    `ignored` marks, per annotator, which of their boxes are ignore regions. With a
    `Reliability` (from `boxes.reliability.estimate_reliability`) as `weights`, a cluster
    is kept when its posterior of being a pedestrian, under that estimate's model, passes
    the estimate's `keep_above` (one half for estimates stored before it); members are
    fused with weights 1 / boundary noise. A `Reliability` whose weighting was not `used`
    gives the plain majority."""
    return consolidate_image(
        annotations, iou_threshold=iou_threshold, quorum=quorum, weights=weights, fuse=fuse, ignored=ignored
    ).consensus


@dataclass(frozen=True)
class ImageWork:
    """`consolidate`'s intermediate arrays, for code that measures agreement on the same
    clusters without recomputing them (`boxes.agreement`)."""

    consensus: Consensus
    boxes: np.ndarray  # B x 4: every annotator's boxes, annotators in `consensus.annotators` order
    owner: np.ndarray  # B: position of each box's annotator in `consensus.annotators`
    ious: np.ndarray  # B x B IoU of the boxes
    cluster: np.ndarray  # B: position of each box's cluster in `consensus.clusters`


def consolidate_image(
    annotations: Mapping[Hashable, np.ndarray],
    *,
    iou_threshold: float = 0.5,
    quorum: float | None = None,
    weights: Mapping[Hashable, float] | Reliability | None = None,
    fuse: str = "median",
    ignored: Mapping[Hashable, np.ndarray] | None = None,
) -> ImageWork:
    """`consolidate`, returning its intermediate arrays too (see `ImageWork`)."""
    if fuse not in ("median", "mean"):
        raise ValueError("fuse must be 'median' or 'mean'")
    annotators = tuple(sorted(annotations, key=repr))
    reliability = weights if isinstance(weights, Reliability) else None
    if reliability is not None and not reliability.used:
        reliability = weights = None  # it did not fit better than one shared rate: plain majority
    if reliability is not None:
        rates = {a: reliability.annotators.get(a) for a in annotators}
        weight_of = [1.0 / max(r.boundary_noise, 0.02) if r else 1.0 for r in rates.values()]
    else:
        weight_of = [float(weights[a]) if weights is not None else 1.0 for a in annotators]
    total_weight = sum(weight_of)
    if quorum is None:
        quorum = total_weight / 2 + (1e-9 if weights is not None else 0.5)
    arrays = [as_boxes(annotations[a]) for a in annotators]
    counts = np.array([len(array) for array in arrays], dtype=int)
    boxes = np.concatenate(arrays) if arrays else np.zeros((0, 4))
    owner = np.repeat(np.arange(len(annotators)), counts)
    index_in_owner = np.arange(len(boxes)) - np.repeat(np.cumsum(counts) - counts, counts)
    flags = np.zeros(len(boxes), dtype=bool)
    if ignored is not None:
        for position, annotator in enumerate(annotators):
            if annotator in ignored and counts[position]:
                start = int(counts[:position].sum())
                flags[start : start + counts[position]] = np.asarray(ignored[annotator], dtype=bool)
    ious = iou_matrix_unchecked(boxes, boxes)
    labels = _cluster_labels(owner, boxes, ious, iou_threshold)
    box_weights = np.asarray(weight_of, dtype=float)[owner]
    fused = _fuse_clusters(labels, boxes, ious, box_weights, flags, max(len(annotators), 1), fuse)
    order = np.lexsort(fused["box"].T[::-1]) if len(fused["box"]) else np.zeros(0, dtype=int)
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    labels = rank[labels] if len(labels) else labels
    members_of = _members(labels, len(order), owner, index_in_owner, annotators)
    clusters = [
        Cluster(
            box=fused["box"][k],
            support=int(fused["support"][k]),
            weight=float(fused["weight"][k]),
            score=float(fused["score"][k]),
            spread=fused["spread"][k],
            members=members_of[position],
            is_ignore=bool(fused["ignore"][k]),
        )
        for position, k in enumerate(order)
    ]
    real = ~fused["ignore"][order]
    split = _split_parts(fused["box"][order], lambda: [{a for a, _ in c.members} for c in clusters], real,
                         iou_threshold)  # fmt: skip
    group = _part_of(split, len(clusters))
    if reliability is not None:
        evidence = _evidence_authored if reliability.coincidence is not None else _evidence
        extra = (reliability.coincidence,) if reliability.coincidence is not None else ()
        strength = evidence(labels, owner, len(clusters), annotators, rates, *extra) + reliability.prior_evidence
        # a split pedestrian's parts are judged together: every member's evidence
        joint = evidence(group[labels], owner, len(split), annotators, rates, *extra) + reliability.prior_evidence
        reaches = joint[group] > reliability.keep_above
    else:
        strength = np.array([cluster.weight for cluster in clusters])
        joint = np.array([strength[part].sum() for part in split])
        reaches = joint[group] >= quorum - 1e-12
    kept, uncertain, ignore = [], [], []
    for position, cluster in enumerate(clusters):
        if cluster.is_ignore:
            (ignore if reaches[position] else uncertain).append(position)
        else:
            (kept if reaches[position] else uncertain).append(position)
    kept, duplicates = _split_duplicates(
        kept, fused["box"][order], fused["support"][order], labels, owner, strength, iou_threshold
    )
    if reliability is not None:
        kept, surplus = _crowd_cap(kept, fused["box"][order], fused["support"][order], boxes, owner, strength,
                                   iou_threshold)  # fmt: skip
        duplicates += surplus
    uncertain = sorted(uncertain + duplicates)
    consensus = Consensus(
        annotators=annotators,
        quorum=quorum,
        kept=tuple(clusters[k] for k in sorted(kept)),
        uncertain=tuple(clusters[k] for k in uncertain),
        ignore_regions=tuple(clusters[k] for k in ignore),
        clusters=tuple(clusters),
    )
    return ImageWork(consensus=consensus, boxes=boxes, owner=owner, ious=ious, cluster=labels)


def leave_one_out_references(
    annotations: Mapping[Hashable, np.ndarray], *, iou_threshold: float = 0.5, quorum_share: float | None = None
) -> dict[Hashable, np.ndarray]:
    """For each annotator of one image, the boxes of the consensus of the OTHER annotators,
    exactly as `consolidate(others, quorum=quorum_share * (n - 1))` keeps them (a strict
    majority of the n - 1 when `quorum_share` is None), in the same order.

    Computed together: the image's IoU matrix once, each annotator's leave-one-out
    clustering on its rows and columns, and one fusion for the n sets of clusters."""
    annotators = tuple(sorted(annotations, key=repr))
    n = len(annotators)
    if n < 2:
        return {}
    arrays = [as_boxes(annotations[a]) for a in annotators]
    counts = np.array([len(array) for array in arrays], dtype=int)
    boxes = np.concatenate(arrays)
    owner = np.repeat(np.arange(n), counts)
    quorum = (n - 1) / 2 + 0.5 if quorum_share is None else quorum_share * (n - 1)
    ious = iou_matrix_unchecked(boxes, boxes)
    # copy p of the image leaves annotator p out; its clusters are numbered after copy p - 1's
    box_index, copy, labels = [], [], []
    offset = 0
    for position in range(n):
        keep = np.flatnonzero(owner != position)
        mine = _cluster_labels(owner[keep], boxes[keep], ious[np.ix_(keep, keep)], iou_threshold)
        box_index.append(keep)
        copy.append(np.full(len(keep), position))
        labels.append(mine + offset)
        offset += int(mine.max()) + 1 if len(mine) else 0
    box_index, copy, labels = np.concatenate(box_index), np.concatenate(copy), np.concatenate(labels)
    stacked = boxes[box_index]
    fused = _fuse_clusters(labels, stacked, None, np.ones(len(stacked)), np.zeros(len(stacked), bool), n - 1, "median")
    cluster_copy = np.zeros(offset, dtype=int)
    cluster_copy[labels] = copy
    result = {}
    for position, annotator in enumerate(annotators):
        mine = np.flatnonzero(cluster_copy == position)
        if not len(mine):
            result[annotator] = np.zeros((0, 4))
            continue
        order = mine[np.lexsort(fused["box"][mine].T[::-1])]
        strength = fused["weight"][order]
        in_copy = copy == position
        relabel = np.full(offset, -1)
        relabel[order] = np.arange(len(order))
        who: list[set] = [set() for _ in order]
        for label, member in zip(relabel[labels[in_copy]], owner[box_index[in_copy]], strict=True):
            who[label].add(int(member))
        split = _split_parts(fused["box"][order], who, np.ones(len(order), dtype=bool), iou_threshold)
        joint = np.array([strength[part].sum() for part in split])
        kept = np.flatnonzero(joint[_part_of(split, len(order))] >= quorum - 1e-12).tolist()
        kept, _ = _split_duplicates(
            kept,
            fused["box"][order],
            fused["support"][order],
            relabel[labels[in_copy]],
            owner[box_index[in_copy]],
            strength,
            iou_threshold,
        )
        result[annotator] = fused["box"][order][sorted(kept)].reshape(-1, 4)
    return result


def _members(labels, count, owner, index_in_owner, annotators) -> list[tuple]:
    """Each cluster's (annotator, box index) pairs; boxes are already in annotator order."""
    members: list[list] = [[] for _ in range(count)]
    for label, who, index in zip(labels.tolist(), owner.tolist(), index_in_owner.tolist(), strict=True):
        members[label].append((annotators[who], index))
    return [tuple(group) for group in members]


def _split_parts(boxes: np.ndarray, who: list, real: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Clusters that are parts of one pedestrian: complete linkage can split one person's
    boxes in two or three clusters with no annotator in common (one draws loose, one shifts),
    none of which reaches the quorum alone. Parts are grouped from the best overlap of their
    fused boxes down, while every pair of a group overlaps at the threshold and no annotator
    is in two of them; every other cluster is a group of its own. `who`: each cluster's
    annotators, or a function that gives them (called only when two clusters overlap)."""
    count = len(boxes)
    if count < 2:
        return [np.array([k]) for k in range(count)]
    overlap = iou_matrix_unchecked(boxes, boxes)
    close = (overlap >= threshold) & real[:, None] & real[None, :]
    np.fill_diagonal(close, False)
    first, second = np.nonzero(np.triu(close, 1))
    if not len(first):
        return [np.array([k]) for k in range(count)]
    groups = [{k} for k in range(count)]
    group_of = list(range(count))
    owners = [set(w) for w in (who() if callable(who) else who)]
    for i, j in sorted(zip(first.tolist(), second.tolist(), strict=True), key=lambda p: (-overlap[p], p)):
        a, b = group_of[i], group_of[j]
        if a == b or owners[a] & owners[b] or not all(close[x, y] for x in groups[a] for y in groups[b]):
            continue
        groups[a] |= groups[b]
        owners[a] |= owners[b]
        for k in groups[b]:
            group_of[k] = a
        groups[b] = set()
    return [np.array(sorted(g)) for g in groups if g]


def _part_of(parts: list[np.ndarray], count: int) -> np.ndarray:
    position = np.zeros(count, dtype=int)
    for index, part in enumerate(parts):
        position[part] = index
    return position


def _crowd_cap(kept, fused, support, boxes, owner, strength, threshold) -> tuple[list[int], list[int]]:
    """Two people nearly on top of each other, boxed twice by everyone, can come out of
    complete linkage as three or four clusters, each a mix of both; weighed by reliability,
    three careful annotators' boxes keep a fragment that a majority would not. So where
    kept clusters overlap at the threshold (chained), no more are kept than the most boxes
    one annotator drew there (overlapping one of them at the threshold); the weakest go to
    the uncertain ones."""
    if len(kept) < 2:
        return kept, []
    kept = np.array(kept)
    overlap = iou_matrix_unchecked(fused[kept], fused[kept]) >= threshold
    if not (overlap.sum() > len(kept)):
        return kept.tolist(), []
    component = np.arange(len(kept))
    while True:  # chained overlaps: each takes the smallest label it reaches
        reached = np.where(overlap, component[None, :], len(kept)).min(axis=1)
        if (reached == component).all():
            break
        component = reached
    near = iou_matrix_unchecked(boxes, fused[kept]) >= threshold  # box x kept cluster
    dropped: list[int] = []
    for label in np.unique(component):
        members = np.flatnonzero(component == label)
        if len(members) < 2:
            continue
        drawn = near[:, members].any(axis=1)
        # at least one: a kept cluster always stands for someone
        most = max(int(np.bincount(owner[drawn], minlength=int(owner.max()) + 1).max()) if drawn.any() else 0, 1)
        if len(members) > most:
            dropped += _strongest_first(members, kept, strength, support, fused)[most:]
    gone = set(dropped)
    accepted = [int(k) for i, k in enumerate(kept) if i not in gone]
    return accepted, [int(kept[i]) for i in dropped]


def _strongest_first(positions, kept, strength, support, boxes) -> list[int]:
    """Positions into `kept`, its clusters strongest first (ties: more support, then the box)."""
    return sorted(positions, key=lambda i: (-strength[kept[i]], -support[kept[i]], tuple(boxes[kept[i]])))


def _split_duplicates(kept, boxes, support, labels, owner, strength, threshold) -> tuple[list[int], list[int]]:
    """One pedestrian, two clusters: when annotators disagree systematically (one shifts,
    one draws loose), the complete-linkage rule can split one person's boxes in two
    clusters with no annotator in common. Of two kept clusters whose fused boxes overlap
    at the threshold and share no annotator, the weaker goes to the uncertain ones. Two
    people standing close are boxed twice by the same annotators, so their clusters share
    annotators and both stay."""
    if len(kept) < 2:
        return kept, []
    kept = np.array(kept)
    fused = boxes[kept]
    overlap = iou_matrix_unchecked(fused, fused) >= threshold
    np.fill_diagonal(overlap, False)
    if not overlap.any():
        return kept.tolist(), []
    who = np.zeros((len(boxes), int(owner.max()) + 1), dtype=bool)
    who[labels, owner] = True
    who = who[kept]
    shares = (who.astype(int) @ who.T.astype(int)) > 0
    clash = overlap & ~shares
    ordered = _strongest_first(range(len(kept)), kept, strength, support, boxes)
    accepted: list[int] = []
    duplicates: list[int] = []
    for i in ordered:
        (duplicates if accepted and clash[i, accepted].any() else accepted).append(i)
    return [int(kept[i]) for i in accepted], [int(kept[i]) for i in duplicates]


def _evidence(labels, owner, count: int, annotators: tuple, rates: Mapping) -> np.ndarray:
    """Log-likelihood ratio of "a pedestrian is here", per cluster, from who boxed it and
    who did not, each annotator independently (estimates stored before the authored model,
    which hold no `coincidence`): every annotator who saw the image adds their evidence
    against, and each member swaps it for their evidence for."""
    against = np.array([rates[a].evidence_against if rates[a] else -1.0 for a in annotators])
    swing = np.array([rates[a].evidence_for if rates[a] else 1.0 for a in annotators]) - against
    return against.sum() + np.bincount(labels, weights=swing[owner], minlength=count)


def _evidence_authored(labels, owner, count: int, annotators: tuple, rates: Mapping, coincidence: float):
    """Log-likelihood ratio of "a pedestrian is here", per cluster, under the model of
    `boxes.reliability`: a real pedestrian is boxed by each annotator who saw the image
    with their own chance, given that someone boxed it; a spurious candidate was started by
    one of its members (in proportion to the spurious boxes each starts per image) and
    joined by each other annotator with the chance `coincidence`."""
    known = [rates[a] for a in annotators]
    sens = np.array([1 - r.miss_rate if r else 0.5 for r in known])
    start = np.array([r.spurious_per_image if r and r.spurious_per_image is not None else 1.0 for r in known])
    viewers = len(annotators)
    member = np.zeros((count, viewers))
    member[labels, owner] = 1.0
    voters = member.sum(axis=1)
    nobody = float(np.log1p(-sens).sum())
    real = member @ np.log(sens) + (1 - member) @ np.log1p(-sens) - np.log(-np.expm1(min(nobody, -1e-12)))
    with np.errstate(divide="ignore"):
        spurious = (
            np.log(member @ start)
            - np.log(start.sum())
            + np.maximum(voters - 1, 0) * np.log(coincidence)
            + (viewers - voters) * np.log1p(-coincidence)
        )
    return real - spurious


def _cluster_labels(owner: np.ndarray, boxes: np.ndarray, ious: np.ndarray, threshold: float) -> np.ndarray:
    """Complete-linkage clusters, at most one box per annotator, merged from the best IoU
    down (ties by the boxes' coordinates): a cluster label per box, 0 .. K-1.

    Boxes of different annotators overlapping at the threshold are linked; a connected
    group of boxes that is already a clique (every pair linked, so no annotator twice) is
    one cluster as it stands, which is what the greedy merge would give it. Only the other
    groups (crowds, an annotator's overlapping boxes) are merged edge by edge."""
    count = len(boxes)
    if count == 0:
        return np.zeros(0, dtype=int)
    linked = (ious >= threshold) & (owner[:, None] != owner[None, :])
    first, second = np.nonzero(np.triu(linked, 1))
    if len(first) == 0:
        return np.arange(count)
    component = _components(count, first, second)
    groups = int(component.max()) + 1
    sizes = np.bincount(component, minlength=groups)
    edges = np.bincount(component[first], minlength=groups)
    messy = edges != sizes * (sizes - 1) // 2
    if not messy.any():
        return component
    labels = component.copy()
    in_messy = messy[component[first]]
    first, second = first[in_messy], second[in_messy]
    rank = _lexicographic_rank(boxes)
    low, high = np.minimum(rank[first], rank[second]), np.maximum(rank[first], rank[second])
    order = np.lexsort((high, low, -ious[first, second]))
    # Sets as bit masks: links[k] holds the boxes overlapping box k at the threshold (and
    # k); a cluster may take another whole when every member of the other is in the
    # intersection of its members' links and they share no annotator.
    messy_boxes = np.flatnonzero(messy[component]).tolist()
    close = ious[messy_boxes] >= threshold
    packed = np.packbits(close, axis=1, bitorder="little")
    links = {k: int.from_bytes(row.tobytes(), "little") for k, row in zip(messy_boxes, packed, strict=True)}
    members = {k: 1 << k for k in messy_boxes}
    common = dict(links)
    owners = {k: 1 << int(owner[k]) for k in messy_boxes}
    cluster_of = {k: k for k in messy_boxes}
    for i, j in zip(first[order].tolist(), second[order].tolist(), strict=True):
        a, b = cluster_of[i], cluster_of[j]
        if a == b or owners[a] & owners[b] or common[a] & members[b] != members[b]:
            continue
        mask = members.pop(b)
        members[a] |= mask
        common[a] &= common.pop(b)
        owners[a] |= owners.pop(b)
        for k in messy_boxes:
            if mask >> k & 1:
                cluster_of[k] = a
    next_label = groups
    for mask in members.values():
        labels[[k for k in messy_boxes if mask >> k & 1]] = next_label
        next_label += 1
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def _components(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges first[k] - second[k]: a label per node, 0 .. C-1."""
    parent = list(range(count))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for i, j in zip(first.tolist(), second.tolist(), strict=True):
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([root(node) for node in range(count)])
    return np.unique(roots, return_inverse=True)[1].reshape(-1)


def _lexicographic_rank(boxes: np.ndarray) -> np.ndarray:
    """Rank of each box by its coordinates read left to right; equal boxes share a rank."""
    order = np.lexsort(boxes.T[::-1])
    ordered = boxes[order]
    new = np.concatenate([[True], (np.diff(ordered, axis=0) != 0).any(axis=1)])
    rank = np.empty(len(boxes), dtype=int)
    rank[order] = np.cumsum(new) - 1
    return rank


def _fuse_clusters(labels, boxes, ious, weights, flags, annotators: int, fuse: str) -> dict[str, np.ndarray]:
    """Every cluster fused at once: box, support, weight, score, spread, ignore flag."""
    count = int(labels.max()) + 1 if len(labels) else 0
    support = np.bincount(labels, minlength=count)
    weight = np.bincount(labels, weights=weights, minlength=count)
    if count == 0:
        empty = np.zeros((0, 4))
        return {"box": empty, "support": support, "weight": weight, "score": np.zeros(0), "spread": empty,
                "ignore": np.zeros(0, dtype=bool)}  # fmt: skip
    if fuse == "median":
        box = np.column_stack([_weighted_medians(labels, boxes[:, edge], weights, weight) for edge in range(4)])
    else:
        box = (
            np.column_stack(
                [np.bincount(labels, weights=weights * boxes[:, edge], minlength=count) for edge in range(4)]
            )
            / weight[:, None]
        )
    mean = np.column_stack([np.bincount(labels, weights=boxes[:, e], minlength=count) for e in range(4)])
    mean /= support[:, None]
    deviation = (boxes - mean[labels]) ** 2
    variance = np.column_stack([np.bincount(labels, weights=deviation[:, e], minlength=count) for e in range(4)])
    height = np.maximum(box[:, 3] - box[:, 1], 1e-9)
    spread = np.sqrt(variance / support[:, None]) / height[:, None]
    spread[support == 1] = 0.0
    mean_iou = np.bincount(labels, weights=iou_pairs(boxes, box[labels]), minlength=count) / support
    ignore_weight = np.bincount(labels, weights=weights * flags, minlength=count)
    return {
        "box": box,
        "support": support,
        "weight": weight,
        "score": support / annotators * mean_iou,
        "spread": spread,
        "ignore": ignore_weight > weight / 2,
    }


def _weighted_medians(labels: np.ndarray, values: np.ndarray, weights: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """`weighted_median` of every cluster's values at once."""
    order = np.lexsort((values, labels))
    sorted_labels, sorted_values = labels[order], values[order]
    cumulative = np.cumsum(weights[order])
    starts = np.searchsorted(sorted_labels, np.arange(len(totals)), side="left")
    ends = np.searchsorted(sorted_labels, np.arange(len(totals)), side="right")
    before = np.concatenate([[0.0], cumulative])[starts]
    half = totals / 2
    index = np.searchsorted(cumulative, before + half - 1e-12 * totals, side="left")
    index = np.minimum(np.maximum(index, starts), ends - 1)
    reached = cumulative[index] - before
    midpoint = (np.abs(reached - half) <= 1e-12 * np.abs(half)) & (index + 1 < ends)
    following = sorted_values[np.minimum(index + 1, len(sorted_values) - 1)]
    return np.where(midpoint, (sorted_values[index] + following) / 2, sorted_values[index])
