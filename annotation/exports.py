"""Exports of a project's boxes as COCO JSON, a YOLO dataset or Pascal VOC, streamed.

Nothing is built in memory: images are read from the database a page at a time and each
piece of the file is sent as soon as it is made, so memory stays flat whatever the size of
the project. The boxes come from one source: one annotator's current submissions, or the
gold references. (Ground-truth versions join the sources with the ground-truth issue.)
"""

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.core.files.storage import default_storage
from django.db.models import Prefetch, QuerySet

from annotation.models import Annotation, AnnotationKind, Box, Image, Project
from boxes.formats import FormatBox, FormatImage, coco_iter_json, voc_write, yolo_data_yaml, yolo_label_text

PAGE = 500


@dataclass(frozen=True)
class ExportSource:
    """Whose boxes to export: an annotator's submissions (`annotator_id`) or the gold references."""

    kind: str  # AnnotationKind value
    annotator_id: int | None = None

    @property
    def description(self) -> str:
        if self.kind == AnnotationKind.GOLD:
            return "gold reference boxes"
        return f"the current submissions of user {self.annotator_id}"


def export_file_names(project: Project) -> dict[int, str]:
    """image id -> the name it has in exports: its original name with folders flattened
    ("day/a.jpg" -> "day__a.jpg"), made unique by adding "-<id>" where two would clash.
    Imports match names the same way, so exported files import back onto the same images."""
    names: dict[int, str] = {}
    taken: set[str] = set()
    for image_id, original in Image.objects.filter(project=project).order_by("pk").values_list("pk", "original_name"):
        name = original.replace("\\", "/").replace("/", "__")
        if name in taken:
            path = PurePosixPath(name)
            name = f"{path.stem}-{image_id}{path.suffix}"
        taken.add(name)
        names[image_id] = name
    return names


def _annotations(project: Project, source: ExportSource) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(image__project=project, kind=source.kind, is_current=True)
    if source.kind == AnnotationKind.SUBMISSION:
        annotations = annotations.filter(annotator_id=source.annotator_id)
    return annotations


def export_images(*, project: Project, source: ExportSource) -> Callable[[], Iterator[tuple[Image, FormatImage]]]:
    """A function that, each time it is called, walks the source's annotated images in id
    order, a page at a time, giving each image with its boxes in the `boxes.formats` form."""
    names = export_file_names(project)

    def walk() -> Iterator[tuple[Image, FormatImage]]:
        annotations = _annotations(project, source)
        last = 0
        while True:
            page = list(
                annotations.filter(image_id__gt=last)
                .select_related("image")
                .prefetch_related(Prefetch("boxes", queryset=Box.objects.order_by("pk")))
                .order_by("image_id")[:PAGE]
            )
            if not page:
                return
            for annotation in page:
                image = annotation.image
                yield (
                    image,
                    FormatImage(
                        file_name=names[image.pk],
                        width=image.width,
                        height=image.height,
                        boxes=tuple(format_box(box) for box in annotation.boxes.all()),
                    ),
                )
            last = page[-1].image_id

    return walk


def format_box(box: Box) -> FormatBox:
    return FormatBox(
        x1=box.x1,
        y1=box.y1,
        x2=box.x2,
        y2=box.y2,
        label=box.label,
        is_ignored=box.is_ignored,
        is_occluded=box.is_occluded,
        is_truncated=box.is_truncated,
    )


def export_coco(*, project: Project, source: ExportSource) -> Iterator[str]:
    walk = export_images(project=project, source=source)
    info = {
        "description": f"{project.name}: {source.description}",
        "contributor": "Quorum",
        "synthetic": project.images.filter(is_synthetic=True).exists(),
    }
    return coco_iter_json(lambda: (image for _, image in walk()), labels=project.labels, info=info)


def export_yolo(*, project: Project, source: ExportSource) -> Iterator[bytes]:
    """A zip of an Ultralytics dataset: data.yaml, images/<split>/, labels/<split>/."""
    walk = export_images(project=project, source=source)
    splits = {"train": "images/train", "val": "images/val", "test": "images/test"}

    def files() -> Iterator[tuple[str, bytes]]:
        yield "data.yaml", yolo_data_yaml(labels=project.labels, splits=splits).encode()
        # Every split folder exists, even an empty one, as ultralytics' dataset check expects.
        for split in splits:
            yield f"images/{split}/", b""
            yield f"labels/{split}/", b""
        for image, exported in walk():
            stem = PurePosixPath(exported.file_name).stem
            yield f"labels/{image.split}/{stem}.txt", yolo_label_text(exported, labels=list(project.labels)).encode()
            yield f"images/{image.split}/{exported.file_name}", _stored_bytes(image)

    return zip_stream(files())


def export_voc(*, project: Project, source: ExportSource) -> Iterator[bytes]:
    """A zip in the Pascal VOC layout: Annotations/*.xml, JPEGImages/*, ImageSets/Main/<split>.txt."""
    walk = export_images(project=project, source=source)

    def files() -> Iterator[tuple[str, bytes]]:
        members: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for image, exported in walk():
            stem = PurePosixPath(exported.file_name).stem
            members[image.split].append(stem)
            yield f"Annotations/{stem}.xml", voc_write(exported)
            yield f"JPEGImages/{exported.file_name}", _stored_bytes(image)
        for split, stems in members.items():
            yield f"ImageSets/Main/{split}.txt", ("\n".join(stems) + "\n" if stems else "").encode()

    return zip_stream(files())


def _stored_bytes(image: Image) -> bytes:
    with default_storage.open(image.file.name, "rb") as stored:
        return stored.read()


class _Sink:
    """A write-only file for zipfile that hands back what was written since the last drain."""

    def __init__(self):
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


def zip_stream(files: Iterator[tuple[str, bytes]]) -> Iterator[bytes]:
    """A zip archive made on the fly from (name, bytes) pairs, one member in memory at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files:
            # Images are compressed already; text is worth deflating.
            compression = zipfile.ZIP_STORED if name.startswith(("images/", "JPEGImages/")) else zipfile.ZIP_DEFLATED
            bundle.writestr(name, data, compress_type=compression)
            chunk = sink.drain()
            if chunk:
                yield chunk
    yield sink.drain()
