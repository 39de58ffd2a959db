"""Data curves: nested, stratified fractions; the runs a curve makes and cancels; the API's
refusals; and a real curve on a project where night is planted hard and rare."""

import itertools
import random
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from demo.simulation import panel_simulate
from demo.synthetic_data import synthetic_images_add
from groundtruth.computing import consensus_version_compute
from groundtruth.services import consensus_version_create
from projects.models import Project, Role
from serving.models import ApiClient, PredictionLog
from tests.factories import MembershipFactory
from tests.training.conftest import trainable_project
from training import data_curves
from training.data_curves import data_curve_create, data_curve_refresh, served_traffic
from training.evaluation import ground_truth, humans_compare, split_images
from training.fractions import fraction_subset
from training.models import DataCurve, RunState, TrainingRun
from training.profile import image_features
from training.runner import snapshot_local_dataset, train_subset_yaml, training_run_execute
from training.starter import starter_register

pytestmark = pytest.mark.django_db


def test_fractions_are_nested_stratified_and_seeded():
    items = [(i, "weather=night" if i % 10 == 0 else "weather=sun", f"{i:064x}") for i in range(200)]
    subsets = {f: fraction_subset(items, f, seed=3) for f in (0.125, 0.25, 0.5, 1.0)}
    assert subsets[1.0] == list(range(200))
    for small, large in ((0.125, 0.25), (0.25, 0.5), (0.5, 1.0)):
        assert set(subsets[small]) <= set(subsets[large])
    for fraction, kept in subsets.items():
        assert len(kept) == round(fraction * 200)
        strata = Counter("night" if i % 10 == 0 else "sun" for i in kept)
        assert abs(strata["night"] - fraction * 20) <= 1 and abs(strata["sun"] - fraction * 180) <= 1
    # strata of one image each still give the fraction's share of the whole
    singles = [(i, f"stratum {i}", f"{i:064x}") for i in range(24)]
    assert len(fraction_subset(singles, 0.25, seed=1)) == 6
    assert fraction_subset(items, 0.25, seed=3) == subsets[0.25]
    assert fraction_subset(items, 0.25, seed=4) != subsets[0.25]
    with pytest.raises(ValueError):
        fraction_subset(items, 0.0, seed=3)


def test_a_run_s_fraction_trains_on_a_listed_subset_and_the_same_val(trainable, tmp_path):
    _, runs = data_curve_create(
        project=trainable.project, user=trainable.admin, fractions=[0.25, 0.5, 1.0], imgsz=160, epochs=1
    )
    quarter = runs[0]
    data = snapshot_local_dataset(quarter.snapshot, tmp_path / "dataset")
    subset = train_subset_yaml(quarter, data, tmp_path)
    config, original = yaml.safe_load(subset.read_text()), yaml.safe_load(data.read_text())
    listed = [Path(line) for line in Path(config["train"]).read_text().splitlines()]
    every = sorted((data.parent / original["train"]).glob("*.jpg"))
    assert set(listed) < set(every) and all(path.exists() for path in listed)
    assert len(listed) == round(0.25 * len(every))
    assert Path(config["val"]) == data.parent / original["val"]
    assert config["names"] == original["names"]


def test_a_curve_makes_one_run_per_fraction_on_one_snapshot_and_cancels_them(api_client, trainable):
    api_client.force_authenticate(trainable.admin)
    url = reverse("api-data-curves", kwargs={"project_id": trainable.project.pk})
    response = api_client.post(url, {"imgsz": 160, "epochs": 2}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert [run["fraction"] for run in body["runs"]] == [0.125, 0.25, 0.5, 1.0]
    runs = TrainingRun.objects.filter(curve_id=body["id"])
    assert runs.count() == 4 and len({run.snapshot_id for run in runs}) == 1
    assert {(run.imgsz, run.epochs, run.seed) for run in runs} == {(160, 2, 0)}
    # from a run: its settings, with what the request names over them
    again = api_client.post(url, {"run": runs.first().pk, "epochs": 3, "fractions": [0.5, 0.25, 1]}, format="json")
    assert again.status_code == 202
    assert [(r["fraction"], r["epochs"]) for r in again.json()["runs"]] == [(0.25, 3), (0.5, 3), (1.0, 3)]
    cancel = api_client.post(reverse("api-data-curve-cancel", kwargs={"curve_id": body["id"]}))
    assert cancel.status_code == 202 and cancel.json()["state"] == "cancelled"
    assert set(runs.values_list("state", flat=True)) == {RunState.CANCELLED}
    assert api_client.post(reverse("api-data-curve-cancel", kwargs={"curve_id": body["id"]})).status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"fractions": [0.5, 1]}, {"fractions": [0.25, 0.5, 0.9]}, {"fractions": [0, 0.5, 1]}, {"fractions": ["a"]},
     {"fractions": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1]}],
)  # fmt: skip
def test_bad_fractions_are_refused_and_nothing_is_made(api_client, trainable, body):
    api_client.force_authenticate(trainable.admin)
    url = reverse("api-data-curves", kwargs={"project_id": trainable.project.pk})
    response = api_client.post(url, body, format="json")
    assert response.status_code == 400
    assert "fractions" in response.json()["error"]["fields"]
    assert not DataCurve.objects.exists() and not TrainingRun.objects.exists()


def test_a_reviewer_reads_curves_but_may_not_start_one(api_client, trainable):
    api_client.force_authenticate(trainable.reviewer)
    url = reverse("api-data-curves", kwargs={"project_id": trainable.project.pk})
    assert api_client.get(url).status_code == 200
    assert api_client.post(url, {}, format="json").status_code == 403
    assert not TrainingRun.objects.exists()


# --- a real curve ------------------------------------------------------------------------

DAY = [{"weather": w, "setting": "street", "resolution": "hd"} for w in ("sun", "overcast")]
NIGHT = {"weather": "night", "setting": "street", "resolution": "hd"}


@pytest.fixture
def night_is_rare(db, settings, tmp_path):
    """90 street scenes of 320 x 192 (the starter's scale), a third at night (dark and
    noisy), annotated by a panel of 3; all but 2 of the train split's night scenes planted
    out of it (into test), so night is hard for the model and rare in its training, while
    val keeps its third."""
    settings.QUORUM_TRAINING_DIR = tmp_path / "training"
    # the runs execute in this process, inside the test's transaction: the heartbeat thread's
    # own connection cannot see them on PostgreSQL, and would take them for lost if it beat
    settings.QUORUM_TRAINING_HEARTBEAT_SECONDS = 3600
    project = Project.objects.create(name="Night", overlap_k=3, split_seed=5)
    synthetic_images_add(project=project, count=90, seed=31, size=(320, 192), conditions=[*DAY, NIGHT])
    night_train = project.images.filter(split="train", conditions__weather="night").order_by("pk")
    project.images.filter(pk__in=list(night_train.values_list("pk", flat=True)[2:])).update(split="test")
    panel_simulate(project=project, annotators=3, fraction=1.0, seed=3)
    admin = MembershipFactory(project=project, user__username="night-admin", role=Role.ADMIN).user
    consensus_version_compute(version_id=consensus_version_create(project=project, user=admin).pk)
    return project, admin


def test_a_curve_rises_with_the_data_and_ranks_the_rare_hard_condition_first(night_is_rare, client):
    project, admin = night_is_rare
    starter = starter_register()
    curve, runs = data_curve_create(
        project=project, user=admin, init="base", base_weights=starter.pk, imgsz=320, epochs=8, batch=8, patience=8,
    )  # fmt: skip
    for run in runs:
        finished = training_run_execute(run_id=run.pk, worker="test")
        assert finished.state == RunState.SUCCEEDED, finished.error
        data_curve_refresh(curve_id=curve.pk)
    curve.refresh_from_db()
    assert curve.state == DataCurve.State.DONE, curve.error
    points = curve.result["points"]
    summary = [(p["images"], p["ap50"], p["recall"]) for p in points], curve.result["conditions"]
    assert [p["fraction"] for p in points] == [0.125, 0.25, 0.5, 1.0]
    assert points[0]["images"] < points[-1]["images"]
    # AP50 rises point after point; recall at the humans' precision is one operating point on
    # 9 val images, too coarse to rise at every step, so only its intervals are checked
    assert all(a["ap50"] < b["ap50"] for a, b in itertools.pairwise(points)), summary
    assert all(p["recall_interval"][0] <= p["recall"] <= p["recall_interval"][1] for p in points), summary
    recall = curve.result["figures"]["recall"]
    assert set(recall["backtest"]) == {"power", "logarithmic"}
    assert "2x" in recall["fits"]["logarithmic"]["gains"]
    ranked = curve.result["conditions"]
    assert (ranked[0]["dimension"], ranked[0]["value"]) == ("weather", "night"), ranked
    assert {row["dimension"] for row in ranked} == {"weather"}  # setting and resolution never vary here
    assert ranked[0]["annotator_hours_per_1000_images"] > 0
    # nothing served yet: the val split's mix, misses per 1,000 images
    assert curve.result["traffic"]["per_week"] is None and ranked[0]["misses_avoided_per_week"] is None
    head = curve.result["headline"]
    assert head["images_2x"] == 2 * points[-1]["images"] and head["annotator_hours"] > 0
    fitted = recall["fits"][head["family"]]
    assert head["gain"] == fitted["gains"]["2x"]["gain"]
    if fitted["optimism"] is not None:
        assert head["gain_corrected"] == pytest.approx(max(head["gain"] - fitted["optimism"], 0.0), abs=2e-4)
    client.force_login(admin)
    page = client.get(reverse("data-curve", kwargs={"curve_id": curve.pk})).content.decode()
    first_row = page.split('id="conditions"')[1].split("<tr data-condition=")[1]
    assert first_row.startswith('"weather=night"')
    assert 'id="headline"' in page and 'id="chart-recall-data"' in page and "annotator hours" in page
    csv_text = client.get(reverse("api-data-curve-download", kwargs={"curve_id": curve.pk}) + "?format=csv")
    assert csv_text.status_code == 200 and b"condition,weather,night" in csv_text.content


# --- the served traffic's mix of conditions ----------------------------------------------


@pytest.fixture
def day_and_night(db):
    """120 street scenes (a third at night), a panel of 3 and its consensus; `setting` is
    then drawn at random per image (street or highway), a condition no pixel shows."""
    project = Project.objects.create(name="Traffic", overlap_k=3, split_seed=2)
    synthetic_images_add(project=project, count=120, seed=41, size=(320, 192), conditions=[*DAY, NIGHT])
    rng = random.Random(5)
    for image in project.images.all():
        image.conditions = {**image.conditions, "setting": rng.choice(["street", "highway"])}
        image.save(update_fields=["conditions"])
    panel_simulate(project=project, annotators=3, fraction=1.0, seed=3)
    admin = MembershipFactory(project=project, user__username="traffic-admin", role=Role.ADMIN).user
    version = consensus_version_compute(version_id=consensus_version_create(project=project, user=admin).pk)
    return project, version


def _serve(project, rows, *, days_ago: float = 3.0):
    """PredictionLog rows as an API client's answers, spread over the last `days_ago` days."""
    client = ApiClient.objects.create(name="camera", token_prefix="x", token_sha256=f"{project.pk:064x}")
    now = timezone.now()
    PredictionLog.objects.bulk_create(
        PredictionLog(
            project=project,
            client=client,
            status=200,
            width=row["width"],
            height=row["height"],
            brightness=row["brightness"],
            contrast=row["contrast"],
            created_at=now - timedelta(days=days_ago * index / len(rows)),
        )
        for index, row in enumerate(rows)
    )
    # a shadow run and a refused request are not traffic
    PredictionLog.objects.create(project=project, client=client, status=200, is_shadow=True, width=320, height=192,
                                 brightness=5.0, contrast=1.0, created_at=now)  # fmt: skip
    PredictionLog.objects.create(project=project, client=client, status=413, created_at=now)


def _traffic(project, version):
    val_ids = split_images(version=version, split="val")
    conditions = dict(project.images.filter(pk__in=val_ids).values_list("pk", "conditions"))
    return served_traffic(
        project=project, version=version, val_ids=val_ids, conditions=conditions, dimensions=["setting", "weather"]
    )


def test_the_served_mix_of_conditions_is_estimated_from_what_serving_logs(day_and_night):
    project, version = day_and_night
    # served: the test split's scenes (never seen by the classifier), 30% of them at night
    features = image_features(project.images.filter(split="test").values_list("pk", flat=True))
    kinds = dict(project.images.values_list("pk", "conditions__weather"))
    night = [row for pk, row in features.items() if kinds[pk] == "night"]
    day = [row for pk, row in features.items() if kinds[pk] != "night"]
    assert night and day
    rng = random.Random(1)
    served = [rng.choice(night) for _ in range(60)] + [rng.choice(day) for _ in range(140)]
    _serve(project, served, days_ago=3.5)
    traffic = _traffic(project, version)
    assert traffic["images"] == 200  # the shadow run and the refusal left out
    assert traffic["per_week"] == pytest.approx(400, rel=0.02)  # 200 images over 3.5 days
    weather = traffic["dimensions"]["weather"]
    assert weather["source"] == "served" and weather["balanced_accuracy"] >= 0.7, weather
    assert weather["shares"]["night"] == pytest.approx(0.3, abs=0.08), weather
    assert sum(weather["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    # no pixel tells a highway from a street here: the val split's mix stands in, and says why
    setting = traffic["dimensions"]["setting"]
    assert setting["source"] == "val" and setting["balanced_accuracy"] < 0.7, setting
    assert "not told apart" in setting["note"]


def test_too_little_traffic_falls_back_to_the_val_mix_per_1000_images(day_and_night):
    project, version = day_and_night
    features = list(image_features(project.images.filter(split="test").values_list("pk", flat=True)).values())
    _serve(project, features[:10])
    traffic = _traffic(project, version)
    assert traffic["images"] == 10 and traffic["per_week"] is None and traffic["dimensions"] == {}
    assert "fewer than 30" in traffic["note"]


@pytest.mark.django_db(transaction=True)
def test_a_curve_being_settled_elsewhere_is_left_to_that_worker():
    trainable = trainable_project(images=24, name="Race")
    curve, _ = data_curve_create(project=trainable.project, user=trainable.admin, imgsz=160, epochs=1)
    TrainingRun.objects.filter(curve=curve).update(state=RunState.FAILED)
    held, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            DataCurve.objects.select_for_update().get(pk=curve.pk)
            held.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(30)
        assert data_curve_refresh(curve_id=curve.pk).state == DataCurve.State.RUNNING
    finally:
        release.set()
        thread.join()
    settled = data_curve_refresh(curve_id=curve.pk)
    assert settled.state == DataCurve.State.FAILED and "Only 0 of its runs succeeded" in settled.error


def test_a_condition_s_few_images_are_compared_with_every_annotator_who_saw_one(db):
    """Five annotators, three per image: on six images of one condition nobody has labelled
    all six, so the baseline's default (every image) counts nobody; the data curve's
    comparison counts each annotator on the images they saw."""
    project = Project.objects.create(name="Panel of five", overlap_k=3, split_seed=4)
    synthetic_images_add(project=project, count=30, seed=51, size=(160, 128))
    panel_simulate(project=project, annotators=5, fraction=1.0, seed=6)
    admin = MembershipFactory(project=project, user__username="five-admin", role=Role.ADMIN).user
    version = consensus_version_compute(version_id=consensus_version_create(project=project, user=admin).pk)
    ids = list(project.images.order_by("pk").values_list("pk", flat=True)[:6])
    truths = ground_truth(version=version, image_ids=ids)
    perfect = [np.hstack([truth.boxes, np.full((len(truth.boxes), 1), 0.9)]) for truth in truths]
    assert humans_compare(version, ids, perfect) is None
    compare = humans_compare(version, ids, perfect, min_images=1)
    assert compare["annotators"] >= 4 and compare["model_mean"]["recall_at_precision"] >= 0.5
    assert compare["human_mean"]["recall"] is not None


def test_the_classifier_is_checked_on_a_capped_seeded_sample_of_val(day_and_night, monkeypatch):
    project, version = day_and_night
    features = list(image_features(project.images.filter(split="test").values_list("pk", flat=True)).values())
    _serve(project, features * 3)
    monkeypatch.setattr(data_curves, "CLASSIFIER_CHECK", 5)
    decoded, real = [], data_curves.image_features
    monkeypatch.setattr(data_curves, "image_features", lambda ids: decoded.extend(ids) or real(ids))
    _traffic(project, version)
    val_ids = set(split_images(version=version, split="val"))
    assert len(val_ids) > 5 and len(set(decoded) & val_ids) == 5
