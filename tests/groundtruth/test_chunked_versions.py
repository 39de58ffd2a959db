"""A consensus version computed in chunks (groundtruth/computing.py, groundtruth/tasks.py):
the same rows and report as one pass over every image, two versions at once kept apart,
chunks spread over several worker processes, and a chunk whose worker is killed computed
again with the version finished once."""

import math
import os
import signal
import time
import uuid

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from boxes.agreement import measure
from boxes.baseline import human_baseline
from boxes.simulate import PROFILES, simulate_annotator
from datasets.models import Image
from groundtruth.computing import (
    consensus_chunk_compute,
    consensus_version_compute,
    consensus_version_finish,
    consensus_version_start,
)
from groundtruth.models import (
    Adjudication,
    AgreementReport,
    Annotation,
    Box,
    ChunkState,
    ConsensusChunk,
    ConsensusVersion,
    ImageConsensus,
    VersionState,
)
from groundtruth.reports import BASELINE_MIN_IMAGES, HEIGHT_BINS
from groundtruth.selectors import panels
from groundtruth.services import consensus_version_create
from projects.models import Membership, Role
from tests.factories import ProjectFactory
from tests.workers import start_worker, stop_worker, wait_for

PANEL = ("careful", "loose", "sloppy", "shifted", "misses-small")
WIDTH, HEIGHT = 1280, 720


def seeded_project(*, images: int, seed: int = 0, name: str = "Chunked"):
    """`images` images, each labelled by 3 of 5 simulated annotators (drawn at random), with
    1 to 8 pedestrians each; bulk written, as an import would."""
    project = ProjectFactory(name=name, overlap_k=3)
    users = [get_user_model().objects.create(username=f"{name.lower()}-{profile}") for profile in PANEL]
    rows = Image.objects.bulk_create(
        Image(project=project, sha256=f"{project.pk:08x}{index:056x}", file=f"images/c{index}.jpg",
              original_name=f"c{index}.jpg", format="jpeg", width=WIDTH, height=HEIGHT, bytes=1, split="train",
              submitted_count=3, conditions={"weather": ["sun", "rain", "night"][index % 3]})
        for index in range(images)
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    annotations, drawn = [], []
    for image in rows:
        n = int(rng.integers(1, 9))
        heights = np.exp(rng.uniform(np.log(30), np.log(300), n))
        x, y = rng.uniform(0, WIDTH - heights * 0.4), rng.uniform(0, HEIGHT - heights)
        truth = np.column_stack([x, y, x + heights * 0.4, y + heights])
        for position in sorted(rng.choice(len(PANEL), size=3, replace=False).tolist()):
            annotations.append(Annotation(image=image, annotator=users[position], active_seconds=5.0))
            profile = PROFILES[PANEL[position]]
            drawn.append(simulate_annotator(truth, profile=profile, rng=rng, width=WIDTH, height=HEIGHT).boxes)
    annotations = Annotation.objects.bulk_create(annotations, batch_size=2000)
    Box.objects.bulk_create(
        (Box(annotation=annotation, x1=a, y1=b, x2=c, y2=d)
         for annotation, boxes in zip(annotations, drawn, strict=True) for a, b, c, d in boxes.round(2).tolist()),
        batch_size=5000,
    )  # fmt: skip
    return project, users


def rows_of(version) -> dict[int, tuple]:
    """Each image's row and boxes in a version, as plain values."""
    result = {}
    for row in ImageConsensus.objects.filter(version=version).prefetch_related("boxes"):
        boxes = sorted(
            (b.x1, b.y1, b.x2, b.y2, b.support, b.score, b.is_ignore, b.is_uncertain, b.source, tuple(b.annotators))
            for b in row.boxes.all()
        )
        result[row.image_id] = (row.state, row.annotators, row.f1, row.mean_iou, row.uncertain, boxes)
    return result


def assert_close(got, expected, path="report"):
    """Two JSON values equal, numbers to 1e-9."""
    if isinstance(expected, dict):
        assert set(got) == set(expected), path
        for key in expected:
            assert_close(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for index, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{path}[{index}]")
    elif isinstance(expected, float) and isinstance(got, float):
        assert math.isclose(got, expected, rel_tol=0, abs_tol=1e-9), (path, got, expected)
    else:
        assert got == expected, (path, got, expected)


def without_version_number(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "version"}


@pytest.mark.django_db
@pytest.mark.parametrize("weighted", [False, True])
def test_a_chunked_version_equals_one_pass_image_by_image_and_in_its_report(settings, weighted):
    project, users = seeded_project(images=150, seed=3)
    image = Image.objects.filter(project=project).order_by("pk")[20]
    Adjudication.objects.create(image=image, reviewer=users[0], boxes=[[10, 10, 50, 110, False]])

    settings.QUORUM_CONSENSUS_CHUNK_IMAGES = 100_000  # one chunk: one pass over every image
    single = consensus_version_create(project=project, user=None, reliability_weighted=weighted)
    consensus_version_compute(version_id=single.pk)
    settings.QUORUM_CONSENSUS_CHUNK_IMAGES = 17
    chunked = consensus_version_create(project=project, user=None, reliability_weighted=weighted)
    consensus_version_compute(version_id=chunked.pk)
    single.refresh_from_db()
    chunked.refresh_from_db()

    assert single.state == chunked.state == VersionState.DONE
    assert single.chunks.count() == 1 and chunked.chunks.count() == math.ceil(150 / 17)
    assert chunked.timings["chunks"] == 9
    assert rows_of(chunked) == rows_of(single)
    assert len(rows_of(chunked)) == 150
    assert rows_of(chunked)[image.pk][0] == "adjudicated"
    assert_close(without_version_number(chunked.report.data), without_version_number(single.report.data))
    assert chunked.reliability == single.reliability
    assert bool(chunked.reliability) == weighted
    for name in ("alpha", "alpha_low", "alpha_high", "pairwise_f1", "mean_iou"):
        assert math.isclose(getattr(chunked, name), getattr(single, name), abs_tol=1e-9)

    # and both are the boxes library's one pass over every image, loaded at once
    by_image = panels(project=project)
    annotations = [{a: boxes for a, (boxes, _) in by_image[i].items()} for i in sorted(by_image)]
    whole = measure(annotations, iou_threshold=0.5, bootstrap=1000)
    dataset = chunked.report.data["dataset"]
    assert math.isclose(dataset["alpha"], whole.alpha, abs_tol=1e-9)
    assert dataset["intervals"]["alpha"] == pytest.approx(list(whole.intervals["alpha"]), abs=1e-9)
    assert math.isclose(dataset["pairwise_f1"], whole.f1, abs_tol=1e-9)
    baseline = human_baseline(annotations, min_images=BASELINE_MIN_IMAGES, height_bins=HEIGHT_BINS, bootstrap=1000)
    reported = {row["id"]: row for row in chunked.report.data["baseline"]["annotators"]}
    assert set(reported) == set(baseline.annotators)
    for annotator, expected in baseline.annotators.items():
        assert math.isclose(reported[annotator]["recall"], expected.point.recall, abs_tol=1e-9)
        assert reported[annotator]["intervals"]["f1"] == pytest.approx(list(expected.intervals["f1"]), abs=1e-9)
    assert reported[users[0].pk]["images"] == Annotation.objects.filter(annotator=users[0]).count()
    assert not ConsensusChunk.objects.filter(version=chunked, counts__isnull=False).exists()  # merged, let go


@pytest.mark.django_db
def test_two_versions_at_once_do_not_mix_their_chunks(settings):
    project, _ = seeded_project(images=60, seed=5)
    settings.QUORUM_CONSENSUS_CHUNK_IMAGES = 11
    plain = consensus_version_create(project=project, user=None, reliability_weighted=False)
    strict = consensus_version_create(project=project, user=None, reliability_weighted=False, iou_threshold=0.7,
                                      quorum=1.0)  # fmt: skip
    plain_chunks = consensus_version_start(version_id=plain.pk)
    strict_chunks = consensus_version_start(version_id=strict.pk)
    assert len(plain_chunks) == len(strict_chunks) == 6
    finished = []
    for plain_chunk, strict_chunk in zip(plain_chunks, reversed(strict_chunks), strict=True):  # interleaved
        finished += [consensus_chunk_compute(chunk_id=strict_chunk), consensus_chunk_compute(chunk_id=plain_chunk)]
    assert finished[-2:] == [strict.pk, plain.pk] and set(finished[:-2]) == {None}  # the last chunk of each says so
    consensus_version_finish(version_id=strict.pk)
    consensus_version_finish(version_id=plain.pk)

    # each equals the same version computed alone
    alone = {}
    for version, params in ((plain, {}), (strict, {"iou_threshold": 0.7, "quorum": 1.0})):
        twin = consensus_version_create(project=project, user=None, reliability_weighted=False, **params)
        consensus_version_compute(version_id=twin.pk)
        alone[version.pk] = twin
    for version in (plain, strict):
        version.refresh_from_db()
        assert version.state == VersionState.DONE
        assert rows_of(version) == rows_of(alone[version.pk]) and len(rows_of(version)) == 60
        assert_close(without_version_number(version.report.data), without_version_number(alone[version.pk].report.data))
    assert rows_of(plain) != rows_of(strict)  # the parameters matter, so mixing would show


@pytest.mark.django_db
def test_a_finished_version_is_not_finished_again_and_an_unfinished_one_waits(settings):
    project, _ = seeded_project(images=30, seed=6)
    settings.QUORUM_CONSENSUS_CHUNK_IMAGES = 10
    version = consensus_version_create(project=project, user=None)
    chunk_ids = consensus_version_start(version_id=version.pk)
    assert consensus_version_start(version_id=version.pk) == chunk_ids  # sent again: the same chunks, none done
    consensus_chunk_compute(chunk_id=chunk_ids[0])
    assert consensus_version_finish(version_id=version.pk) is None  # two chunks to go
    assert consensus_version_start(version_id=version.pk) == chunk_ids[1:]  # what is done is kept
    for chunk_id in chunk_ids[1:]:
        consensus_chunk_compute(chunk_id=chunk_id)
    assert consensus_chunk_compute(chunk_id=chunk_ids[0]) == version.pk  # a redelivered chunk: left as it is
    finished = consensus_version_finish(version_id=version.pk)
    report_written = AgreementReport.objects.get(version=version).created_at
    again = consensus_version_finish(version_id=version.pk)
    assert finished.state == again.state == VersionState.DONE and again.finished_at == finished.finished_at
    assert AgreementReport.objects.get(version=version).created_at == report_written
    assert consensus_version_start(version_id=version.pk) == []
    assert ImageConsensus.objects.filter(version=version).count() == 30


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_chunks_spread_over_two_workers_and_match_the_pass_in_this_process(settings):
    project, _ = seeded_project(images=600, seed=8)
    settings.QUORUM_CONSENSUS_CHUNK_IMAGES = 50
    environment = {"QUORUM_CONSENSUS_CHUNK_IMAGES": "50"}
    workers = [start_worker("groundtruth", f"chunks-{n}-{uuid.uuid4().hex[:6]}", env=environment) for n in range(2)]
    try:
        version = consensus_version_create(project=project, user=None)  # sent after commit
        wait_for(lambda: ConsensusVersion.objects.filter(pk=version.pk, state=VersionState.DONE).exists(), workers[0],
                 seconds=180, what="the version done")  # fmt: skip
    finally:
        for worker in workers:
            stop_worker(worker)
    version.refresh_from_db()
    chunks = ConsensusChunk.objects.filter(version=version)
    assert chunks.count() == 12 and set(chunks.values_list("state", flat=True)) == {ChunkState.DONE}
    assert len({chunk.worker for chunk in chunks}) == 2  # both workers took chunks
    assert all(chunk.peak_rss_mb > 0 for chunk in chunks)
    twin = consensus_version_create(project=project, user=None)
    consensus_version_compute(version_id=twin.pk)
    assert rows_of(version) == rows_of(twin)
    assert_close(without_version_number(version.report.data), without_version_number(twin.report.data))


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_chunk_whose_worker_process_is_killed_is_computed_again_and_the_version_finishes_once(settings):
    project, _ = seeded_project(images=2400, seed=9)
    complete = Image.objects.filter(project=project).count()
    environment = {"QUORUM_CONSENSUS_CHUNK_IMAGES": "300"}
    worker = start_worker("groundtruth", f"chunks-kill-{uuid.uuid4().hex[:6]}", env=environment, pool="prefork")
    try:
        version = consensus_version_create(project=project, user=None)
        running = wait_for(
            lambda: ConsensusChunk.objects.filter(version=version, state=ChunkState.RUNNING, index=2).first(), worker,
            seconds=120, what="the third chunk running",
        )  # fmt: skip
        pid = int(running.worker.rsplit(":", 1)[1])
        assert pid != worker.pid  # the pool's child process, as the OOM killer would pick it
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: ConsensusVersion.objects.filter(pk=version.pk, state=VersionState.DONE).exists(), worker,
                 seconds=240, what="the version done after the kill")  # fmt: skip
        time.sleep(2)  # a second finish, were one sent, would have run by now
    finally:
        stop_worker(worker)
    version.refresh_from_db()
    killed = ConsensusChunk.objects.get(version=version, index=2)
    assert killed.state == ChunkState.DONE and killed.attempts == 2
    assert ImageConsensus.objects.filter(version=version).count() == complete  # every image, once
    assert set(ImageConsensus.objects.filter(version=version).values_list("image_id", flat=True)) == set(
        Image.objects.filter(project=project).values_list("pk", flat=True)
    )
    assert AgreementReport.objects.get(version=version).created_at <= version.finished_at  # finished once
    assert version.timings["chunks"] == 8


@pytest.mark.django_db
def test_the_version_api_and_page_show_the_chunks_done(settings, client):
    project, _ = seeded_project(images=30, seed=7)
    reviewer = get_user_model().objects.create(username="lead")
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    settings.QUORUM_CONSENSUS_CHUNK_IMAGES = 10
    version = consensus_version_create(project=project, user=None)
    chunk_ids = consensus_version_start(version_id=version.pk)
    consensus_chunk_compute(chunk_id=chunk_ids[0])
    client.force_login(reviewer)
    data = client.get(f"/api/v1/consensus/{version.pk}/").json()
    assert data["state"] == "running"
    assert data["chunks"] == {"total": 3, "done": 1, "running": 0, "workers": 1}
    assert data["images"]["auto_accepted"] + data["images"]["needs_review"] == 10  # the chunk's rows, written
    page = client.get(f"/projects/{project.pk}/consensus/").content.decode()
    assert "1 of 3 chunks done" in page
