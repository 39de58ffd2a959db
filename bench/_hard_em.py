"""The reference for bench/consensus.py's reliability table: the hard EM that Quorum used
before the soft one (boxes/reliability.py), kept here verbatim as it was: consolidate every
image with the current rates, score each annotator against that consensus (their own boxes
in it), repeat."""

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from boxes.consensus import consolidate_image
from boxes.estimates import AnnotatorReliability, Reliability
from boxes.geometry import iou_matrix_unchecked


def hard_em_reliability(
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
    from boxes.matching import match_blocks

    annotators = sorted({a for image in images for a in image}, key=repr)
    position = {annotator: i for i, annotator in enumerate(annotators)}
    reliability: Reliability | None = None
    previous = None
    iterations = 0
    converged = False
    for iterations in range(1, max_iterations + 1):
        # per annotator: tp, fp, fn, kept boxes on their images, IoU sum of their matches, images
        counts = np.zeros((len(annotators), 6))
        for image in images:
            work = consolidate_image(image, iou_threshold=iou_threshold, weights=reliability)
            local = np.array([position[a] for a in work.consensus.annotators], dtype=int)
            kept = work.consensus.boxes
            # each annotator's boxes matched one to one to the kept boxes
            tp, iou_sum = match_blocks(
                iou_matrix_unchecked(work.boxes, kept),
                work.owner,
                np.zeros(len(kept), dtype=int),
                groups=(len(local), 1),
                iou_threshold=iou_threshold,
            )
            drawn = np.bincount(work.owner, minlength=len(local))
            counts[local] += np.column_stack(
                [tp[:, 0], drawn - tp[:, 0], len(kept) - tp[:, 0], np.full(len(local), len(kept)), iou_sum[:, 0],
                 np.ones(len(local))]
            )  # fmt: skip
        counts = {annotator: counts[i].tolist() for i, annotator in enumerate(annotators)}
        rates = {}
        for annotator, (tp, fp, fn, kept_total, iou_sum, seen) in counts.items():
            rates[annotator] = AnnotatorReliability(
                false_positive_rate=(fp + 1) / (tp + fp + 2),
                miss_rate=(fn + 1) / (kept_total + 2),
                boundary_noise=1.0 - iou_sum / tp if tp else 1.0,
                images=int(seen),
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
