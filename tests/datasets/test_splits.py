"""Seeded, stratified, stable splits."""

import hashlib
import itertools
import random
from collections import Counter

import pytest

from datasets.models import Image
from datasets.splits import split_assign, split_choose, stratum_key
from projects.models import Project, default_conditions
from tests.factories import ImageFactory, ProjectFactory

SHARES = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_one_stratum_gets_the_project_proportions_exactly():
    counts = Counter()
    for index in range(1000):
        counts[split_choose(shares=SHARES, level_counts=[counts], seed=1, sha256=str(index))] += 1
    assert counts == {"train": 800, "val": 100, "test": 100}


def test_split_choice_is_a_seeded_draw():
    ties = [{"train": 0, "val": 0, "test": 0}]
    equal = {"train": 1 / 3, "val": 1 / 3, "test": 1 / 3}
    draws = {split_choose(shares=equal, level_counts=ties, seed=7, sha256=f"{i}") for i in range(30)}
    assert draws == {"train", "val", "test"}
    assert split_choose(shares=equal, level_counts=ties, seed=7, sha256="x") == split_choose(
        shares=equal, level_counts=ties, seed=7, sha256="x"
    )


def test_stratum_key_is_canonical():
    assert stratum_key({"weather": "rain", "resolution": "hd"}) == "resolution=hd|weather=rain"
    assert stratum_key({}) == ""


def ingest_rows(project: Project, arrivals: list[dict]) -> list[Image]:
    """Create rows the way ingestion does (split chosen at insert), without image files."""
    rows = []
    for conditions in arrivals:
        sha256 = hashlib.sha256(f"{project.pk}-{len(rows)}-{random.random()}".encode()).hexdigest()
        split = split_assign(project=project, conditions=conditions, sha256=sha256)
        rows.append(ImageFactory(project=project, sha256=sha256, conditions=conditions, split=split))
    return rows


def combinations() -> list[dict]:
    vocabulary = default_conditions()
    dimensions = sorted(vocabulary)
    return [
        dict(zip(dimensions, values, strict=True)) for values in itertools.product(*(vocabulary[d] for d in dimensions))
    ]


def split_table(project: Project) -> dict[tuple[str, str], Counter]:
    table: dict[tuple[str, str], Counter] = {}
    for image in Image.objects.filter(project=project):
        for item in image.conditions.items():
            table.setdefault(item, Counter())[image.split] += 1
    return table


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["shuffled", "one stratum after another"])
def test_every_condition_with_20_images_is_in_every_split(order):
    # given 24 condition combinations with 2 to 8 images each: too few for any one
    # combination to reach val and test on its own
    rng = random.Random(5)
    arrivals = [combo for combo in combinations() for _ in range(rng.randint(2, 8))]
    if order == "shuffled":
        rng.shuffle(arrivals)
    project = ProjectFactory(split_seed=123)
    # when they arrive
    ingest_rows(project, arrivals)
    # then every single condition that has at least 20 images appears in every split, within
    # two images of its 80/10/10 share
    table = split_table(project)
    assert all(sum(counts.values()) >= 20 for counts in table.values())
    for condition, counts in table.items():
        total = sum(counts.values())
        assert set(counts) == {"train", "val", "test"}, (condition, counts)
        for split, share in SHARES.items():
            assert abs(counts[split] - share * total) <= 2, (condition, counts)
    overall = Counter(Image.objects.filter(project=project).values_list("split", flat=True))
    assert abs(overall["val"] - overall["test"]) <= 2


@pytest.mark.django_db
def test_appending_images_never_moves_an_existing_one():
    project = ProjectFactory()
    rng = random.Random(9)
    first = ingest_rows(project, [rng.choice(combinations()) for _ in range(200)])
    before = {image.pk: image.split for image in first}
    ingest_rows(project, [rng.choice(combinations()) for _ in range(200)])
    after = dict(Image.objects.filter(pk__in=before).values_list("pk", "split"))
    assert after == before


@pytest.mark.django_db
def test_same_seed_and_arrivals_give_the_same_splits():
    rng = random.Random(3)
    arrivals = [rng.choice(combinations()) for _ in range(120)]
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(120)]

    def run(name: str, seed: int) -> list[str]:
        project = ProjectFactory(name=name, split_seed=seed)
        splits = []
        for conditions, sha256 in zip(arrivals, shas, strict=True):
            split = split_assign(project=project, conditions=conditions, sha256=sha256)
            ImageFactory(project=project, sha256=sha256, conditions=conditions, split=split)
            splits.append(split)
        return splits

    assert run("A", 42) == run("B", 42)
    assert run("C", 42) != run("D", 43)


@pytest.mark.django_db
def test_custom_proportions_are_followed():
    project = ProjectFactory(train_percent=60, val_percent=20, test_percent=20)
    ingest_rows(project, [{"weather": "sun"}] * 200)
    assert Counter(Image.objects.filter(project=project).values_list("split", flat=True)) == {
        "train": 120,
        "val": 40,
        "test": 40,
    }


@pytest.mark.django_db
def test_tallies_follow_the_images_and_rebuild_after_deletes():
    from datasets.models import SplitTally
    from datasets.splits import split_tallies_rebuild

    project = ProjectFactory()
    rows = ingest_rows(project, [{"weather": "rain", "setting": "street"}] * 30 + [{"weather": "sun"}] * 10)

    def tallies():
        return {(t.group, t.split): t.count for t in SplitTally.objects.filter(project=project, count__gt=0)}

    def recount():
        counts = Counter()
        for image in Image.objects.filter(project=project):
            counts[("all", image.split)] += 1
            for dimension, value in image.conditions.items():
                counts[(f"condition:{dimension}={value}", image.split)] += 1
            counts[(f"stratum:{image.stratum}", image.split)] += 1
        return dict(counts)

    assert tallies() == recount()
    Image.objects.filter(pk__in=[row.pk for row in rows[:7]]).delete()
    assert tallies() != recount()
    split_tallies_rebuild(project=project)
    assert tallies() == recount()


@pytest.mark.django_db
def test_deleting_images_in_the_admin_rebuilds_the_tallies(admin_client):
    from datasets.models import SplitTally

    project = ProjectFactory()
    rows = ingest_rows(project, [{"weather": "rain"}] * 12)
    admin_client.post(
        "/admin/datasets/image/",
        {"action": "delete_selected", "_selected_action": [rows[0].pk, rows[1].pk], "post": "yes"},
    )
    assert Image.objects.filter(project=project).count() == 10
    assert sum(SplitTally.objects.filter(project=project, group="all").values_list("count", flat=True)) == 10
