"""Ground-truth benchmark: a full consensus version of a 10,000-image project (5 annotators,
about 12 boxes each) from the database through the Celery task, report included, split
into load, compute, write and report; then the incremental update of one image after a
submission, in worker milliseconds.

The reference measured in the same run is the bare read of the same rows (every current
submission's boxes, one query, no computation): the version's time is printed as a
multiple of it. Each is measured 3 times, taking turns (a new version each time); the
median and range are printed. Target: the incremental update of one image (after a
submission) costs at most `TARGET` times the full version's time per image, so that keeping
the current version up to date never costs more than recomputing it would; exits 1 when it
is over. SQLite by default, or DATABASE_URL's server.

    python bench/groundtruth.py [--images N]
"""

import argparse
import statistics
import time

import numpy as np
from _setup import django_test_database

PANEL = ("careful", "loose", "tight", "shifted", "sloppy")
WIDTH, HEIGHT = 1920, 1080
RUNS = 3
TARGET = 2.0


def fill(count: int):
    """A project with `count` images, each annotated by the five simulated annotators."""
    from django.contrib.auth import get_user_model

    from boxes.simulate import PROFILES, simulate_annotator
    from datasets.models import Image
    from groundtruth.models import Annotation, Box
    from projects.models import Project

    project = Project.objects.create(name="Bench", overlap_k=len(PANEL))
    users = [get_user_model().objects.create(username=f"bench-{name}") for name in PANEL]
    images = Image.objects.bulk_create(
        (
            Image(project=project, file=f"images/{i}.jpg", original_name=f"{i}.jpg", sha256=f"{i:064x}",
                  format="jpeg", width=WIDTH, height=HEIGHT, bytes=1, split="train", submitted_count=len(PANEL),
                  conditions={"weather": ["sun", "rain", "night"][i % 3]})
            for i in range(count)
        ),
        batch_size=2000,
    )  # fmt: skip
    annotations = Annotation.objects.bulk_create(
        (Annotation(image=image, annotator=user, active_seconds=20.0) for image in images for user in users),
        batch_size=5000,
    )
    rng = np.random.default_rng(0)
    rows = []
    for index in range(len(images)):
        n = int(rng.integers(8, 17))
        heights = np.exp(rng.uniform(np.log(30), np.log(400), n))
        x, y = rng.uniform(0, WIDTH - heights * 0.4), rng.uniform(0, HEIGHT - heights)
        truth = np.column_stack([x, y, x + heights * 0.4, y + heights])
        for position, name in enumerate(PANEL):
            drawn = simulate_annotator(truth, profile=PROFILES[name], rng=rng, width=WIDTH, height=HEIGHT).boxes
            annotation = annotations[index * len(PANEL) + position]
            rows.extend(Box(annotation=annotation, x1=a, y1=b, x2=c, y2=d) for a, b, c, d in drawn.round(2).tolist())
    Box.objects.bulk_create(rows, batch_size=10000)
    return project, users, images, len(rows)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} [{min(values):.2f}, {max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with django_test_database():
        import logging

        from django.db import connection

        logging.getLogger("celery").setLevel(logging.WARNING)

        from groundtruth.models import Box, ConsensusVersion
        from groundtruth.services import consensus_version_create
        from groundtruth.tasks import consensus_version_compute_task, image_consensus_update_task

        started = time.perf_counter()
        project, users, images, boxes = fill(args.images)
        print(f"{args.images} images x {len(PANEL)} annotators, {boxes} boxes, on {connection.vendor} "
              f"(filled in {time.perf_counter() - started:.1f} s)")  # fmt: skip

        bares, totals = [], []
        for _ in range(RUNS):
            started = time.perf_counter()
            read = len(
                Box.objects.filter(annotation__image__project=project, annotation__is_current=True).values_list(
                    "annotation__image_id", "annotation__annotator_id", "x1", "y1", "x2", "y2", "is_ignored"
                )
            )
            bares.append(time.perf_counter() - started)
            version = consensus_version_create(project=project, user=users[0])
            started = time.perf_counter()
            consensus_version_compute_task.apply(args=[version.pk]).get()
            totals.append(time.perf_counter() - started)
            version = ConsensusVersion.objects.get(pk=version.pk)
            assert version.state == "done", version.error
        ratios = [total / bare for total, bare in zip(totals, bares, strict=True)]
        total = statistics.median(totals)
        t = version.timings
        print(f"seconds, median [range] of {RUNS} runs")
        print(f"bare read of the {read} boxes (reference)          : {spread(bares)}")
        print(f"full version through the task, report included     : {spread(totals)}   = {spread(ratios)}x the bare "
              "read")  # fmt: skip
        print(
            f"  last run: load {t['load']:.2f} s, compute {t['compute']:.2f} s, write {t['write']:.2f} s, report {t['report']:.2f} s"
        )
        print(
            f"  {version.images.count()} images, alpha {version.alpha:.4f} [{version.alpha_low:.4f}, {version.alpha_high:.4f}]"
        )

        times = []
        for image in images[:20]:
            started = time.perf_counter()
            image_consensus_update_task.apply(args=[image.pk]).get()
            times.append((time.perf_counter() - started) * 1000)
        print(f"incremental update of one image (median of 20)     : {statistics.median(times):7.1f} ms"
              f"   = {statistics.median(times) / 1000 / total * args.images:.2f}x the full version's time per image")  # fmt: skip
        per_image = statistics.median(times) / 1000 / total * args.images
        print(f"  (target: at most {TARGET:.1f}x)")
        if per_image > TARGET:
            print(f"MISSED: one image's update costs {per_image:.2f}x the full version's time per image")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
