"""What an estimate of the annotators' reliability says: each annotator's rates and the fit.

`boxes.reliability.estimate_reliability` makes a `Reliability`; `boxes.consensus` takes one
as its weights. Kept apart from both so that neither imports the other's module for it.
"""

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AnnotatorReliability:
    """One annotator's rates over a project."""

    false_positive_rate: float  # share of their boxes that are not real pedestrians
    miss_rate: float  # share of the real pedestrians, on images they saw, that they did not box
    boundary_noise: float  # mean 1 - IoU of their boxes with the fused boxes of the real ones
    images: int
    false_alarm_rate: float | None = None  # share of the spurious candidates on their images that they boxed
    gold_images: int = 0  # images with gold boxes among theirs: rates there are observed
    intervals: dict | None = None  # rate name -> [low, high], 95% over bootstrap resamples of images
    spurious_per_image: float | None = None  # boxes around nothing they start, per image (the authored model)

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
    coincidence: float | None = None  # chance one more annotator boxes a spurious candidate (authored model)
    keep_above: float = 0.0  # log posterior odds a cluster must pass to be kept (the expected-F1 cut)

    @property
    def prior_evidence(self) -> float:
        """Log prior odds of a candidate being real."""
        return float(np.log(self.prior / (1 - self.prior)))

    def ranking(self) -> list[Hashable]:
        """Annotators from the most to the least reliable (by the evidence a box of theirs carries)."""
        return sorted(self.annotators, key=lambda a: (-self.annotators[a].evidence_for, repr(a)))
