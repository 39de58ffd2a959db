"""Annotator reliability over a whole project, without the truth: a soft EM over candidate
boxes in the manner of Dawid & Skene (1979), on the clusters `boxes.consensus` makes.

Every cluster of every image is a candidate pedestrian. Each annotator who saw the image
either boxed it or did not. A candidate is real with a prior probability; a real one is
boxed by annotator a with probability 1 - miss_a, a spurious one (a box around nothing,
or a box drawn so far off that it clusters alone) with probability alarm_a. Annotators
are independent given the truth of the candidate. The EM alternates:

- E: each candidate's posterior of being real, from the prior and every annotator who saw
  its image (boxed it or not);
- M: each annotator's rates and the prior from those posteriors, with one pseudo-count
  each way (a Beta(1, 1) prior) so no rate is 0 or 1. An annotator's rates are never
  scored against a consensus holding their own vote: the posterior weighs everyone.

It stops when the log-likelihood gains less than `tolerance` (relative), or after
`max_iterations`. It starts from the plain majority and from each annotator's view
(their boxes taken as the truth), and keeps the start with the highest log-likelihood,
so that a panel of three is not copied from whoever it started from. Images with gold
boxes anchor it: there a candidate's truth is observed (matched to a gold box or not), a
gold box no annotator drew is a candidate everyone who saw the image missed, and those
posteriors are fixed.

Whether the per-annotator model is worth using: it is compared with one rate pair shared
by everyone (under which the plain majority is the rule) by BIC, -2 log-likelihood + the
number of parameters x log(candidates). When the per-annotator model does not have the
lower BIC, `used` is False and `consolidate` keeps the plain strict majority; `reason`
says why, and the rates are then each annotator's against that majority. Intervals:
`bootstrap` resamples of the images (seeded), each fitted again from the estimate, give
95% percentile intervals of every annotator's rates.

Deterministic: annotators are ordered by repr, images in their given order.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from boxes.geometry import as_boxes, iou_matrix_unchecked


@dataclass(frozen=True)
class AnnotatorReliability:
    """One annotator's rates over a project."""

    false_positive_rate: float  # share of their boxes that are not real pedestrians
    miss_rate: float  # share of the real pedestrians, on images they saw, that they did not box
    boundary_noise: float  # mean 1 - IoU of their boxes with the fused boxes of the real ones
    images: int
    false_alarm_rate: float | None = None  # chance they box a spurious candidate (the model's rate)
    gold_images: int = 0  # images with gold boxes among theirs: rates there are observed
    intervals: dict | None = None  # rate name -> [low, high], 95% over bootstrap resamples of images

    @property
    def _alarm(self) -> float:
        return self.false_alarm_rate if self.false_alarm_rate is not None else self.false_positive_rate

    @property
    def evidence_for(self) -> float:
        """Log-likelihood ratio a box of theirs adds for "a pedestrian is here"."""
        return float(np.log((1 - self.miss_rate) / self._alarm))

    @property
    def evidence_against(self) -> float:
        """Log-likelihood ratio their not boxing anything there adds (negative)."""
        return float(np.log(self.miss_rate / (1 - self._alarm)))


@dataclass(frozen=True)
class Reliability:
    """Per-annotator rates from `estimate_reliability`; `consolidate(weights=...)` takes it."""

    annotators: dict[Hashable, AnnotatorReliability]
    iterations: int
    converged: bool
    prior: float = 0.5  # chance that a candidate cluster is a real pedestrian
    log_likelihood: float | None = None
    used: bool = True  # False: the per-annotator model did not fit better; consolidate by plain majority
    reason: str = ""
    criterion: dict = field(default_factory=dict)  # bic_weighted, bic_plain, candidates, starts

    @property
    def prior_evidence(self) -> float:
        """Log prior odds of a candidate being real."""
        return float(np.log(self.prior / (1 - self.prior)))

    def ranking(self) -> list[Hashable]:
        """Annotators from the most to the least reliable (by the evidence a box of theirs carries)."""
        return sorted(self.annotators, key=lambda a: (-self.annotators[a].evidence_for, repr(a)))


@dataclass
class _Candidates:
    """Every candidate of a project, a row each; columns are annotators."""

    votes: np.ndarray  # R x A float: 1 where the annotator boxed the candidate
    seen: np.ndarray  # R x A float: 1 where the annotator saw its image
    image: np.ndarray  # R: index of the image
    fixed: np.ndarray  # R: 1 or 0 where gold says, nan elsewhere
    noise: np.ndarray  # R x A: 1 - IoU of the annotator's box with the candidate's fused box


def estimate_reliability(
    images: Sequence[Mapping[Hashable, np.ndarray]],
    *,
    iou_threshold: float = 0.5,
    gold: Mapping[int, np.ndarray] | None = None,
    max_iterations: int = 500,
    tolerance: float = 1e-9,
    bootstrap: int = 200,
    seed: int = 0,
) -> Reliability:
    """Each annotator's false-positive rate, miss rate and boundary noise over `images`
    (one mapping annotator -> n x 4 boxes per image; an annotator absent from an image did
    not see it). `gold`: image index -> its gold boxes, observed truth for those images."""
    annotators = sorted({a for image in images for a in image}, key=repr)
    if not annotators:
        return Reliability(annotators={}, iterations=0, converged=True, used=False, reason="no annotations")
    candidates = _candidates(images, annotators, iou_threshold, gold or {})
    weights = np.ones(len(candidates.votes))
    seen_images = _per_annotator_images(images, annotators)
    gold_images = _per_annotator_images([images[i] for i in (gold or {}) if i < len(images)], annotators)
    if len(candidates.votes) == 0:
        rates = {
            a: AnnotatorReliability(
                false_positive_rate=0.5, miss_rate=0.5, boundary_noise=1.0, images=seen_images[i],
                false_alarm_rate=0.5, gold_images=gold_images[i],
            )
            for i, a in enumerate(annotators)
        }  # fmt: skip
        return Reliability(annotators=rates, iterations=0, converged=True, used=False, reason="no boxes")

    fits = [_fit(candidates, weights, start, pooled=False, max_iterations=max_iterations, tolerance=tolerance)
            for start in _starts(candidates)]  # fmt: skip
    # a fit that calls the candidates most of their annotators boxed spurious has named the
    # wrong class "real" (the labels of an EM can swap); a poor annotator's box may well be
    # evidence against, so that alone says nothing
    agreed = candidates.votes.sum(axis=1) > candidates.seen.sum(axis=1) / 2
    oriented = [fit for fit in fits if not agreed.any() or fit["posterior"][agreed].mean() > 0.5]
    best = max(oriented or fits, key=lambda fit: fit["log_likelihood"])  # the first of equals: starts are ordered
    plain = _fit(candidates, weights, _starts(candidates)[0], pooled=True, max_iterations=max_iterations,
                 tolerance=tolerance)  # fmt: skip
    count = float(weights.sum())
    bic_weighted = -2 * best["log_likelihood"] + (2 * len(annotators) + 1) * np.log(count)
    bic_plain = -2 * plain["log_likelihood"] + 3 * np.log(count)
    if len(annotators) < 2:
        used, reason = False, "one annotator: nothing to weigh"
    elif not oriented:
        used, reason = (
            False,
            ("every fit calls what most annotators boxed spurious: the plain majority is kept"),
        )
    elif bic_weighted < bic_plain:
        used, reason = (
            True,
            (f"each annotator's own rates fit better than one shared pair (BIC {bic_weighted:.1f} < {bic_plain:.1f})"),
        )
    else:
        used, reason = (
            False,
            (
                f"the annotators' rates do not differ enough to beat one shared pair (BIC {bic_weighted:.1f} "
                f">= {bic_plain:.1f}): the plain majority is kept"
            ),
        )

    # the rates people read: from the fit when it weighs the consensus, else against the plain
    # majority that makes it (a fit that is not used may be degenerate: one annotator "perfect")
    known = ~np.isnan(candidates.fixed)
    read = best["posterior"] if used else np.where(known, candidates.fixed, _starts(candidates)[0])
    figures = _figures(candidates, weights, read)
    intervals = (
        _bootstrap(candidates, read, bootstrap, seed, len(images), max_iterations, refit=used) if bootstrap else None
    )
    rates = {
        annotator: AnnotatorReliability(
            false_positive_rate=float(figures["false_positive_rate"][i]),
            miss_rate=float(figures["miss_rate"][i]),
            boundary_noise=float(figures["boundary_noise"][i]),
            images=seen_images[i],
            false_alarm_rate=float(best["alarm"][i]),
            gold_images=gold_images[i],
            intervals=(
                {name: [float(low[i]), float(high[i])] for name, (low, high) in intervals.items()}
                if intervals
                else None
            ),
        )
        for i, annotator in enumerate(annotators)
    }
    return Reliability(
        annotators=rates,
        iterations=best["iterations"],
        converged=best["converged"],
        prior=float(best["prior"]),
        log_likelihood=float(best["log_likelihood"]),
        used=used,
        reason=reason,
        criterion={
            "bic_weighted": round(float(bic_weighted), 3),
            "bic_plain": round(float(bic_plain), 3),
            "candidates": int(count),
            "starts": len(fits),
            "log_likelihood_plain": round(float(plain["log_likelihood"]), 3),
        },
    )


def _per_annotator_images(images: Sequence[Mapping], annotators: list) -> list[int]:
    position = {a: i for i, a in enumerate(annotators)}
    counts = [0] * len(annotators)
    for image in images:
        for annotator in image:
            counts[position[annotator]] += 1
    return counts


def _candidates(images, annotators, iou_threshold, gold) -> _Candidates:
    """Every image's candidates as rows. The candidates are the clusters `consolidate`
    makes, less the split-off duplicates (a cluster whose fused box overlaps a stronger
    one's at the threshold with no annotator in common: one pedestrian boxed too far
    apart for complete linkage). An annotator votes for a candidate when one of their
    boxes matches its fused box one to one at the threshold, as a box is matched to the
    truth; a box that matches none is a candidate of its own."""
    from boxes.consensus import consolidate_image
    from boxes.matching import match_iou

    position = {annotator: i for i, annotator in enumerate(annotators)}
    width = len(annotators)
    votes, seen, image_of, fixed, noise = [], [], [], [], []
    for index, image in enumerate(images):
        if not image:
            continue
        work = consolidate_image(image, iou_threshold=iou_threshold)
        local = np.array([position[a] for a in work.consensus.annotators], dtype=int)
        fused = _distinct(work, iou_threshold)
        rows: list[np.ndarray] = [fused]
        vote_cells: list[tuple[int, int, float]] = []  # (row, annotator column, 1 - IoU)
        for slot, column in enumerate(local):
            drawn = work.boxes[work.owner == slot]
            if not len(drawn):
                continue
            matched = match_iou(iou_matrix_unchecked(drawn, fused), iou_threshold=iou_threshold)
            vote_cells += [
                (int(b), column, 1.0 - float(iou)) for (_, b), iou in zip(matched.pairs, matched.ious, strict=True)
            ]
            start = sum(len(r) for r in rows)
            rows.append(drawn[matched.unmatched_a])
            vote_cells += [(start + i, column, 0.0) for i in range(len(matched.unmatched_a))]
        candidates = np.concatenate(rows)
        count = len(candidates)
        truth = np.full(count, np.nan)
        extra = 0
        if index in gold:
            golden = as_boxes(gold[index])
            matched = match_iou(iou_matrix_unchecked(candidates, golden), iou_threshold=iou_threshold)
            truth[:] = 0.0
            truth[matched.pairs[:, 0]] = 1.0
            extra = len(matched.unmatched_b)  # gold boxes nobody drew: everyone who saw it missed them
        vote = np.zeros((count + extra, width))
        gap = np.zeros((count + extra, width))
        if vote_cells:
            cells = np.array(vote_cells)
            row, column = cells[:, 0].astype(int), cells[:, 1].astype(int)
            vote[row, column] = 1.0
            gap[row, column] = cells[:, 2]
        saw = np.zeros((count + extra, width))
        saw[:, local] = 1.0
        votes.append(vote)
        seen.append(saw)
        noise.append(gap)
        image_of.append(np.full(count + extra, index))
        fixed.append(np.concatenate([truth, np.ones(extra)]))
    if not votes:
        empty = np.zeros((0, width))
        return _Candidates(empty, empty, np.zeros(0, dtype=int), np.zeros(0), empty)
    return _Candidates(
        votes=np.concatenate(votes),
        seen=np.concatenate(seen),
        image=np.concatenate(image_of),
        fixed=np.concatenate(fixed),
        noise=np.concatenate(noise),
    )


def _distinct(work, iou_threshold: float) -> np.ndarray:
    """The fused boxes of an image's clusters, strongest first, less those that duplicate a
    stronger one (overlap at the threshold, no annotator in common)."""
    clusters = work.consensus.clusters
    if not clusters:
        return np.zeros((0, 4))
    fused = np.array([c.box for c in clusters], dtype=float)
    who = [frozenset(a for a, _ in c.members) for c in clusters]
    order = sorted(range(len(clusters)), key=lambda k: (-clusters[k].support, tuple(fused[k])))
    overlap = iou_matrix_unchecked(fused, fused) >= iou_threshold
    accepted: list[int] = []
    for k in order:
        if not any(overlap[k, i] and not (who[k] & who[i]) for i in accepted):
            accepted.append(k)
    return fused[accepted]


def _starts(candidates: _Candidates) -> list[np.ndarray]:
    """Initial posteriors: the plain strict majority, then each annotator's view (their
    boxes are the truth on the images they saw; the majority elsewhere)."""
    boxed = candidates.votes.sum(axis=1)
    saw = candidates.seen.sum(axis=1)
    majority = (boxed > saw / 2).astype(float)
    starts = [majority]
    for column in range(candidates.votes.shape[1]):
        starts.append(np.where(candidates.seen[:, column] > 0, candidates.votes[:, column], majority))
    return starts


def _fit(candidates: _Candidates, weights, posterior, *, pooled: bool, max_iterations: int, tolerance: float) -> dict:
    """EM from an initial posterior: the M step first, then E and M until converged."""
    known = ~np.isnan(candidates.fixed)
    posterior = np.where(known, candidates.fixed, posterior)
    previous = -np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported)
        sens, alarm, prior = _maximise(candidates, weights, posterior, pooled)
        posterior, log_likelihood = _expect(candidates, weights, sens, alarm, prior, known)
        if log_likelihood - previous <= tolerance * max(1.0, abs(log_likelihood)):
            converged = True
            break
        previous = log_likelihood
    sens, alarm, prior = _maximise(candidates, weights, posterior, pooled)
    posterior, log_likelihood = _expect(candidates, weights, sens, alarm, prior, known)
    return {
        "sens": sens,
        "alarm": alarm,
        "prior": prior,
        "posterior": posterior,
        "log_likelihood": float(log_likelihood),
        "iterations": iterations,
        "converged": converged,
    }


def _maximise(candidates: _Candidates, weights, posterior, pooled: bool):
    real = posterior * weights
    spurious = (1.0 - posterior) * weights
    seen, boxed = candidates.seen, candidates.seen * candidates.votes
    hits, chances = real @ boxed, real @ seen
    alarms, openings = spurious @ boxed, spurious @ seen
    if pooled:
        hits, chances = np.full_like(hits, hits.sum()), np.full_like(chances, chances.sum())
        alarms, openings = np.full_like(alarms, alarms.sum()), np.full_like(openings, openings.sum())
    sens = (hits + 1.0) / (chances + 2.0)
    alarm = (alarms + 1.0) / (openings + 2.0)
    prior = (real.sum() + 1.0) / (weights.sum() + 2.0)
    return sens, alarm, prior


def _expect(candidates: _Candidates, weights, sens, alarm, prior, known):
    boxed = candidates.seen * candidates.votes
    passed = candidates.seen - boxed
    real = np.log(prior) + boxed @ np.log(sens) + passed @ np.log1p(-sens)
    spurious = np.log1p(-prior) + boxed @ np.log(alarm) + passed @ np.log1p(-alarm)
    posterior = 1.0 / (1.0 + np.exp(np.clip(spurious - real, -700, 700)))
    per_row = np.logaddexp(real, spurious)
    observed = np.where(candidates.fixed == 1.0, real, spurious)
    per_row = np.where(known, observed, per_row)
    posterior = np.where(known, candidates.fixed, posterior)
    return posterior, float(weights @ per_row)


def _figures(candidates: _Candidates, weights, posterior) -> dict:
    """The rates people read: share of an annotator's boxes that are not real, share of
    the real candidates on their images that they missed, boundary noise on the real ones."""
    boxed = candidates.seen * candidates.votes
    real = posterior * weights
    drawn = weights @ boxed
    false = ((1.0 - posterior) * weights) @ boxed
    chances = real @ candidates.seen
    hits = real @ boxed
    noise = real @ (candidates.noise * boxed)
    return {
        "false_positive_rate": (false + 1.0) / (drawn + 2.0),
        "miss_rate": (chances - hits + 1.0) / (chances + 2.0),
        "boundary_noise": np.where(hits > 0, noise / np.maximum(hits, 1e-12), 1.0),
    }


def _bootstrap(candidates: _Candidates, posterior, resamples: int, seed: int, image_count: int, max_iterations,
               *, refit: bool):  # fmt: skip
    """95% percentile intervals of each annotator's rates over resamples of the images,
    each fitted again from `posterior` (`refit`), or read with it as it is."""
    rng = np.random.default_rng(seed)
    fp, miss = [], []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, image_count, image_count), minlength=image_count)
        weights = counts[candidates.image].astype(float)
        if refit:
            fit = _fit(candidates, weights, posterior, pooled=False, max_iterations=min(max_iterations, 100),
                       tolerance=1e-7)  # fmt: skip
            figures = _figures(candidates, weights, fit["posterior"])
        else:
            figures = _figures(candidates, weights, posterior)
        fp.append(figures["false_positive_rate"])
        miss.append(figures["miss_rate"])
    return {
        "false_positive_rate": (np.percentile(fp, 2.5, axis=0), np.percentile(fp, 97.5, axis=0)),
        "miss_rate": (np.percentile(miss, 2.5, axis=0), np.percentile(miss, 97.5, axis=0)),
    }
