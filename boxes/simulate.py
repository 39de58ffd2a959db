"""Simulated annotators: one person's boxes for a scene, from a profile of their habits.

Real panels have habits: some draw loose boxes, some tight ones, some shift every box a
little, some miss small or half-hidden pedestrians, some box things that are not there.
`simulate_annotator` turns a scene's true boxes into what an annotator with a given
`HabitProfile` would submit, so that agreement, consensus and the human baseline can be
tested against a known truth. Pure numpy; boxes are N x 4 absolute pixel xyxy.
"""

from dataclasses import dataclass

import numpy as np

from boxes.geometry import as_boxes


@dataclass(frozen=True)
class HabitProfile:
    """How one annotator draws. Lengths are fractions of the true box's height."""

    name: str = "careful"
    jitter: float = 0.02  # standard deviation of each edge
    scale: float = 1.0  # > 1 loose boxes, < 1 tight ones (width and height are multiplied)
    shift: tuple[float, float] = (0.0, 0.0)  # a constant (dx, dy) on every box
    miss_rate: float = 0.0  # chance of missing any pedestrian
    miss_small_below: float = 0.0  # pedestrians shorter than this many pixels...
    miss_small_rate: float = 0.0  # ...are missed with this chance
    miss_occluded_rate: float = 0.0  # chance of missing an occluded pedestrian
    false_positives: float = 0.0  # mean number of boxes around nothing, per image (Poisson)
    seconds_mean: float = 25.0  # time spent on an image
    seconds_sd: float = 8.0


PROFILES = {
    profile.name: profile
    for profile in (
        HabitProfile(),
        HabitProfile(name="loose", jitter=0.03, scale=1.12),
        HabitProfile(name="tight", jitter=0.03, scale=0.9),
        HabitProfile(name="shifted", jitter=0.02, shift=(0.06, 0.04)),
        HabitProfile(name="misses-small", jitter=0.03, miss_small_below=40, miss_small_rate=0.7, seconds_mean=15),
        HabitProfile(name="misses-occluded", jitter=0.03, miss_occluded_rate=0.6),
        HabitProfile(name="trigger-happy", jitter=0.04, false_positives=0.8, seconds_mean=18),
        HabitProfile(name="sloppy", jitter=0.08, miss_rate=0.1, false_positives=0.3, seconds_mean=10, seconds_sd=3),
        # deliberately poor: what the reliability estimate and gold tasks must catch
        HabitProfile(name="poor", jitter=0.12, miss_rate=0.45, false_positives=1.5, seconds_mean=5, seconds_sd=2),
        HabitProfile(name="average", jitter=0.04, miss_rate=0.05, false_positives=0.2, seconds_mean=20),
        # fast and thin: a third of the pedestrians left out, hardly a box around nothing
        HabitProfile(name="hasty", jitter=0.05, miss_rate=0.35, seconds_mean=8, seconds_sd=3),
    )
}


@dataclass(frozen=True)
class SimulatedAnnotation:
    boxes: np.ndarray  # K x 4 xyxy pixels, inside the image
    source: np.ndarray  # K: index of the true box each came from, -1 for a false positive
    seconds: float  # time the annotator spent on the image


def simulate_annotator(
    true_boxes: np.ndarray,
    *,
    profile: HabitProfile,
    rng: np.random.Generator,
    width: float,
    height: float,
    occluded: np.ndarray | None = None,
) -> SimulatedAnnotation:
    """The boxes an annotator with `profile` would draw for `true_boxes` in a width x height image.

    Every random choice comes from `rng`, so a seeded generator gives repeatable panels.
    Boxes are clipped to the image and kept at least 2 x 2 pixels.
    """
    truth = as_boxes(true_boxes)
    count = len(truth)
    occluded = np.zeros(count, dtype=bool) if occluded is None else np.asarray(occluded, dtype=bool)
    box_height = truth[:, 3] - truth[:, 1]
    keep = rng.random(count) >= profile.miss_rate
    keep &= ~((box_height < profile.miss_small_below) & (rng.random(count) < profile.miss_small_rate))
    keep &= ~(occluded & (rng.random(count) < profile.miss_occluded_rate))
    kept = truth[keep]
    unit = box_height[keep][:, None]
    centre = (kept[:, :2] + kept[:, 2:]) / 2 + np.array(profile.shift) * unit
    half = (kept[:, 2:] - kept[:, :2]) / 2 * profile.scale
    drawn = np.hstack([centre - half, centre + half]) + rng.normal(0.0, profile.jitter, (len(kept), 4)) * unit
    sources = np.flatnonzero(keep)

    false_count = int(rng.poisson(profile.false_positives))
    false_heights = np.exp(rng.uniform(np.log(20), np.log(min(200, height * 0.8) + 1e-9), false_count))
    false_widths = false_heights * rng.uniform(0.3, 0.5, false_count)
    false_x = rng.uniform(0, np.maximum(width - false_widths, 1))
    false_y = rng.uniform(0, np.maximum(height - false_heights, 1))
    false_boxes = np.column_stack([false_x, false_y, false_x + false_widths, false_y + false_heights])

    boxes = _clip(np.vstack([drawn.reshape(-1, 4), false_boxes.reshape(-1, 4)]), width=width, height=height)
    source = np.concatenate([sources, np.full(false_count, -1)]).astype(int)
    seconds = float(max(rng.normal(profile.seconds_mean, profile.seconds_sd), 1.0))
    return SimulatedAnnotation(boxes=boxes, source=source, seconds=seconds)


def _clip(boxes: np.ndarray, *, width: float, height: float) -> np.ndarray:
    x1 = np.clip(np.minimum(boxes[:, 0], boxes[:, 2]), 0, width - 2)
    y1 = np.clip(np.minimum(boxes[:, 1], boxes[:, 3]), 0, height - 2)
    x2 = np.clip(np.maximum(boxes[:, 0], boxes[:, 2]), x1 + 2, width)
    y2 = np.clip(np.maximum(boxes[:, 1], boxes[:, 3]), y1 + 2, height)
    return np.column_stack([x1, y1, x2, y2])
