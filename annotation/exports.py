"""Exports of a project's boxes as COCO JSON, a YOLO dataset or Pascal VOC, streamed.

Nothing is built in memory: images are read from the database a page at a time and each
piece of the file is sent as soon as it is made, so memory stays flat whatever the size of
the project. The boxes come from one source: one annotator's current submissions, the
gold references, or a consensus version's ground truth (adjudications included, ignore
regions as crowds, below-quorum clusters left out, each box's support kept).
"""

import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from annotation.models import Annotation, AnnotationKind, Box, Image, Project
from boxes.formats import FormatBox, FormatImage, coco_iter_json, voc_write, yolo_data_yaml, yolo_label_text

PAGE = 500


@dataclass(frozen=True)
class ExportSource:
    """Whose boxes to export: an annotator's submissions (`annotator_id`) or the gold references."""

    kind: str  # AnnotationKind value, or VERSION
    annotator_id: int | None = None
    version_id: int | None = None
    version_number: int | None = None

    @property
    def description(self) -> str:
        if self.kind == AnnotationKind.GOLD:
            return "gold reference boxes"
        if self.kind == VERSION:
            return f"ground truth of consensus version {self.version_number}"
        return f"the current submissions of user {self.annotator_id}"


VERSION = "version"


def _export_name(image_id: int, original: str, *, is_clash: bool) -> str:
    name = original.replace("\\", "/").replace("/", "__")
    if is_clash:
        path = PurePosixPath(name)
        name = f"{path.stem}-{image_id}{path.suffix}"
    return name


def _flat(original: str) -> str:
    return original.replace("\\", "/").replace("/", "__")


def _unflattened(flat: str) -> set[str]:
    """Every original name that flattens to `flat` ("a__b.jpg": a__b.jpg, a/b.jpg, a\\b.jpg)."""
    parts = flat.split("__")
    names = {parts[0]}
    for part in parts[1:]:
        names = {f"{name}{joint}{part}" for name in names for joint in ("__", "/", "\\")}
    return names


def export_file_names(project: Project) -> dict[int, str]:
    """image id -> the name it has in exports: its original name with folders flattened
    ("day/a.jpg" -> "day__a.jpg"), or "<stem>-<id><suffix>" when another image of the project
    has the same original name or flattened name. Imports match names the same way, so
    exported files import back onto the same images."""
    rows = list(Image.objects.filter(project=project).values_list("pk", "original_name"))
    flat_counts = Counter(_flat(original) for _, original in rows)
    return {
        image_id: _export_name(image_id, original, is_clash=flat_counts[_flat(original)] > 1)
        for image_id, original in rows
    }


def _page_names(project: Project, page: list[tuple[int, str]]) -> dict[int, str]:
    """`export_file_names` for one page of (id, original name), with one query, so that an
    export's memory does not grow with the project."""
    candidates = {variant for _, original in page for variant in _unflattened(_flat(original))}
    others = Counter(
        _flat(original)
        for original in Image.objects.filter(project=project, original_name__in=candidates).values_list(
            "original_name", flat=True
        )
    )
    return {
        image_id: _export_name(image_id, original, is_clash=others[_flat(original)] > 1) for image_id, original in page
    }


def _annotations(project: Project, source: ExportSource) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(image__project=project, kind=source.kind, is_current=True)
    if source.kind == AnnotationKind.SUBMISSION:
        annotations = annotations.filter(annotator_id=source.annotator_id)
    return annotations


@dataclass(frozen=True)
class ExportRow:
    image_id: int
    split: str
    file: str  # storage name of the stored image
    image: FormatImage


BOX_FIELDS = ("annotation_id", "x1", "y1", "x2", "y2", "label", "is_ignored", "is_occluded", "is_truncated")


PAGE_FIELDS = ("pk", "image_id", "image__original_name", "image__width", "image__height", "image__split", "image__file")


def export_rows(*, project: Project, source: ExportSource, with_boxes: bool = True) -> Iterator[ExportRow]:
    """The source's annotated images in id order, read a page at a time (plain tuples, not
    model instances), each with its boxes in the `boxes.formats` form."""
    if source.kind == VERSION:
        from groundtruth.models import ImageConsensus

        rows = ImageConsensus.objects.filter(version_id=source.version_id, version__project=project)
        boxes_of = _ground_truth_boxes(project)
    else:
        rows = _annotations(project, source)
        boxes_of = _annotation_boxes
    last = 0
    while True:
        page = list(rows.filter(image_id__gt=last).order_by("image_id").values_list(*PAGE_FIELDS)[:PAGE])
        if not page:
            return
        names = _page_names(project, [(row[1], row[2]) for row in page])
        boxes = boxes_of([row[0] for row in page]) if with_boxes else {}
        for row_id, image_id, _, width, height, split, file in page:
            image = FormatImage(
                file_name=names[image_id], width=width, height=height, boxes=tuple(boxes.get(row_id, ()))
            )
            yield ExportRow(image_id=image_id, split=split, file=file, image=image)
        last = page[-1][1]


def _annotation_boxes(annotation_ids: list[int]) -> dict[int, list[FormatBox]]:
    """The boxes of these annotations, by annotation id."""
    boxes: dict[int, list[FormatBox]] = {}
    for annotation_id, *values in (
        Box.objects.filter(annotation_id__in=annotation_ids).order_by("pk").values_list(*BOX_FIELDS)
    ):
        x1, y1, x2, y2, label, ignored, occluded, truncated = values
        boxes.setdefault(annotation_id, []).append(
            FormatBox(x1, y1, x2, y2, label, is_ignored=ignored, is_occluded=occluded, is_truncated=truncated)
        )
    return boxes


def _ground_truth_boxes(project: Project):
    """A reader of consensus rows' ground-truth boxes (below-quorum clusters left out), by row id."""
    from groundtruth.models import GroundTruthBox

    label = project.labels[0]

    def read(row_ids: list[int]) -> dict[int, list[FormatBox]]:
        boxes: dict[int, list[FormatBox]] = {}
        for row_id, x1, y1, x2, y2, ignored, support in (
            GroundTruthBox.objects.filter(image_consensus_id__in=row_ids, is_uncertain=False)
            .order_by("pk")
            .values_list("image_consensus_id", "x1", "y1", "x2", "y2", "is_ignore", "support")
        ):
            boxes.setdefault(row_id, []).append(FormatBox(x1, y1, x2, y2, label, is_ignored=ignored, support=support))
        return boxes

    return read


def export_coco(*, project: Project, source: ExportSource) -> Iterator[str]:
    info = {
        "description": f"{project.name}: {source.description}",
        "contributor": "Quorum",
        "synthetic": project.images.filter(is_synthetic=True).exists(),
    }
    return coco_iter_json(
        images=lambda: (row.image for row in export_rows(project=project, source=source, with_boxes=False)),
        annotated=lambda: (row.image for row in export_rows(project=project, source=source)),
        labels=project.labels,
        info=info,
    )


def export_yolo(*, project: Project, source: ExportSource) -> Iterator[bytes]:
    """A zip of an Ultralytics dataset: data.yaml, images/<split>/, labels/<split>/."""
    splits = {"train": "images/train", "val": "images/val", "test": "images/test"}

    def files() -> Iterator[tuple[str, bytes]]:
        yield "data.yaml", yolo_data_yaml(labels=project.labels, splits=splits).encode()
        # Every split folder exists, even an empty one, as ultralytics' dataset check expects.
        for split in splits:
            yield f"images/{split}/", b""
            yield f"labels/{split}/", b""
        for row in export_rows(project=project, source=source):
            stem = PurePosixPath(row.image.file_name).stem
            yield f"labels/{row.split}/{stem}.txt", yolo_label_text(row.image, labels=list(project.labels)).encode()
            yield f"images/{row.split}/{row.image.file_name}", _stored_bytes(row.file)

    return zip_stream(files())


def export_voc(*, project: Project, source: ExportSource) -> Iterator[bytes]:
    """A zip in the Pascal VOC layout: Annotations/*.xml, JPEGImages/*, ImageSets/Main/<split>.txt."""

    def files() -> Iterator[tuple[str, bytes]]:
        members: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for row in export_rows(project=project, source=source):
            stem = PurePosixPath(row.image.file_name).stem
            members[row.split].append(stem)
            yield f"Annotations/{stem}.xml", voc_write(row.image)
            yield f"JPEGImages/{row.image.file_name}", _stored_bytes(row.file)
        for split, stems in members.items():
            yield f"ImageSets/Main/{split}.txt", ("\n".join(stems) + "\n" if stems else "").encode()

    return zip_stream(files())


def _stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
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


def _member(name: str) -> zipfile.ZipInfo:
    """A member dated 1980-01-01 (the zip epoch), so that the same export gives the same
    bytes whenever it runs; folders and files get the modes zipfile gives them."""
    info = zipfile.ZipInfo(filename=name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (0o40775 << 16) | 0x10 if name.endswith("/") else 0o600 << 16
    return info


def zip_stream(files: Iterator[tuple[str, bytes]]) -> Iterator[bytes]:
    """A zip archive made on the fly from (name, bytes) pairs, one member in memory at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files:
            # Images are compressed already; text is worth deflating.
            compression = zipfile.ZIP_STORED if name.startswith(("images/", "JPEGImages/")) else zipfile.ZIP_DEFLATED
            bundle.writestr(_member(name), data, compress_type=compression)
            chunk = sink.drain()
            if chunk:
                yield chunk
    yield sink.drain()
