"""Nested, stratified fractions of a snapshot's train split, for data curves.

One seeded order of all the images, stratified: within each stratum (the image's
condition combination) images are ranked by a seeded hash of their content, and the image
of rank r in a stratum of n sits at (r + u) / n on [0, 1), with u a seeded offset per
stratum; the images are ordered by that place. A fraction f keeps the first round(f * N)
images of the order. So every fraction's images include every smaller fraction's (the
curve's points differ only by the images added), and each stratum keeps its share within
one image, however small the strata are.
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterable


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16) / 16**13


def fraction_subset(items: Iterable[tuple[int, str, str]], fraction: float, *, seed: int) -> list[int]:
    """The ids kept of `items` (id, stratum, sha256) at `fraction` (0 < fraction <= 1), in id order."""
    if not 0 < fraction <= 1:
        raise ValueError("A fraction is in (0, 1].")
    strata: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for item_id, stratum, sha256 in items:
        strata[stratum].append((_unit(f"{seed}:{sha256}"), item_id))
    placed = []
    for stratum, members in strata.items():
        members.sort()
        offset = _unit(f"{seed}:stratum:{stratum}")
        placed += [((rank + offset) / len(members), item_id) for rank, (_, item_id) in enumerate(members)]
    placed.sort()
    keep = max(1, round(fraction * len(placed))) if placed else 0
    return sorted(item_id for _, item_id in placed[:keep])
