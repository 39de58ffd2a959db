"""Train / val / test assignment at ingest: seeded, stratified by condition, never moved.

Each arriving image goes to the split that is furthest below its target share, summed
over every group the image belongs to: its condition combination (the stratum), each of
its single conditions (weather=rain, ...) and the whole project. Summing the levels keeps
thin combinations from all landing in train while the single conditions, which have
enough images, stay in proportion in every split (the idea of iterative stratification,
Sechidis et al., ECML PKDD 2011). Ties are broken by a draw seeded with the project's split
seed and the image's sha256, so the same arrivals always give the same splits. An image's
split is decided once and never changes: adding images never moves an existing one.
"""

import random
from collections.abc import Mapping

from django.db.models import Count, Q

from annotation.models import Image, Project, Split

SPLIT_ORDER = (Split.TRAIN, Split.VAL, Split.TEST)


def stratum_key(conditions: Mapping[str, str]) -> str:
    """Canonical text of a condition combination: "resolution=hd|setting=street|weather=rain"."""
    return "|".join(f"{dimension}={conditions[dimension]}" for dimension in sorted(conditions))


def split_choose(*, shares: Mapping[str, float], level_counts: list[Mapping[str, int]], seed: int, sha256: str) -> str:
    """The split for one more image, given the split counts of each group it belongs to.

    Pure: `level_counts` holds, per group, how many images each split already has.
    """
    scores = dict.fromkeys(SPLIT_ORDER, 0.0)
    for counts in level_counts:
        total = sum(counts.get(split, 0) for split in SPLIT_ORDER) + 1
        for split in SPLIT_ORDER:
            scores[split] += shares[split] * total - counts.get(split, 0)
    best = max(scores.values())
    tied = [split for split in SPLIT_ORDER if scores[split] >= best - 1e-9]
    if len(tied) == 1:
        return tied[0]
    return random.Random(f"{seed}:{sha256}").choice(tied)


def split_assign(*, project: Project, conditions: Mapping[str, str], sha256: str) -> str:
    """Choose the split of a new image of `project`; the caller holds the project's row lock."""
    groups = {"all": Q()}
    if conditions:
        groups["stratum"] = Q(stratum=stratum_key(conditions))
        for index, (dimension, value) in enumerate(sorted(conditions.items())):
            groups[f"c{index}"] = Q(**{f"conditions__{dimension}": value})
    aggregates = {
        f"{name}__{split}": Count("pk", filter=condition & Q(split=split))
        for name, condition in groups.items()
        for split in SPLIT_ORDER
    }
    counts = Image.objects.filter(project=project).aggregate(**aggregates)
    level_counts = [{split: counts[f"{name}__{split}"] for split in SPLIT_ORDER} for name in groups]
    return split_choose(shares=project.split_shares, level_counts=level_counts, seed=project.split_seed, sha256=sha256)
