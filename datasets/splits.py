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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.db import transaction

from datasets.models import Image, SplitTally
from projects.models import Project, Split

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


def split_groups(conditions: Mapping[str, str]) -> list[str]:
    """The groups an image with `conditions` belongs to, as `SplitTally.group` names them."""
    groups = ["all"]
    if conditions:
        groups.append(f"stratum:{stratum_key(conditions)}")
        groups += [f"condition:{dimension}={value}" for dimension, value in sorted(conditions.items())]
    return groups


def split_assign(*, project: Project, conditions: Mapping[str, str], sha256: str) -> str:
    """Choose the split of one new image of `project` and count it in the tallies."""
    return splits_assign(project=project, arrivals=[(conditions, sha256)])[0]


def splits_assign(*, project: Project, arrivals: Sequence[tuple[Mapping[str, str], str]]) -> list[str]:
    """Choose the splits of new images of `project`, given as (conditions, sha256) in arrival
    order, and count them in the tallies: the same splits as choosing them one at a time.

    One read of the tallies and one upsert of their new counts, whatever the number of
    images. The caller holds the project's row lock (so the counts read stay true until the
    upsert) and creates the images in the same transaction.
    """
    groups_of = [split_groups(conditions) for conditions, _ in arrivals]
    counts: dict[str, dict[str, int]] = {group: {} for groups in groups_of for group in groups}
    for group, split, count in SplitTally.objects.filter(project=project, group__in=list(counts)).values_list(
        "group", "split", "count"
    ):
        counts[group][split] = count
    splits, touched = [], set()
    for (_, sha256), groups in zip(arrivals, groups_of, strict=True):
        split = split_choose(
            shares=project.split_shares,
            level_counts=[counts[group] for group in groups],
            seed=project.split_seed,
            sha256=sha256,
        )
        for group in groups:
            counts[group][split] = counts[group].get(split, 0) + 1
            touched.add((group, split))
        splits.append(split)
    SplitTally.objects.bulk_create(
        [SplitTally(project=project, group=group, split=split, count=counts[group][split]) for group, split in touched],
        update_conflicts=True,
        unique_fields=["project", "group", "split"],
        update_fields=["count"],
    )
    return splits


def split_tallies_rebuild(*, project: Project) -> int:
    """Recount the tallies of `project` from its images (after images were deleted)."""
    totals: dict[tuple[str, str], int] = {}
    for split, conditions in Image.objects.filter(project=project).values_list("split", "conditions"):
        for group in split_groups(conditions or {}):
            totals[(group, split)] = totals.get((group, split), 0) + 1
    with transaction.atomic():
        SplitTally.objects.filter(project=project).delete()
        SplitTally.objects.bulk_create(
            SplitTally(project=project, group=group, split=split, count=count)
            for (group, split), count in totals.items()
        )
    return len(totals)


# Resolution buckets of the split report, by megapixels: (label, upper bound).
RESOLUTION_BUCKETS = (
    ("under 0.3 MP", 0.3),
    ("0.3 to 1 MP", 1.0),
    ("1 to 2.1 MP (HD)", 2.1),
    ("2.1 to 8.3 MP (4K)", 8.3),
    ("over 8.3 MP", float("inf")),
)
# A condition is "thin" in a split when that split holds under half the images its share
# promises, and the promise is at least two images.
THIN_FRACTION = 0.5
THIN_MIN_EXPECTED = 2.0


@dataclass(frozen=True)
class ConditionRow:
    dimension: str
    value: str
    total: int
    counts: dict[str, int]  # split -> images


@dataclass(frozen=True)
class SplitWarning:
    level: str  # "missing" or "thin"
    dimension: str
    value: str
    split: str
    count: int
    expected: float
    message: str


@dataclass(frozen=True)
class SplitReport:
    total: int
    shares: dict[str, float]
    counts: dict[str, int]
    conditions: list[ConditionRow]
    resolutions: dict[str, dict[str, int]]  # bucket -> split -> images
    warnings: list[SplitWarning] = field(default_factory=list)


def split_report(*, project: Project) -> SplitReport:
    """Counts per split and per split x condition, resolutions per split, and warnings.

    Every value of the project's vocabulary is listed, with zeros where no image has it.
    """
    shares = project.split_shares
    counts = dict.fromkeys(SPLIT_ORDER, 0)
    by_condition: dict[tuple[str, str], dict[str, int]] = {
        (dimension, value): dict.fromkeys(SPLIT_ORDER, 0)
        for dimension, values in project.conditions.items()
        for value in values
    }
    resolutions = {label: dict.fromkeys(SPLIT_ORDER, 0) for label, _ in RESOLUTION_BUCKETS}
    rows = Image.objects.filter(project=project).values_list("split", "conditions", "width", "height")
    for split, conditions, width, height in rows.iterator(chunk_size=5000):
        counts[split] += 1
        for item in (conditions or {}).items():
            by_condition.setdefault(item, dict.fromkeys(SPLIT_ORDER, 0))[split] += 1
        megapixels = width * height / 1e6
        label = next(label for label, bound in RESOLUTION_BUCKETS if megapixels < bound)
        resolutions[label][split] += 1
    condition_rows = [
        ConditionRow(dimension=dimension, value=value, total=sum(split_counts.values()), counts=split_counts)
        for (dimension, value), split_counts in by_condition.items()
    ]
    warnings = []
    for row in condition_rows:
        if row.total == 0:
            continue
        for split in SPLIT_ORDER:
            expected = shares[split] * row.total
            have = row.counts[split]
            if have == 0 and expected >= 1:
                level, what = "missing", "has no"
            elif expected >= THIN_MIN_EXPECTED and have < THIN_FRACTION * expected:
                level, what = "thin", f"has only {have}"
            else:
                continue
            warnings.append(
                SplitWarning(
                    level=level,
                    dimension=row.dimension,
                    value=row.value,
                    split=split,
                    count=have,
                    expected=round(expected, 1),
                    message=f"{split} {what} {row.dimension}={row.value} images "
                    f"(about {expected:.1f} expected of {row.total}).",
                )
            )
    return SplitReport(
        total=sum(counts.values()),
        shares={split: shares[split] for split in SPLIT_ORDER},
        counts=counts,
        conditions=condition_rows,
        resolutions=resolutions,
        warnings=warnings,
    )
