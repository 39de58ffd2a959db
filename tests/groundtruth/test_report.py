"""The agreement report recovers the habits planted in a simulated panel."""

import json

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from demo.simulation import panel_simulate
from demo.synthetic_data import synthetic_images_add
from groundtruth.computing import consensus_version_compute
from groundtruth.models import AgreementReport, ConsensusVersion, GroundTruthBox
from groundtruth.selectors import my_figures, panels
from groundtruth.services import consensus_version_create
from projects.models import Project
from tests.factories import MembershipFactory
from tests.groundtruth.test_consensus_versions import f1_against_truth, ground_truth

pytestmark = pytest.mark.django_db


@pytest.fixture
def report_data(db):
    """A simulated project (9 habit profiles, k = 5, 45 images) and its weighted version's report."""
    project = Project.objects.create(name="Habits", overlap_k=5, split_seed=7)  # the same panel every run
    synthetic_images_add(project=project, count=45, seed=11)
    panel_simulate(project=project, annotators=9, fraction=1.0, seed=2)
    reviewer = MembershipFactory(project=project, user__username="habits-lead", role="reviewer").user
    version = consensus_version_create(project=project, user=reviewer, reliability_weighted=True)
    consensus_version_compute(version_id=version.pk)
    return project.pk, version.pk, AgreementReport.objects.get(version=version).data


def by_profile(rows: list[dict]) -> dict[str, dict]:
    return {row["name"].split("-", 2)[2]: row for row in rows}


def test_planted_habits_are_recovered(report_data):
    _, _, data = report_data
    annotators = by_profile(data["annotators"])
    loose, careful, shifted = annotators["loose"], annotators["careful"], annotators["shifted"]
    for edge in ("left", "top", "right", "bottom"):
        assert loose["edge_offsets_heights"][edge] > 0.005  # outward on every side
        assert loose["edge_offsets_heights"][edge] > careful["edge_offsets_heights"][edge]
    # the planted shift is (0.06, 0.04) box heights to the right and down
    assert shifted["shift_heights"]["x"] == pytest.approx(0.06, abs=0.015)
    assert shifted["shift_heights"]["y"] == pytest.approx(0.04, abs=0.015)
    assert abs(careful["shift_heights"]["x"]) < 0.015
    # the one who misses small pedestrians has the lowest recall on them
    baseline = by_profile(data["baseline"]["annotators"])
    small = {name: row["recall_by_height"]["<50"] for name, row in baseline.items()}
    large = {name: row["recall_by_height"][">=100"] for name, row in baseline.items()}
    assert min((v, k) for k, v in small.items() if k != "poor")[1] == "misses-small"  # poor misses everything
    assert max(small, key=lambda name: large[name] - small[name]) == "misses-small"  # only small ones
    # the poor annotator is the least reliable, and the least precise of the baseline
    reliability = {name: row["reliability"]["miss_rate"] for name, row in annotators.items()}
    assert max(reliability, key=reliability.get) == "poor"
    assert min(baseline, key=lambda name: baseline[name]["f1"]) == "poor"
    assert all(row["seconds_per_image"] > 0 for row in annotators.values())  # the services cap simulated time


def test_report_figures_hold_together(report_data):
    _, _, data = report_data
    dataset = data["dataset"]
    low, high = dataset["intervals"]["alpha"]
    assert low < dataset["alpha"] < high
    assert sum(dataset["states"].values()) == dataset["images"] == 45
    assert len(data["pairwise"]["f1"]) == len(data["pairwise"]["annotators"]) == 9
    assert sum(data["iou_histogram"]["counts"]) > 45 * 5
    mean = data["baseline"]["mean"]
    assert mean["f1"] == pytest.approx(np.mean([row["f1"] for row in data["baseline"]["annotators"]]))
    assert set(data["by_condition"]) and all(
        sum(value["images"] for value in values.values()) == 45 for values in data["by_condition"].values()
    )
    heights = data["by_height"]
    consensus_boxes = GroundTruthBox.objects.filter(
        image_consensus__version_id=report_data[1], is_ignore=False, source="consensus"
    ).count()
    assert sum(row["clusters"] for row in heights.values()) == consensus_boxes
    assert heights["<50"]["below_quorum"] > heights[">=100"]["below_quorum"]  # small ones are missed more
    assert sum(row["images"] for row in data["over_time"]) == 45
    least = data["least_agreed"]
    assert least[0]["f1"] <= least[-1]["f1"] or least[0]["alpha"] <= least[-1]["alpha"]


def test_the_weighted_consensus_is_closer_to_the_truth_than_every_annotator(report_data):
    project_id, version_id, _ = report_data
    version = ConsensusVersion.objects.get(pk=version_id)
    by_image = panels(project=Project.objects.get(pk=project_id))
    consensus = f1_against_truth(ground_truth(version))
    singles = []
    for annotator in {a for panel in by_image.values() for a in panel}:
        singles.append(f1_against_truth({i: p[annotator][0] for i, p in by_image.items() if annotator in p}))
    # near-perfect annotators (2-3% jitter) match every pedestrian at IoU 0.5: the
    # consensus cannot beat 1.0, but it must not fall below them by more than a box or two
    assert consensus >= max(singles) - 0.01, (consensus, sorted(singles))
    assert all(consensus > f1 for f1 in singles if f1 < 0.99), (consensus, sorted(singles))


def test_an_annotator_sees_their_own_row_of_the_report_and_nobody_else(report_data):
    project_id, _, data = report_data
    project = Project.objects.get(pk=project_id)
    row = next(r for r in data["baseline"]["annotators"] if r["name"].endswith("-loose"))
    mine = my_figures(project=project, user=get_user_model().objects.get(pk=row["id"]))
    assert mine["agreement"]["f1"] == row["f1"] and mine["habits"]["edge_offsets_heights"]["top"] > 0
    text = json.dumps(mine)
    assert not any(name["name"] in text for name in data["baseline"]["annotators"])


def test_the_weighting_is_explained_with_intervals_and_gold_anchors(db):
    """A weighted version on a project with gold images: the report says whether the weighting
    was used and why, each annotator's rates come with intervals and their gold anchors, and
    the stored estimate reads back whole for the version's incremental updates."""
    from demo.models import SyntheticTruth
    from groundtruth.computing import _reliability_from_json
    from groundtruth.services import gold_set

    project = Project.objects.create(name="Anchored", overlap_k=3, split_seed=7, gold_rate=0.2)
    synthetic_images_add(project=project, count=30, seed=12)
    reviewer = MembershipFactory(project=project, user__username="anchor-lead", role="reviewer").user
    gold_images = list(project.images.order_by("pk")[:6])
    for image in gold_images:
        truth = SyntheticTruth.objects.get(image=image)
        boxes = [{"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "label": "pedestrian"} for b in truth.boxes]
        gold_set(image=image, reviewer=reviewer, boxes=boxes)
    panel_simulate(project=project, annotators=3, fraction=1.0, seed=4)
    version = consensus_version_create(project=project, user=reviewer, reliability_weighted=True)
    version = consensus_version_compute(version_id=version.pk)
    data = AgreementReport.objects.get(version=version).data
    assert isinstance(data["reliability"]["used"], bool) and data["reliability"]["reason"]
    assert data["reliability"]["criterion"]["starts"] == 4  # the majority and each annotator's view
    by_panel = panels(project=project)
    gold_ids = {image.pk for image in gold_images}
    for row in data["annotators"]:
        rates = row["reliability"]
        for name in ("false_positive_rate", "miss_rate"):
            low, high = rates["intervals"][name]
            assert low <= rates[name] <= high
        assert rates["gold_images"] == sum(row["id"] in by_panel[i] for i in gold_ids if i in by_panel)
    assert any(row["reliability"]["gold_images"] > 0 for row in data["annotators"])
    stored = ConsensusVersion.objects.get(pk=version.pk).reliability
    restored = _reliability_from_json(stored)
    assert restored.used == data["reliability"]["used"]
    assert restored.prior == pytest.approx(data["reliability"]["prior"])
    assert {str(a) for a in restored.annotators} == set(stored["annotators"])
    # an image's k-th submission is consolidated with the version's own model and cut
    assert restored.coincidence is not None and restored.keep_above == pytest.approx(stored["keep_above"])
    assert all(rates.spurious_per_image is not None for rates in restored.annotators.values())
