"""Checking the boxes an annotator submits: what the canvas sends, before it is stored.

Pure Python. Boxes arrive as dicts {x1, y1, x2, y2, label, is_occluded, is_truncated,
is_ignored, is_from_suggestion} in absolute image pixels, xyxy. `is_from_suggestion` says
the box began as a model's suggestion (kept through edits), so that the bias suggestions
cause can be measured.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FLAGS = ("is_occluded", "is_truncated", "is_ignored", "is_from_suggestion")
FIELDS = {"x1", "y1", "x2", "y2", "label", *FLAGS}


@dataclass(frozen=True)
class CheckedBox:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    is_occluded: bool = False
    is_truncated: bool = False
    is_ignored: bool = False
    is_from_suggestion: bool = False


@dataclass(frozen=True)
class BoxProblem:
    index: int  # position of the box in the submission, from 0
    messages: tuple[str, ...]


def boxes_check(
    items: object,
    *,
    width: float,
    height: float,
    labels: Iterable[str],
    max_boxes: int = 500,
    overshoot: float = 2.0,
    min_size: float = 2.0,
) -> tuple[list[CheckedBox], list[BoxProblem], str | None]:
    """Check a submission's boxes against a width x height image.

    Returns the checked boxes, the problems per box, and a problem with the whole list
    (not a list, too many boxes) or None. A box may reach at most `overshoot` pixels past
    the image, which is clipped away; after that it must be at least `min_size` pixels
    wide and high. Coordinates must be finite numbers, labels known, flags true or false.
    """
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        return [], [], "boxes must be a list"
    if len(items) > max_boxes:
        return [], [], f"at most {max_boxes} boxes per image, got {len(items)}"
    known = set(labels)
    checked, problems = [], []
    for index, item in enumerate(items):
        messages = _problems(item, known)
        if messages:
            problems.append(BoxProblem(index=index, messages=tuple(messages)))
            continue
        x1, y1, x2, y2 = (float(item[key]) for key in ("x1", "y1", "x2", "y2"))
        messages = []
        if x1 < -overshoot or y1 < -overshoot or x2 > width + overshoot or y2 > height + overshoot:
            messages.append(f"the box reaches more than {overshoot:g} px outside the {width:g}x{height:g} image")
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
        if not messages and (x2 - x1 < min_size or y2 - y1 < min_size):
            messages.append(f"the box must be at least {min_size:g}x{min_size:g} px inside the image")
        if messages:
            problems.append(BoxProblem(index=index, messages=tuple(messages)))
            continue
        checked.append(
            CheckedBox(
                x1=round(x1, 3),
                y1=round(y1, 3),
                x2=round(x2, 3),
                y2=round(y2, 3),
                label=item["label"],
                **{flag: item.get(flag, False) for flag in FLAGS},
            )
        )
    return checked, problems, None


def _finite(value: int | float) -> bool:
    """A finite float, or an int a float can hold (a 400-digit integer cannot)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _problems(item: object, labels: set[str]) -> list[str]:
    if not isinstance(item, dict):
        return ["a box must be an object"]
    messages = []
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        messages.append(f"unknown field(s): {', '.join(unknown)}")
    for key in ("x1", "y1", "x2", "y2"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            messages.append(f"{key} must be a finite number")
    if not messages and (item["x2"] <= item["x1"] or item["y2"] <= item["y1"]):
        messages.append("x2 must be greater than x1 and y2 greater than y1")
    if item.get("label") not in labels:
        shown = repr(item.get("label"))
        shown = shown if len(shown) <= 70 else f"{shown[:64]}...{shown[-1]}"
        messages.append(f"unknown label {shown}; known: {', '.join(sorted(labels))}")
    for flag in FLAGS:
        if flag in item and not isinstance(item[flag], bool):
            messages.append(f"{flag} must be true or false")
    return messages
