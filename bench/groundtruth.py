"""Ground-truth benchmark: a consensus version of a large project (5 simulated annotators,
8 to 16 pedestrians an image) computed in chunks by real Celery worker processes on the
`groundtruth` queue, with 1 worker (the reference) and with 2, report included; peak memory
per worker; the results of the chunked version against one pass over every image; and the
incremental update of one image after a submission.

Each side is timed 3 times, taking turns (1 worker, 2 workers, 2, 1, 1, 2), from the
version's creation to its state "done" read in the database, workers started and ready
beforehand (a new version each time). Printed: median and range, and the ratio. Peak
memory: each worker's resident peak (`ru_maxrss`) when it finished each chunk, and the peak
of the process that finished the version (merge and report), at this size and on a
3,000-image project. Identity: the 3,000-image project computed by one pass in this process
(one chunk) and in chunks by 2 workers, compared row by row and report figure by figure.

Targets: 2 workers at least 1.7x faster than 1; every worker's peak under 1 GB; the chunk
workers' peak flat in project size (at most 1.25x the 3,000-image project's); the chunked
version identical to the single pass (1e-9); one image's update at most 2x the full
version's time per image (1 worker). Exits 1 when one is missed. PostgreSQL (DATABASE_URL)
and a Redis broker (CELERY_BROKER_URL) are required: worker processes share them.

    python bench/groundtruth.py [--images 100000] [--chunk 2000]
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
import uuid

import numpy as np
from _setup import ROOT, django_test_database

PANEL = ("careful", "loose", "tight", "shifted", "sloppy")
WIDTH, HEIGHT = 1920, 1080
RUNS = 3
SPEED_TARGET = 1.7
MEMORY_TARGET_MB = 1024
FLAT_TARGET = 1.25
UPDATE_TARGET = 2.0
CHECK_IMAGES = 3000


def fill(count: int, *, name: str):
    """A project with `count` images, each annotated by the five simulated annotators; boxes
    written with COPY."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from boxes.simulate import PROFILES, simulate_annotator
    from datasets.models import Image
    from groundtruth.models import Annotation, Box
    from projects.models import Project

    project = Project.objects.create(name=name, overlap_k=len(PANEL))
    users = [get_user_model().objects.create(username=f"{name}-{profile}") for profile in PANEL]
    images = Image.objects.bulk_create(
        (
            Image(project=project, file=f"images/{name}/{i}.jpg", original_name=f"{i}.jpg", sha256=f"{project.pk:08x}{i:056x}",
                  format="jpeg", width=WIDTH, height=HEIGHT, bytes=1, split="train", submitted_count=len(PANEL),
                  conditions={"weather": ["sun", "rain", "night"][i % 3]})
            for i in range(count)
        ),
        batch_size=5000,
    )  # fmt: skip
    annotations = Annotation.objects.bulk_create(
        (Annotation(image=image, annotator=user, active_seconds=20.0) for image in images for user in users),
        batch_size=10000,
    )
    rng = np.random.default_rng(0)
    boxes = 0
    columns = "annotation_id, x1, y1, x2, y2, label, is_occluded, is_truncated, is_ignored, is_from_suggestion"
    table = Box._meta.db_table
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for index in range(len(images)):
            n = int(rng.integers(8, 17))
            heights = np.exp(rng.uniform(np.log(30), np.log(400), n))
            x, y = rng.uniform(0, WIDTH - heights * 0.4), rng.uniform(0, HEIGHT - heights)
            truth = np.column_stack([x, y, x + heights * 0.4, y + heights])
            for position, profile in enumerate(PANEL):
                drawn = simulate_annotator(truth, profile=PROFILES[profile], rng=rng, width=WIDTH, height=HEIGHT).boxes
                annotation = annotations[index * len(PANEL) + position].pk
                for a, b, c, d in drawn.round(2).tolist():
                    copy.write_row((annotation, a, b, c, d, "pedestrian", False, False, False, False))
                boxes += len(drawn)
    with connection.cursor() as cursor:
        for model in (Image, Annotation, Box):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return project, users, images, boxes


class Workers:
    """`count` solo-pool Celery workers on the groundtruth queue, on this benchmark's
    database and broker, started and answering a ping."""

    def __init__(self, count: int, *, chunk: int):
        from config.celery import app
        from tests.workers import database_url_of_this_test_database

        env = {**os.environ, "DATABASE_URL": database_url_of_this_test_database(),
               "QUORUM_CONSENSUS_CHUNK_IMAGES": str(chunk), "QUORUM_LOG_LEVEL": "WARNING"}  # fmt: skip
        self.names = [f"bench-{n}-{uuid.uuid4().hex[:6]}" for n in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "groundtruth",
                    "--pool",
                    "solo",
                    "-n",
                    f"{name}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "-l",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in self.names
        ]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            answered = app.control.ping(timeout=0.5) or []
            if len({name for reply in answered for name in reply if name.split("@")[0] in self.names}) == count:
                return
        raise SystemExit("the benchmark's workers did not start")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=60)


def version_by_workers(project, *, workers: int, chunk: int):
    """A new version computed by `workers` worker processes: (seconds, the version)."""
    from groundtruth.models import ConsensusVersion, VersionState
    from groundtruth.services import consensus_version_create

    pool = Workers(workers, chunk=chunk)
    try:
        started = time.perf_counter()
        version = consensus_version_create(project=project, user=None, reliability_weighted=False)  # sent at once
        while True:
            state = ConsensusVersion.objects.filter(pk=version.pk).values_list("state", flat=True).get()
            if state in (VersionState.DONE, VersionState.FAILED):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        pool.stop()
    version = ConsensusVersion.objects.get(pk=version.pk)
    assert version.state == VersionState.DONE, version.error
    return seconds, version


def peaks(version) -> tuple[float, float]:
    """The chunk workers' peak resident memory (MB) and the finishing process's."""
    chunk_peak = max(version.chunks.values_list("peak_rss_mb", flat=True))
    return chunk_peak, version.timings["peak_rss_mb"]


def largest_difference(got, expected) -> float:
    """The largest absolute difference between two JSON values (inf where they differ otherwise)."""
    if isinstance(expected, dict):
        if set(got) != set(expected):
            return math.inf
        return max([largest_difference(got[key], expected[key]) for key in expected] or [0.0])
    if isinstance(expected, list):
        if len(got) != len(expected):
            return math.inf
        return max([largest_difference(a, b) for a, b in zip(got, expected, strict=True)] or [0.0])
    if isinstance(expected, float) and isinstance(got, float | int):
        return abs(got - expected)
    return 0.0 if got == expected else math.inf


def rows_of(version) -> dict:
    from groundtruth.models import GroundTruthBox, ImageConsensus

    rows = {
        image: [state, count, f1, iou, uncertain, []]
        for image, state, count, f1, iou, uncertain in ImageConsensus.objects.filter(version=version).values_list(
            "image_id", "state", "annotators", "f1", "mean_iou", "uncertain"
        )
    }
    for image, *box in GroundTruthBox.objects.filter(image_consensus__version=version).values_list(
        "image_consensus__image_id", "x1", "y1", "x2", "y2", "support", "score", "is_ignore", "is_uncertain"
    ):
        rows[image][5].append(box)
    return {image: [*row[:5], sorted(row[5])] for image, row in rows.items()}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} [{min(values):.2f}, {max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=2000, help="images per chunk (QUORUM_CONSENSUS_CHUNK_IMAGES)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "CELERY_BROKER_URL", ""
    ).startswith("redis"):
        raise SystemExit("bench/groundtruth.py needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")
    with django_test_database():
        import logging

        from django.conf import settings

        logging.getLogger("celery").setLevel(logging.WARNING)
        from groundtruth.computing import consensus_version_compute
        from groundtruth.services import consensus_version_create
        from groundtruth.tasks import image_consensus_update_task

        missed = []
        # 1. The chunked version against one pass, on CHECK_IMAGES images.
        started = time.perf_counter()
        check, *_ = fill(CHECK_IMAGES, name="check")
        settings.QUORUM_CONSENSUS_CHUNK_IMAGES = CHECK_IMAGES
        single = consensus_version_create(project=check, user=None, reliability_weighted=False)
        consensus_version_compute(version_id=single.pk)
        single.refresh_from_db()
        _, chunked = version_by_workers(check, workers=2, chunk=CHECK_IMAGES // 6)
        same_rows = rows_of(chunked) == rows_of(single)
        difference = largest_difference(
            {k: v for k, v in chunked.report.data.items() if k != "version"},
            {k: v for k, v in single.report.data.items() if k != "version"},
        )
        # the memory reference: the same project in chunks of the large run's size (2,000 and
        # 1,000 images), so that only the project's size differs
        _, reference = version_by_workers(check, workers=2, chunk=args.chunk)
        small_chunk_peak, small_finish_peak = peaks(reference)
        print(f"{CHECK_IMAGES} images: one pass in this process against {chunked.chunks.count()} chunks on 2 workers: "
              f"rows {'identical' if same_rows else 'DIFFERENT'}, report's largest difference {difference:.1e} "
              f"(filled and checked in {time.perf_counter() - started:.0f} s)")  # fmt: skip
        if not same_rows or difference > 1e-9:
            missed.append("the chunked version differs from the single pass")

        # 2. The large project: 1 worker against 2.
        started = time.perf_counter()
        project, _, images, boxes = fill(args.images, name="large")
        print(f"{args.images} images x {len(PANEL)} annotators, {boxes} boxes, PostgreSQL "
              f"(filled in {time.perf_counter() - started:.0f} s); chunks of {args.chunk} images")  # fmt: skip
        seconds = {1: [], 2: []}
        versions = {}
        for order in ((1, 2), (2, 1), (1, 2))[:RUNS]:
            for workers in order:
                elapsed, versions[workers] = version_by_workers(project, workers=workers, chunk=args.chunk)
                seconds[workers].append(elapsed)
                print(f"  {workers} worker{'s' if workers > 1 else ' '}: {elapsed:7.1f} s", flush=True)
        speedup = statistics.median(seconds[1]) / statistics.median(seconds[2])
        pairs = [one / two for one, two in zip(seconds[1], seconds[2], strict=True)]
        print(f"seconds from creation to done, median [range] of {RUNS} runs")
        print(f"1 worker (reference)  : {spread(seconds[1])}")
        print(f"2 workers             : {spread(seconds[2])}")
        print(f"2 workers faster by   : {speedup:.2f}x (per pair {', '.join(f'{p:.2f}' for p in pairs)}; "
              f"target >= {SPEED_TARGET})")  # fmt: skip
        if speedup < SPEED_TARGET:
            missed.append(f"2 workers only {speedup:.2f}x faster")
        t = versions[2].timings
        print(f"  last 2-worker version: plan {t['plan']:.2f} s; summed over its {t['chunks']} chunks load "
              f"{t['load']:.1f} s, compute {t['compute']:.1f} s, write {t['write']:.1f} s; finish (merge, "
              f"report) {t['report']:.2f} s; alpha {versions[2].alpha:.4f}")  # fmt: skip
        chunk_peak, finish_peak = (max(pair) for pair in zip(peaks(versions[1]), peaks(versions[2]), strict=True))
        print(f"peak memory per worker: computing chunks {chunk_peak:.0f} MB ({small_chunk_peak:.0f} MB at "
              f"{CHECK_IMAGES} images, {chunk_peak / small_chunk_peak:.2f}x); finishing the version {finish_peak:.0f} MB "
              f"({small_finish_peak:.0f} MB at {CHECK_IMAGES}); targets < {MEMORY_TARGET_MB} MB, chunks <= "
              f"{FLAT_TARGET}x")  # fmt: skip
        if max(chunk_peak, finish_peak) >= MEMORY_TARGET_MB:
            missed.append(f"a worker peaked at {max(chunk_peak, finish_peak):.0f} MB")
        if chunk_peak > FLAT_TARGET * small_chunk_peak:
            missed.append("the chunk workers' memory grows with the project")

        # 3. One image's update against the full version's time per image (1 worker).
        times = []
        for image in images[:20]:
            started = time.perf_counter()
            image_consensus_update_task.apply(args=[image.pk]).get()
            times.append((time.perf_counter() - started) * 1000)
        per_image = statistics.median(times) / 1000 / statistics.median(seconds[1]) * args.images
        print(f"incremental update of one image (median of 20): {statistics.median(times):.1f} ms = {per_image:.2f}x "
              f"the full version's time per image on 1 worker (target <= {UPDATE_TARGET})")  # fmt: skip
        if per_image > UPDATE_TARGET:
            missed.append(f"one image's update costs {per_image:.2f}x")
        if missed:
            print("MISSED: " + "; ".join(missed))
            raise SystemExit(1)


if __name__ == "__main__":
    main()
