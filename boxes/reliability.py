"""Annotator reliability over a whole project, without the truth: a soft EM over candidate
boxes in the manner of Dawid & Skene (1979), on the clusters `boxes.consensus` makes.

Every cluster of every image is a candidate pedestrian. Each annotator who saw the image
either boxed it or did not. A candidate is real with a prior probability. A real one is
boxed by annotator a with probability 1 - miss_a, independently, given that someone boxed
it (a pedestrian nobody boxed is no candidate). A spurious one (a box around nothing, or a
box drawn so far off that it clusters alone) has one author: one of its voters, chosen in
proportion to how many spurious boxes each starts per image they see; every other
annotator who saw the image joins it with the small chance `COINCIDENCE`. (Modelling a
spurious candidate as boxed by each annotator independently, as Dawid & Skene's
confusion rates do, made the annotator who starts most of them "box every spurious
candidate", so that their not boxing something became proof that it was real; on a panel
of average, hasty and trigger-happy annotators the weighted consensus fell to F1 0.74
against the plain majority's 0.99.) The EM alternates:

- E: each candidate's posterior of being real, from the prior and every annotator who saw
  its image (boxed it or not);
- M: each annotator's miss rate (each candidate counting for the pedestrians nobody boxed
  that it stands for), start rate and the prior from those posteriors, with pseudo-counts
  so that no rate is 0 or 1. An annotator's rates are never scored against a consensus
  holding their own vote: the posterior weighs everyone.

It stops when the log-likelihood changes by less than `tolerance` (relative), or after
`max_iterations`. It starts from the plain majority and from each annotator's view
(their boxes taken as the truth), and keeps the start with the highest log-likelihood,
so that a panel of three is not copied from whoever it started from. Images with gold
boxes anchor it: there a candidate's truth is observed (matched to a gold box or not), a
gold box no annotator drew is a candidate everyone who saw the image missed, and those
posteriors are fixed. Fixing thirty images' posteriors barely moves rates that four
hundred others decide, so gold also corrects the rates people read, as prediction-powered
inference does (Angelopoulos et al., Science 2023): the EM is fitted once more with gold
forgotten, and each annotator's rates are that fit's over all their images plus the gap,
on their gold images, between their rates measured against the gold boxes (matched one to
one at the threshold) and that fit's there. Where the EM misjudges someone (the boxes a
poor annotator drew on pedestrians two others both skip, taken for spurious, say) the gap
is the misjudgement, measured; where it does not, the gap is the gold images' own sampling
noise (with thirty images a few hundredths: on the simulated panels of bench/consensus.py
the largest rate error rose on some, from 0.058 to 0.074 at worst, and fell on others).
The intervals resample the gold images with the rest, so they carry that noise. Gold
ignore regions are not gold boxes: a box drawn on one counts as a false positive here.

Whether the per-annotator model is worth using: it is compared with one miss rate and
one start rate shared by everyone (under which the vote count decides, as the plain
majority does) by BIC, -2 log-likelihood + the number of parameters x log(candidates).
When the per-annotator model does not have the lower BIC, `used` is False and
`consolidate` keeps the plain strict majority; `reason` says why, and the rates are then
each annotator's against that majority. When it is used, `consolidate` keeps a cluster
whose posterior passes `keep_above`: the cut that maximises the expected F1 of the kept
candidates under the posteriors (a little under one half: a box kept is judged against
the truth by F1, not by accuracy). Intervals: `bootstrap` resamples of the images
(seeded), each fitted again from the estimate, give 95% percentile intervals of every
annotator's rates.

Deterministic: annotators are ordered by repr, images in their given order.
"""

import functools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from boxes.consensus import consolidate_image
from boxes.estimates import AnnotatorReliability, Reliability
from boxes.geometry import as_boxes, iou_matrix_unchecked
from boxes.matching import match, match_by_score

# A box votes for a candidate at this share of the IoU threshold with its fused box: the
# fused box is itself an estimate of where the pedestrian is, and a box matched to an
# estimate at the truth's threshold is matched less often than to the truth (on simulated
# panels a sloppy annotator's rates came out 0.05 above those measured against the truth).
VOTE_SHARE = 0.95
# The chance that an annotator who saw an image boxes a spurious candidate someone else
# started. Simulated panels measure 0.003 to 0.014; estimated with the rest it trades off
# against the prior and the other rates, and with three annotators the model is no longer
# identifiable (every fit had the same likelihood), so it is held, small.
COINCIDENCE = 0.001


@dataclass
class _Candidates:
    """Every candidate of a project, a row each; columns are annotators."""

    votes: np.ndarray  # R x A float: 1 where the annotator boxed the candidate
    seen: np.ndarray  # R x A float: 1 where the annotator saw its image
    image: np.ndarray  # R: index of the image
    fixed: np.ndarray  # R: 1 or 0 where gold says, nan elsewhere
    noise: np.ndarray  # R x A: 1 - IoU of the annotator's box with the candidate's fused box

    @functools.cached_property
    def counts(self) -> "_Counts":
        """The arrays every EM step reads: made once, not once per fit and resample."""
        return _Counts.of(self)


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

    best, fits, oriented = _best_fit(candidates, weights, max_iterations=max_iterations, tolerance=tolerance)
    plain = _fit(candidates, weights, _starts(candidates)[0], pooled=True, max_iterations=max_iterations,
                 tolerance=tolerance)  # fmt: skip
    count = float(len(weights))
    bic_weighted = -2 * best["log_likelihood"] + 2 * len(annotators) * np.log(count)
    bic_plain = -2 * plain["log_likelihood"] + 2 * np.log(count)
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
    figures = _figures(candidates, weights, read, best["sens"] if used else None)
    anchor = _Anchor.of(images, annotators, gold, candidates, iou_threshold, used, best) if gold else None
    if anchor is not None:
        figures |= anchor.rates(np.ones(len(images)), max_iterations=max_iterations, tolerance=tolerance)
    intervals = None
    if bootstrap:
        intervals = _bootstrap(candidates, read, bootstrap, seed, len(images), max_iterations, refit=used,
                               anchor=anchor)  # fmt: skip
    spurious = (1.0 - read) * weights
    alarm = (spurious @ (candidates.seen * candidates.votes) + 1.0) / (spurious @ candidates.seen + 2.0)
    rates = {
        annotator: AnnotatorReliability(
            false_positive_rate=float(figures["false_positive_rate"][i]),
            miss_rate=float(figures["miss_rate"][i]),
            boundary_noise=float(figures["boundary_noise"][i]),
            images=seen_images[i],
            false_alarm_rate=float(alarm[i]),
            spurious_per_image=float(best["start"][i]),
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
        keep_above=_f1_cut(best["posterior"][~known]) if used else 0.0,
        coincidence=COINCIDENCE,
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


def _best_fit(candidates: _Candidates, weights, *, max_iterations: int, tolerance: float):
    """The EM from every start; the fit with the highest log-likelihood among those that
    name the right class "real". Returns (best, every fit, the oriented ones)."""
    fits = [_fit(candidates, weights, start, pooled=False, max_iterations=max_iterations, tolerance=tolerance)
            for start in _starts(candidates)]  # fmt: skip
    # a fit that calls the candidates most of their annotators boxed spurious has named the
    # wrong class "real" (the labels of an EM can swap); a poor annotator's box may well be
    # evidence against, so that alone says nothing
    agreed = candidates.votes.sum(axis=1) > candidates.seen.sum(axis=1) / 2
    oriented = [fit for fit in fits if not agreed.any() or fit["posterior"][agreed].mean() > 0.5]
    best = max(oriented or fits, key=lambda fit: fit["log_likelihood"])  # the first of equals: starts are ordered
    return best, fits, oriented


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
    apart for complete linkage). The candidates, strongest first, take each annotator's
    boxes as detections take the truth (the box with the highest IoU, at `VOTE_SHARE` of
    the threshold): taking it is the annotator's vote. A box taken by none is a candidate
    of its own; a candidate none of whose boxes it took (a split-off part whose members all
    voted for the stronger part) is dropped. Gold boxes are taken the same way, at the
    threshold itself."""
    position = {annotator: i for i, annotator in enumerate(annotators)}
    width = len(annotators)
    votes, seen, image_of, fixed, noise = [], [], [], [], []
    for index, image in enumerate(images):
        if not image:
            continue
        work = consolidate_image(image, iou_threshold=iou_threshold)
        local = np.array([position[a] for a in work.consensus.annotators], dtype=int)
        fused = _distinct(work, iou_threshold)
        ranked = np.column_stack([fused, -np.arange(len(fused), dtype=float)])  # strongest first
        rows: list[np.ndarray] = [fused]
        vote_cells: list[tuple[int, int, float]] = []  # (row, annotator column, 1 - IoU)
        for slot, column in enumerate(local):
            drawn = work.boxes[work.owner == slot]
            if not len(drawn):
                continue
            # the strongest candidates take their boxes first, as detections take the truth
            taken = match_by_score(drawn, ranked, iou_threshold=iou_threshold * VOTE_SHARE)
            chosen = taken.matched >= 0
            rows_of, boxes_of = taken.order[chosen], taken.matched[chosen]
            ious = iou_matrix_unchecked(drawn[boxes_of], fused[rows_of]).diagonal() if len(rows_of) else []
            vote_cells += [(int(r), column, 1.0 - float(iou)) for r, iou in zip(rows_of, ious, strict=True)]
            unmatched = np.setdiff1d(np.arange(len(drawn)), boxes_of)
            start = sum(len(r) for r in rows)
            rows.append(drawn[unmatched])
            vote_cells += [(start + i, column, 0.0) for i in range(len(unmatched))]
        # a candidate whose every member's box was taken by a stronger one is no candidate
        voted = np.zeros(sum(len(r) for r in rows), dtype=bool)
        for row, _, _ in vote_cells:
            voted[row] = True
        renumber = np.cumsum(voted) - 1
        vote_cells = [(int(renumber[row]), column, gap) for row, column, gap in vote_cells]
        candidates = np.concatenate(rows)[voted]
        count = len(candidates)
        truth = np.full(count, np.nan)
        extra = 0
        if index in gold:
            golden = as_boxes(gold[index])
            # candidates in strength order take the gold boxes (fused ones before lone boxes)
            taken = match_by_score(golden, np.column_stack([candidates, -np.arange(count, dtype=float)]),
                                   iou_threshold=iou_threshold)  # fmt: skip
            truth[:] = 0.0
            truth[taken.order[taken.matched >= 0]] = 1.0
            extra = len(golden) - int((taken.matched >= 0).sum())  # gold boxes nobody drew: all who saw it missed them
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
    """EM from an initial posterior: the M step first, then E and M until converged (the
    log-likelihood changes by less than `tolerance`, relative), then one last M and E step.
    `pooled`: one miss rate and one start rate for everyone (the plain majority's model)."""
    known = ~np.isnan(candidates.fixed)
    posterior = np.where(known, candidates.fixed, posterior)
    counts = candidates.counts
    start = np.ones(counts.boxed.shape[1])
    sens = np.full(counts.boxed.shape[1], 0.5)
    previous = -np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported)
        sens, start, prior = _maximise(counts, weights, posterior, start, sens, candidates.fixed, pooled)
        posterior, log_likelihood = _expect(counts, weights, sens, start, prior, known, candidates.fixed)
        if abs(log_likelihood - previous) <= tolerance * max(1.0, abs(log_likelihood)):
            converged = True
            break
        previous = log_likelihood
    sens, start, prior = _maximise(counts, weights, posterior, start, sens, candidates.fixed, pooled)
    posterior, log_likelihood = _expect(counts, weights, sens, start, prior, known, candidates.fixed)
    return {
        "sens": sens,
        "start": start,
        "prior": prior,
        "posterior": posterior,
        "log_likelihood": float(log_likelihood),
        "iterations": iterations,
        "converged": converged,
    }


@dataclass
class _Counts:
    """The arrays every EM step reads, computed once per fit."""

    boxed: np.ndarray  # R x A: 1 where the annotator saw the image and boxed the candidate
    passed: np.ndarray  # R x A: 1 where they saw it and did not
    seen: np.ndarray
    voters: np.ndarray  # R: annotators who boxed it
    viewers: np.ndarray  # R: annotators who saw its image
    first: np.ndarray  # the first row of each image (an image's viewers are its rows' viewers)

    @classmethod
    def of(cls, candidates: _Candidates) -> "_Counts":
        boxed = candidates.seen * candidates.votes
        _, first = np.unique(candidates.image, return_index=True)
        return cls(
            boxed=boxed,
            passed=candidates.seen - boxed,
            seen=candidates.seen,
            voters=boxed.sum(axis=1),
            viewers=candidates.seen.sum(axis=1),
            first=first,
        )


def _stands_for(counts: _Counts, sens, fixed) -> np.ndarray:
    """How many real pedestrians each candidate stands for: 1 / (1 - P(all who saw it
    miss)), since those nobody boxed are no candidates (on gold images they are rows of
    their own, so a gold row stands for itself)."""
    nobody = np.exp(counts.seen @ np.log1p(-sens))
    return np.where(np.isnan(fixed) & (counts.voters > 0), 1.0 / np.maximum(1.0 - nobody, 1e-9), 1.0)


def _maximise(counts: _Counts, weights, posterior, start, sens, fixed, pooled: bool):
    """Each annotator's chance of boxing a real pedestrian (each candidate counting for
    the pedestrians it stands for under the current `sens`); the spurious candidates they
    start per image they saw (each spurious one shared among its voters in proportion to
    their current rates: who started it is not observed); the prior. One pseudo-count
    each way (half a spurious candidate for the start rates) so no rate is 0 or 1."""
    real = posterior * weights
    spurious = (1.0 - posterior) * weights
    hits, chances = real @ counts.boxed, (real * _stands_for(counts, sens, fixed)) @ counts.seen
    if pooled:
        hits, chances = np.full_like(hits, hits.sum()), np.full_like(chances, chances.sum())
    sens = (hits + 1.0) / (chances + 2.0)
    if pooled:
        start = np.ones_like(start)
    else:
        share = counts.boxed * start / np.maximum(counts.boxed @ start, 1e-300)[:, None]
        exposure = weights[counts.first] @ counts.seen[counts.first]
        start = (spurious @ share + 0.5) / (exposure + 1.0)
    prior = (real.sum() + 1.0) / (weights.sum() + 2.0)
    return sens, start, prior


def _expect(counts: _Counts, weights, sens, start, prior, known, fixed):
    """Each candidate's posterior of being real, and the log-likelihood of every
    candidate's votes given that it was boxed at all. Real: each annotator who saw the
    image boxes it with their own chance, given that someone did (a pedestrian nobody
    boxed is no candidate). Spurious: one of its voters started it, chosen in proportion
    to how many each starts per image, and each other annotator who saw the image joined
    it with the chance `COINCIDENCE`."""
    nobody = counts.seen @ np.log1p(-sens)
    some = np.where(counts.voters > 0, np.log(-np.expm1(np.minimum(nobody, -1e-12))), 0.0)
    real = np.log(prior) + counts.boxed @ np.log(sens) + counts.passed @ np.log1p(-sens) - some
    with np.errstate(divide="ignore"):
        started = np.log(counts.boxed @ start) - np.log(counts.seen @ start)
    spurious = np.where(
        counts.voters > 0,
        np.log1p(-prior)
        + started
        + (counts.voters - 1) * np.log(COINCIDENCE)
        + (counts.viewers - counts.voters) * np.log1p(-COINCIDENCE),
        -np.inf,
    )
    posterior = 1.0 / (1.0 + np.exp(np.clip(spurious - real, -700, 700)))
    per_row = np.where(known, np.where(fixed == 1.0, real, spurious), np.logaddexp(real, spurious))
    posterior = np.where(known, fixed, posterior)
    per_row = np.where(np.isfinite(per_row), per_row, 0.0)  # a gold box nobody drew: certain, given gold
    return posterior, float(weights @ per_row)


def _figures(candidates: _Candidates, weights, posterior, sens=None) -> dict:
    """The rates people read: share of an annotator's boxes that are not real, share of
    the real pedestrians on their images that they missed (with `sens`, the fit's, counting
    those nobody boxed as the fit does), boundary noise on the real ones."""
    boxed = candidates.seen * candidates.votes
    real = posterior * weights
    drawn = weights @ boxed
    false = ((1.0 - posterior) * weights) @ boxed
    chances = (real * (1.0 if sens is None else _stands_for(candidates.counts, sens, candidates.fixed))) @ (
        candidates.seen
    )
    hits = real @ boxed
    noise = real @ (candidates.noise * boxed)
    return {
        "false_positive_rate": (false + 1.0) / (drawn + 2.0),
        "miss_rate": (chances - hits + 1.0) / (chances + 2.0),
        "boundary_noise": np.where(hits > 0, noise / np.maximum(hits, 1e-12), 1.0),
    }


def _bootstrap(candidates: _Candidates, posterior, resamples: int, seed: int, image_count: int, max_iterations,
               *, refit: bool, anchor: "_Anchor | None" = None):  # fmt: skip
    """95% percentile intervals of each annotator's rates over resamples of the images,
    each fitted again from `posterior` (`refit`), or read with it as it is; with an
    `anchor`, its gold-corrected rates."""
    rng = np.random.default_rng(seed)
    fp, miss = [], []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, image_count, image_count), minlength=image_count)
        weights = counts[candidates.image].astype(float)
        if anchor is not None:
            figures = anchor.rates(counts.astype(float), max_iterations=min(max_iterations, 100), tolerance=1e-7)
        elif refit:
            fit = _fit(candidates, weights, posterior, pooled=False, max_iterations=min(max_iterations, 100),
                       tolerance=1e-7)  # fmt: skip
            figures = _figures(candidates, weights, fit["posterior"], fit["sens"])
        else:
            figures = _figures(candidates, weights, posterior)
        fp.append(figures["false_positive_rate"])
        miss.append(figures["miss_rate"])
    return {
        "false_positive_rate": (np.percentile(fp, 2.5, axis=0), np.percentile(fp, 97.5, axis=0)),
        "miss_rate": (np.percentile(miss, 2.5, axis=0), np.percentile(miss, 97.5, axis=0)),
    }


def _f1_cut(posterior) -> float:
    """The log-odds cut that maximises the expected F1 of the kept candidates against the
    truth under the posteriors (kept: those above it; E[F1] ~ 2 sum kept p / (kept + sum p))."""
    if not len(posterior):
        return 0.0
    p = np.sort(np.clip(posterior, 1e-12, 1 - 1e-12))[::-1]
    f1 = 2 * np.cumsum(p) / (np.arange(1, len(p) + 1) + p.sum())
    k = int(np.argmax(f1))
    cut = (p[k] + p[k + 1]) / 2 if k + 1 < len(p) else p[k] / 2
    return float(np.log(cut / (1 - cut)))


@dataclass
class _Anchor:
    """What gold corrects the rates with: the candidates with gold forgotten (`free`, the
    rows of the full candidates that someone boxed: `rows`), which images are gold, and
    each annotator's boxes on each gold image matched against the gold boxes."""

    free: _Candidates
    rows: np.ndarray
    golden: np.ndarray  # image count: 1 where the image has gold boxes
    matched: np.ndarray  # image count x A: their boxes matched one to one to a gold box
    drawn: np.ndarray  # image count x A: their boxes (gold images they saw)
    real: np.ndarray  # image count x A: gold boxes (gold images they saw)
    anchored: np.ndarray  # A: True where the annotator saw a gold image
    refit: bool  # the free fit is the EM from `start`; else `start` is read as it is (the plain majority)
    start: np.ndarray  # the free fit's initial posterior, a row per free candidate

    @classmethod
    def of(cls, images, annotators, gold, candidates: _Candidates, iou_threshold: float, used: bool, best: dict):
        """`used`: whether the weighted model is; `best`, its fit (the free fit starts from it)."""
        rows = np.flatnonzero(candidates.votes.sum(axis=1) > 0)
        free = _Candidates(
            votes=candidates.votes[rows],
            seen=candidates.seen[rows],
            image=candidates.image[rows],
            fixed=np.full(len(rows), np.nan),
            noise=candidates.noise[rows],
        )
        count, width = len(images), len(annotators)
        golden = np.zeros(count)
        matched, drawn, real = np.zeros((count, width)), np.zeros((count, width)), np.zeros((count, width))
        for index, truth in gold.items():
            if index >= count:
                continue
            golden[index] = 1.0
            truth = as_boxes(truth)
            for column, annotator in enumerate(annotators):
                if annotator in images[index]:
                    boxes = as_boxes(images[index][annotator])
                    matched[index, column] = match(boxes, truth, iou_threshold=iou_threshold).count
                    drawn[index, column] = len(boxes)
                    real[index, column] = len(truth)
        start = best["posterior"][rows] if used else _starts(free)[0]
        anchored = (drawn + real).sum(axis=0) > 0
        return cls(free, rows, golden, matched, drawn, real, anchored, used, start)

    def rates(self, image_weights, *, max_iterations: int, tolerance: float) -> dict:
        """The false-positive and miss rates with the images weighted (a bootstrap's counts,
        or ones): the free fit's over everything, plus the gap on gold between the rates
        measured against the gold boxes and the free fit's there."""
        weights = image_weights[self.free.image]
        if self.refit:
            fit = _fit(self.free, weights, self.start, pooled=False, max_iterations=max_iterations, tolerance=tolerance)
            posterior, sens = fit["posterior"], fit["sens"]
        else:
            posterior, sens = self.start, None
        everywhere = _figures(self.free, weights, posterior, sens)
        on_gold = _figures(self.free, weights * self.golden[self.free.image], posterior, sens)
        gold_weights = image_weights * self.golden
        matched, drawn, real = gold_weights @ self.matched, gold_weights @ self.drawn, gold_weights @ self.real
        measured = {
            "false_positive_rate": (drawn - matched + 1.0) / (drawn + 2.0),
            "miss_rate": (real - matched + 1.0) / (real + 2.0),
        }
        return {
            name: np.where(
                self.anchored, np.clip(everywhere[name] + measured[name] - on_gold[name], 1e-3, 1 - 1e-3),
                everywhere[name],
            )
            for name in measured
        }  # fmt: skip
