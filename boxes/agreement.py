"""How far annotators agree on the same images: pairwise F1 and IoU, Krippendorff's alpha,
per image and per dataset, with bootstrap intervals.

Pairwise agreement between two annotators on the images both saw: matched pairs TP from
one-to-one Hungarian matching at the IoU threshold (`boxes.matching`), F1 = 2 TP / (|A| +
|B|) (the Dice form, so an image where both drew nothing agrees fully and counts as F1 =
1), and the mean IoU of the matched pairs. Counts are summed over images before dividing,
so images with many pedestrians weigh more, as in detection benchmarks.

Krippendorff's alpha (Krippendorff, "Content Analysis: An Introduction to Its
Methodology", 4th ed. 2019, ch. 12; "Computing Krippendorff's Alpha-Reliability", 2011)
treats each consensus cluster of an image (`boxes.consensus.consolidate`, kept, uncertain
and ignore clusters alike) as a unit, and each annotator who saw the image as a coder who
gives that unit a value: their box in the cluster, or "absent". Distances: 1 - IoU between
two boxes of the same image, 1 between boxes of different images (they cannot be the same
pedestrian), 1 between a box and "absent", 0 between two absents. Annotators who did not
see an image give no value. alpha = 1 - D_o / D_e: D_o is the mean distance between values
paired within a unit (a unit with m values weighs each ordered pair by 1 / (m - 1)), D_e
the mean distance between all pairable values pooled. Because distances across images
are 1, D_e needs only each image's own box overlaps, so alpha over a 10,000-image project
is computed image by image, exactly.

Intervals (`measure`) are percentile bootstrap intervals (Efron and Tibshirani, "An
Introduction to the Bootstrap", 1993, ch. 13) that resample images with replacement, never
boxes, since boxes of one image are not independent: B = 1000 resamples from a seeded
generator, so the same input gives the same interval. Every figure here is a ratio of
sums over images, so a resample is a weighted sum of per-image counts.
"""

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.sparse import csr_matrix

from boxes.consensus import ImageWork, consolidate_image
from boxes.matching import match_blocks


@dataclass(frozen=True)
class PairAgreement:
    """Two annotators over the images both saw: matched pairs, box counts, IoU of the matches."""

    images: int  # images both annotators saw
    true_positives: int
    boxes_a: int
    boxes_b: int
    iou_sum: float

    @property
    def f1(self) -> float:
        total = self.boxes_a + self.boxes_b
        return 1.0 if total == 0 else 2 * self.true_positives / total

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.true_positives if self.true_positives else None


@dataclass(frozen=True)
class Agreement:
    """Every pair of annotators (`pairs[a, b]` with a before b in `annotators`)."""

    annotators: tuple[Hashable, ...]
    pairs: dict[tuple[Hashable, Hashable], PairAgreement] = field(default_factory=dict)

    @property
    def f1_matrix(self) -> np.ndarray:
        """Annotator x annotator pairwise F1 (NaN where two never saw the same image, 1 on the diagonal)."""
        index = {annotator: i for i, annotator in enumerate(self.annotators)}
        matrix = np.full((len(self.annotators),) * 2, np.nan)
        np.fill_diagonal(matrix, 1.0)
        for (a, b), pair in self.pairs.items():
            if pair.images:
                matrix[index[a], index[b]] = matrix[index[b], index[a]] = pair.f1
        return matrix

    @property
    def mean_f1(self) -> float | None:
        """Mean pairwise F1 over pairs that shared at least one image."""
        values = [pair.f1 for pair in self.pairs.values() if pair.images]
        return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class ImageFigures:
    """Agreement on each image, in input order (NaN where an image has fewer than two annotators)."""

    annotators: np.ndarray  # who saw it
    f1: np.ndarray  # 2 TP / (|A| + |B|) summed over the image's annotator pairs
    mean_iou: np.ndarray  # of the matched pairs (NaN without any)
    alpha: np.ndarray  # 1 - D_o(image) / D_e(dataset): the image's share of the disagreement
    units: np.ndarray  # consensus clusters (kept, uncertain and ignore)
    uncertain: np.ndarray  # clusters below the quorum

    def least_agreed(self, count: int = 20) -> np.ndarray:
        """Indices of the `count` images with the lowest alpha (then lowest F1), NaNs last."""
        alpha = np.where(np.isnan(self.alpha), np.inf, self.alpha)
        f1 = np.where(np.isnan(self.f1), np.inf, self.f1)
        return np.lexsort((f1, alpha))[:count]


@dataclass(frozen=True)
class AgreementReport:
    """Dataset figures, with `intervals[name] = (low, high)` for f1, mean_pair_f1, mean_iou and alpha."""

    pairwise: Agreement
    f1: float  # 2 sum TP / sum (|A| + |B|) over every pair and image
    mean_pair_f1: float  # mean over annotator pairs of their F1
    mean_iou: float  # of all matched pairs
    alpha: float
    images: ImageFigures
    intervals: dict[str, tuple[float, float]]
    draws: dict[str, np.ndarray]  # each figure on every bootstrap resample, in draw order
    bootstrap: int
    confidence: float
    seed: int


# Resamples drawn at once (a block x images matrix of weights): the draws are the same in
# any block size, so this bounds memory only (16 MB a block at 100,000 images).
RESAMPLE_BLOCK = 20
# Per-image columns summed over images (and over resamples): see `_image_counts`.
_TP, _BOXES, _IOU, _VALUES, _OBSERVED, _ABSENT, _ALPHA_BOXES, _OVERLAP = range(8)


@dataclass(frozen=True)
class ImageCounts:
    """What `measure` sums, image by image: enough to give its report without the boxes.
    Counts of disjoint sets of images concatenate (`counts_concatenate`), so a large
    project's images can be counted in chunks, in several processes, and reported once.
    `pair_image` indexes the rows; `pair_a` and `pair_b` are annotators (a before b in the
    image's own order), `pair_stats` their TP, |A|, |B| and IoU sum on that image."""

    counts: np.ndarray  # images x 8: the columns above
    units: np.ndarray  # consensus clusters per image
    uncertain: np.ndarray  # clusters below the quorum per image
    seen: np.ndarray  # annotators per image
    pair_image: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    pair_stats: np.ndarray  # pairs x 4
    annotators: tuple = ()  # everyone who saw one of the images, in `repr` order

    def __len__(self) -> int:
        return len(self.counts)

    def f1(self) -> np.ndarray:
        """Each image's pairwise F1 (NaN with fewer than two annotators; 1 where all drew nothing)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(self.seen >= 2, 2 * self.counts[:, _TP] / self.counts[:, _BOXES], np.nan)
        return np.where((self.seen >= 2) & (self.counts[:, _BOXES] == 0), 1.0, f1)

    def mean_iou(self) -> np.ndarray:
        """Each image's mean IoU of its matched pairs (NaN without any)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.counts[:, _TP] > 0, self.counts[:, _IOU] / self.counts[:, _TP], np.nan)


def image_counts(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    iou_threshold: float = 0.5,
    consolidator: Callable[[int, Mapping[Hashable, np.ndarray]], ImageWork] | None = None,
) -> ImageCounts:
    """Each image's counts (see `ImageCounts`); `consolidator` as in `measure`."""
    count = len(annotations_per_image)
    counts = np.zeros((count, 8))
    units = np.zeros(count, dtype=int)
    uncertain = np.zeros(count, dtype=int)
    seen = np.zeros(count, dtype=int)
    pair_image, pair_a, pair_b, pair_stats = [], [], [], []
    for index, image in enumerate(annotations_per_image):
        work = (
            consolidator(index, image)
            if consolidator is not None
            else consolidate_image(image, iou_threshold=iou_threshold)
        )
        pairs, stats = _pair_counts(work, iou_threshold)
        counts[index] = _image_counts(work, stats)
        if len(pairs):
            annotators = np.empty(len(work.consensus.annotators), dtype=object)
            annotators[:] = list(work.consensus.annotators)
            pair_image.append(np.full(len(pairs), index))
            pair_a.append(annotators[pairs[:, 0]])
            pair_b.append(annotators[pairs[:, 1]])
            pair_stats.append(stats)
        units[index] = len(work.consensus.clusters)
        uncertain[index] = len(work.consensus.uncertain)
        seen[index] = len(work.consensus.annotators)
    return ImageCounts(
        counts=counts,
        units=units,
        uncertain=uncertain,
        seen=seen,
        pair_image=np.concatenate(pair_image) if pair_image else np.zeros(0, dtype=int),
        pair_a=np.concatenate(pair_a) if pair_a else np.zeros(0, dtype=object),
        pair_b=np.concatenate(pair_b) if pair_b else np.zeros(0, dtype=object),
        pair_stats=np.concatenate(pair_stats) if pair_stats else np.zeros((0, 4)),
        annotators=tuple(sorted({a for image in annotations_per_image for a in image}, key=repr)),
    )


def counts_concatenate(parts: Sequence[ImageCounts]) -> ImageCounts:
    """The counts of several disjoint sets of images, as one, in the order given."""
    offsets = np.cumsum([0] + [len(part) for part in parts])
    return ImageCounts(
        counts=np.concatenate([part.counts for part in parts]) if parts else np.zeros((0, 8)),
        units=np.concatenate([part.units for part in parts]) if parts else np.zeros(0, dtype=int),
        uncertain=np.concatenate([part.uncertain for part in parts]) if parts else np.zeros(0, dtype=int),
        seen=np.concatenate([part.seen for part in parts]) if parts else np.zeros(0, dtype=int),
        pair_image=np.concatenate([part.pair_image + offset for part, offset in zip(parts, offsets, strict=False)])
        if parts
        else np.zeros(0, dtype=int),
        pair_a=np.concatenate([part.pair_a for part in parts]) if parts else np.zeros(0, dtype=object),
        pair_b=np.concatenate([part.pair_b for part in parts]) if parts else np.zeros(0, dtype=object),
        pair_stats=np.concatenate([part.pair_stats for part in parts]) if parts else np.zeros((0, 4)),
        annotators=tuple(sorted({a for part in parts for a in part.annotators}, key=repr)),
    )


def measure(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    iou_threshold: float = 0.5,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    consolidator: Callable[[int, Mapping[Hashable, np.ndarray]], ImageWork] | None = None,
) -> AgreementReport:
    """Pairwise agreement, Krippendorff's alpha and per-image figures, with percentile
    bootstrap intervals over images (`bootstrap` resamples, 0 for none; seeded).

    `annotations_per_image`: one mapping per image, annotator -> boxes (n x 4 xyxy pixels);
    an empty array means "saw it, found nobody", an absent key "did not see it".

    `consolidator(index, image)` may replace `consolidate_image(image, iou_threshold=...)`,
    so that a caller who needs each image's consensus with its own quorum, weights, fusion
    or ignore flags gets it from the same pass. The figures do not change: they depend on
    the clusters only, and clusters depend on the boxes and the IoU threshold alone.

    The same as `report_from_counts(image_counts(...))`, which is how a project too large
    for one process is measured chunk by chunk.
    """
    counted = image_counts(annotations_per_image, iou_threshold=iou_threshold, consolidator=consolidator)
    return report_from_counts(counted, bootstrap=bootstrap, confidence=confidence, seed=seed)


def report_from_counts(
    counted: ImageCounts, *, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> AgreementReport:
    """`measure`'s report from the images' counts (one `ImageCounts`, or chunks of them
    joined by `counts_concatenate`): the same numbers, the same resamples."""
    annotators = counted.annotators
    position = {annotator: i for i, annotator in enumerate(annotators)}
    count = len(counted)
    image_counts = counted.counts
    rows = counted.pair_image.astype(int)
    columns = (
        _positions(counted.pair_a, position) * len(annotators) + _positions(counted.pair_b, position)
        if len(rows)
        else np.zeros(0, dtype=int)
    )
    values = counted.pair_stats
    agreement = _agreement(annotators, columns, values)

    totals = image_counts.sum(axis=0)
    expected = _expected_disagreement(totals)
    with np.errstate(divide="ignore", invalid="ignore"):
        image_alpha = np.where(
            image_counts[:, _VALUES] > 0, 1.0 - image_counts[:, _OBSERVED] / image_counts[:, _VALUES] / expected, np.nan
        )
    figures = ImageFigures(
        annotators=counted.seen,
        f1=counted.f1(),
        mean_iou=counted.mean_iou(),
        alpha=image_alpha,
        units=counted.units,
        uncertain=counted.uncertain,
    )
    # Per image and pair: true positives and |A| + |B|, for the mean of the pairs' F1.
    pair_matrix = csr_matrix(
        (
            np.concatenate([values[:, 0], values[:, 1] + values[:, 2], np.ones(len(rows))]),
            (np.tile(rows, 3), np.concatenate([columns * 3, columns * 3 + 1, columns * 3 + 2])),
        ),
        shape=(count, 3 * len(annotators) ** 2),
    )
    point = _figures(totals[None, :], np.asarray(pair_matrix.sum(axis=0)))
    intervals: dict[str, tuple[float, float]] = {}
    draws: dict[str, np.ndarray] = {}
    if bootstrap and count:
        rng = np.random.default_rng(seed)
        low, high = 50 * (1 - confidence), 50 * (1 + confidence)
        samples = {name: [] for name in point}
        for start in range(0, bootstrap, RESAMPLE_BLOCK):
            size = min(RESAMPLE_BLOCK, bootstrap - start)
            picks = rng.integers(0, count, size=(size, count))
            weights = np.bincount((picks + np.arange(size)[:, None] * count).ravel(), minlength=size * count).reshape(
                size, count
            )
            resampled = _figures(weights @ image_counts, np.asarray((pair_matrix.T @ weights.T).T))
            for name, value in resampled.items():
                samples[name].append(value)
        for name, chunks in samples.items():
            draws[name] = np.concatenate(chunks)
            defined = draws[name][~np.isnan(draws[name])]
            intervals[name] = (
                (float(np.percentile(defined, low)), float(np.percentile(defined, high)))
                if len(defined)
                else (np.nan, np.nan)
            )
    return AgreementReport(
        pairwise=agreement,
        f1=float(point["f1"][0]),
        mean_pair_f1=float(point["mean_pair_f1"][0]),
        mean_iou=float(point["mean_iou"][0]),
        alpha=float(point["alpha"][0]),
        images=figures,
        intervals=intervals,
        draws=draws,
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
    )


def pairwise(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]], *, iou_threshold: float = 0.5
) -> Agreement:
    """Agreement of every pair of annotators over the images both saw (see the module
    docstring); `Agreement.f1_matrix` is the annotator x annotator table."""
    return measure(annotations_per_image, iou_threshold=iou_threshold, bootstrap=0).pairwise


def krippendorff_alpha(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]], *, iou_threshold: float = 0.5
) -> float:
    """Krippendorff's alpha over units = the consensus clusters of every image, with the
    distance 1 - IoU between boxes of one image, 1 between boxes of different images, 1
    between a box and "absent", 0 between two absents (see the module docstring).

    alpha = 1 - D_o / D_e. NaN when nothing is pairable or every value is the same."""
    return measure(annotations_per_image, iou_threshold=iou_threshold, bootstrap=0).alpha


def alpha_units(
    annotations_per_image: Sequence[Mapping[Hashable, np.ndarray]], *, iou_threshold: float = 0.5
) -> tuple[list[list[int | None]], np.ndarray, tuple[Hashable, ...]]:
    """Krippendorff's alpha written out the textbook way, to check `krippendorff_alpha`
    against another implementation (quadratic in the number of boxes: small inputs only).

    Returns the units as lists of value codes, one per annotator (None: did not see the
    image; 0: saw it, drew no box in this cluster; k > 0: their box number k), the distance
    matrix between codes, and the annotators in column order.
    """
    annotators = tuple(sorted({a for image in annotations_per_image for a in image}, key=repr))
    units: list[list[int | None]] = []
    blocks: list[np.ndarray] = []
    for image in annotations_per_image:
        work = consolidate_image(image, iou_threshold=iou_threshold)
        first_code = sum(len(block) for block in blocks) + 1
        blocks.append(work.ious)
        for cluster in range(len(work.consensus.clusters)):
            members = {work.consensus.annotators[work.owner[b]]: b for b in np.flatnonzero(work.cluster == cluster)}
            units.append(
                [
                    None if annotator not in image else first_code + members[annotator] if annotator in members else 0
                    for annotator in annotators
                ]
            )
    total = sum(len(block) for block in blocks)
    distance = np.ones((total + 1, total + 1))
    distance[0, 0] = 0.0
    offset = 1
    for block in blocks:
        distance[offset : offset + len(block), offset : offset + len(block)] = 1.0 - block
        offset += len(block)
    np.fill_diagonal(distance, 0.0)
    return units, distance, annotators


def _positions(values: np.ndarray, position: Mapping[Hashable, int]) -> np.ndarray:
    """Each value's position in the annotators' order (looked up once per distinct value)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([position[value] for value in distinct.tolist()], dtype=int)[inverse.reshape(-1)]


def _pair_counts(work: ImageWork, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """For each pair of the image's annotators (a < b): TP, |A|, |B|, IoU sum of the matched
    pairs (Hungarian, `boxes.matching.match_blocks`)."""
    m = len(work.consensus.annotators)
    if m < 2:
        return np.zeros((0, 2), dtype=int), np.zeros((0, 4))
    owner = work.owner
    tp, iou_sum = match_blocks(
        work.ious, owner, owner, groups=(m, m), iou_threshold=threshold, allowed=owner[:, None] < owner[None, :]
    )
    box_count = np.bincount(owner, minlength=m)
    pairs = np.array(list(combinations(range(m), 2)), dtype=int)
    a, b = pairs[:, 0], pairs[:, 1]
    return pairs, np.column_stack([tp[a, b], box_count[a], box_count[b], iou_sum[a, b]])


def _image_counts(work: ImageWork, stats: np.ndarray) -> np.ndarray:
    """One image's sums: pairwise TP, |A| + |B| and IoU sum over its pairs, and the pieces of
    Krippendorff's alpha (pairable values, D_o numerator, absents, boxes, box overlaps)."""
    counts = np.zeros(8)
    counts[_TP] = stats[:, 0].sum()
    counts[_BOXES] = stats[:, 1].sum() + stats[:, 2].sum()
    counts[_IOU] = stats[:, 3].sum()
    m = len(work.consensus.annotators)
    unit_count = len(work.consensus.clusters)
    if m < 2 or unit_count == 0:
        return counts
    ious = work.ious
    self_overlap = np.trace(ious)
    same_unit = work.cluster[:, None] == work.cluster[None, :]
    within = float(ious[same_unit].sum() - self_overlap)
    boxes_in_unit = np.bincount(work.cluster, minlength=unit_count).astype(float)
    absent = m - boxes_in_unit
    counts[_VALUES] = m * unit_count
    # Ordered pairs within a unit: box-absent pairs at distance 1 both ways, box-box pairs at 1 - IoU.
    counts[_OBSERVED] = ((2 * absent * boxes_in_unit).sum() + (boxes_in_unit * (boxes_in_unit - 1)).sum() - within) / (
        m - 1
    )
    counts[_ABSENT] = absent.sum()
    counts[_ALPHA_BOXES] = len(work.boxes)
    counts[_OVERLAP] = float(ious.sum() - self_overlap)
    return counts


def _expected_disagreement(totals: np.ndarray) -> np.ndarray:
    """D_e from summed image counts (rows: datasets or resamples): the mean distance over
    ordered pairs of distinct pairable values, box-absent 1, box-box 1 - IoU within an
    image and 1 across images, absent-absent 0."""
    totals = np.atleast_2d(totals)
    values, absent, boxes, overlap = (totals[:, k] for k in (_VALUES, _ABSENT, _ALPHA_BOXES, _OVERLAP))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (2 * absent * boxes + boxes * (boxes - 1) - overlap) / (values * (values - 1))


def _figures(totals: np.ndarray, pair_totals: np.ndarray) -> dict[str, np.ndarray]:
    """The dataset figures for each row of summed counts (the data, or bootstrap resamples)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tp, boxes, iou = totals[:, _TP], totals[:, _BOXES], totals[:, _IOU]
        f1 = np.where(boxes > 0, 2 * tp / boxes, np.where(tp == 0, 1.0, np.nan))
        pair = pair_totals.reshape(len(pair_totals), -1, 3)
        pair_f1 = np.where(pair[:, :, 1] > 0, 2 * pair[:, :, 0] / pair[:, :, 1], 1.0)
        shared = pair[:, :, 2] > 0
        pair_f1 = np.where(shared, pair_f1, np.nan)
        mean_pair_f1 = np.full(len(pair), np.nan)
        any_shared = shared.any(axis=1)
        mean_pair_f1[any_shared] = np.nanmean(pair_f1[any_shared], axis=1)
        observed = totals[:, _OBSERVED] / totals[:, _VALUES]
        expected = _expected_disagreement(totals)
        alpha = np.where((totals[:, _VALUES] >= 2) & (expected > 0), 1.0 - observed / expected, np.nan)
        no_pairs = pair[:, :, 2].sum(axis=1) == 0
        f1 = np.where(no_pairs, np.nan, f1)
        return {
            "f1": f1,
            "mean_pair_f1": mean_pair_f1,
            "mean_iou": np.where(tp > 0, iou / tp, np.nan),
            "alpha": alpha,
        }


def _agreement(annotators: tuple, columns: np.ndarray, values: np.ndarray) -> Agreement:
    """The per-pair totals as an `Agreement`."""
    size = len(annotators) ** 2
    sums = [np.bincount(columns, minlength=size)] + [
        np.bincount(columns, weights=values[:, k], minlength=size) for k in range(4)
    ]
    n = len(annotators)
    pairs = {}
    for i, j in combinations(range(n), 2):
        column = i * n + j
        pairs[annotators[i], annotators[j]] = PairAgreement(
            images=int(sums[0][column]),
            true_positives=int(sums[1][column]),
            boxes_a=int(sums[2][column]),
            boxes_b=int(sums[3][column]),
            iou_sum=float(sums[4][column]),
        )
    return Agreement(annotators=annotators, pairs=pairs)
