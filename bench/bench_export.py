"""Export benchmark: COCO export of a 10,000-image project with 10 boxes per image.

Prints the seconds and the peak Python memory of Quorum's streamed export, at 2,500 and at
10,000 images (memory must stay flat: about one page of rows, whatever the project size),
and, as the reference measured in the same run, the same file built the obvious way: every
row loaded, one dict, one json.dumps. Each side's time is measured 3 times, alternating
(median and range printed). The target is what streaming is for: the streamed export's
peak memory at 10,000 images at most 1.5x that at 2,500 (flat); exits 1 when it is not.
Its time against the reference is printed, the price of reading page by page (3.3x at
10,000 images on the 2-core development machine).
"""

import json
import statistics
import time
import tracemalloc

from _setup import django_test_database

BOXES_PER_IMAGE = 10
SIZES = (2_500, 10_000)
RUNS = 3


def fill(project, annotator, count: int, start: int) -> None:
    from datasets.models import Image
    from groundtruth.models import Annotation, AnnotationKind, AnnotationSource, Box

    images = Image.objects.bulk_create(
        Image(
            project=project,
            file=f"images/{i}.jpg",
            original_name=f"street_{i:06d}.jpg",
            sha256=f"{i:064x}",
            format="jpeg",
            width=1920,
            height=1080,
            bytes=1,
            conditions={"weather": "rain"},
            stratum="weather=rain",
            split="train",
        )
        for i in range(start, start + count)
    )
    annotations = Annotation.objects.bulk_create(
        Annotation(image=image, annotator=annotator, kind=AnnotationKind.SUBMISSION, source=AnnotationSource.IMPORT)
        for image in images
    )
    Box.objects.bulk_create(
        (
            Box(annotation=annotation, x1=10.0 * b, y1=20.0, x2=10.0 * b + 30.5, y2=120.25, label="pedestrian")
            for annotation in annotations
            for b in range(BOXES_PER_IMAGE)
        ),
        batch_size=5000,
    )


def streamed(project, source) -> tuple[float, int]:
    from transfer.exports import export_coco

    started = time.perf_counter()
    size = sum(len(piece) for piece in export_coco(project=project, source=source))
    return time.perf_counter() - started, size


def in_memory(project, annotator) -> tuple[float, int]:
    from datasets.models import Image
    from groundtruth.models import Box

    started = time.perf_counter()
    images = list(Image.objects.filter(project=project).order_by("pk").values("pk", "original_name", "width", "height"))
    boxes = list(
        Box.objects.filter(annotation__image__project=project, annotation__annotator=annotator).values_list(
            "annotation__image_id", "x1", "y1", "x2", "y2", "is_ignored"
        )
    )
    document = {
        "images": [
            {"id": i["pk"], "file_name": i["original_name"], "width": i["width"], "height": i["height"]} for i in images
        ],
        "annotations": [
            {
                "id": n,
                "image_id": b[0],
                "category_id": 1,
                "bbox": [b[1], b[2], b[3] - b[1], b[4] - b[2]],
                "iscrowd": int(b[5]),
            }
            for n, b in enumerate(boxes, start=1)
        ],
        "categories": [{"id": 1, "name": "pedestrian"}],
    }
    size = len(json.dumps(document))
    return time.perf_counter() - started, size


def peak(function, *args) -> int:
    tracemalloc.start()
    function(*args)
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s [{min(values):.2f}, {max(values):.2f}]"


def main() -> None:
    with django_test_database():
        from groundtruth.models import AnnotationKind
        from projects.models import Project
        from tests.factories import UserFactory
        from transfer.exports import ExportSource

        annotator = UserFactory(username="bench-annotator")
        project = Project.objects.create(name="export bench")
        source = ExportSource(kind=AnnotationKind.SUBMISSION, annotator_id=annotator.pk)
        print(f"export: COCO, {BOXES_PER_IMAGE} boxes per image, {RUNS} runs a side")
        done = 0
        peaks, time_ratios = {}, []
        for count in SIZES:
            fill(project, annotator, count - done, done)
            done = count
            ours, reference = [], []
            for _ in range(RUNS):
                seconds, size = streamed(project, source)
                ours.append(seconds)
                reference.append(in_memory(project, annotator)[0])
            peaks[count] = peak(streamed, project, source)
            reference_peak = peak(in_memory, project, annotator)
            ratios = [a / b for a, b in zip(ours, reference, strict=True)]
            time_ratios.append(statistics.median(ratios))
            print(f"  {count:>6} images ({size / 2**20:.1f} MiB of JSON):")
            print(f"    Quorum streamed export:   {spread(ours)}, peak memory {peaks[count] / 2**20:7.1f} MiB")
            print(f"    reference, all in memory: {spread(reference)}, peak memory {reference_peak / 2**20:7.1f} MiB")
            print(f"    streamed / reference: time {statistics.median(ratios):.2f} [{min(ratios):.2f}, "
                  f"{max(ratios):.2f}], memory {peaks[count] / reference_peak:.3f}")  # fmt: skip
        small, large = SIZES
        growth = peaks[large] / peaks[small]
        print(f"  streamed peak memory, {large} vs {small} images: {growth:.2f}x (flat is 1.0; target <= 1.5)")
        print(f"  streamed time / reference at {large}: {time_ratios[-1]:.2f} (the price of flat memory)")
        if growth > 1.5:
            print("MISSED: the streamed export's memory grew with the project")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
