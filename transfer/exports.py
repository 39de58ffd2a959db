"""Exports of a project's boxes as COCO JSON, a YOLO dataset, Pascal VOC, Label Studio JSON
or CVAT for images XML, streamed.

Nothing is built in memory: images are read from the database a page at a time and each
piece of the file is sent as soon as it is made, so memory stays flat whatever the size of
the project. The boxes come from one source: one annotator's current submissions, the
gold references, or a consensus version's ground truth (adjudications included, ignore
regions as crowds, below-quorum clusters left out, each box's support kept). Label Studio
JSON also takes every annotator's submissions (each their own annotation) and the models'
suggestions (as predictions with their scores).
"""

import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from annotation.models import Suggestion
from boxes.cvat import cvat_iter_xml
from boxes.formats import Author, FormatBox, FormatImage, coco_iter_json, voc_write, yolo_data_yaml, yolo_label_text
from boxes.labelstudio import Task, labelstudio_iter_json
from config.media import storage_read
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind, Box, GroundTruthBox, ImageConsensus
from projects.models import Project

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
        if self.kind == PANEL:
            return "every annotator's current submissions"
        if self.kind == SUGGESTIONS:
            return "the models' suggestions"
        return f"the current submissions of user {self.annotator_id}"


VERSION = "version"
PANEL = "panel"  # every annotator's submissions (Label Studio only)
SUGGESTIONS = "suggestions"  # the models' suggestions, as predictions (Label Studio only)


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


YOLO_LAYOUTS = ("splits", "flat")


def export_yolo(*, project: Project, source: ExportSource, layout: str = "splits") -> Iterator[bytes]:
    """A zip of an Ultralytics dataset: data.yaml and classes.txt (the class list Label
    Studio's converter and darknet tools read), then images/<split>/ and labels/<split>/, or,
    with `layout="flat"`, images/ and labels/ (the layout Label Studio's converter imports)."""
    splits = {"train": "images/train", "val": "images/val", "test": "images/test"}
    if layout == "flat":
        splits = {"train": "images", "val": "images"}

    def files() -> Iterator[tuple[str, bytes]]:
        yield "data.yaml", yolo_data_yaml(labels=project.labels, splits=splits).encode()
        yield "classes.txt", "".join(f"{label}\n" for label in project.labels).encode()
        # Every split folder exists, even an empty one, as ultralytics' dataset check expects.
        for folder in dict.fromkeys(splits.values()):
            yield f"{folder}/", b""
            yield f"labels{folder.removeprefix('images')}/", b""
        for row in export_rows(project=project, source=source):
            stem = PurePosixPath(row.image.file_name).stem
            folder = "" if layout == "flat" else f"/{row.split}"
            yield f"labels{folder}/{stem}.txt", yolo_label_text(row.image, labels=list(project.labels)).encode()
            yield f"images{folder}/{row.image.file_name}", _stored_bytes(row.file)

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


def export_cvat(*, project: Project, source: ExportSource) -> Iterator[str]:
    """CVAT for images 1.1 XML: one <image> per annotated image, its split as the subset."""
    return cvat_iter_xml(
        ((row.image, row.split) for row in export_rows(project=project, source=source)),
        labels=project.labels,
        name=f"{project.name}: {source.description}",
    )


DEFAULT_IMAGE_ROOT = "/data/local-files/?d=images/"


def export_labelstudio(
    *, project: Project, source: ExportSource, image_root: str = DEFAULT_IMAGE_ROOT
) -> Iterator[str]:
    """Label Studio JSON: one task per image, its image referenced as `image_root` + its
    export name (by default where Label Studio's local file storage finds the images of the
    flat YOLO export). Ground truth and gold are annotations marked ground_truth; one
    annotator's or every annotator's submissions are annotations by their authors; the
    models' suggestions are predictions with their scores."""
    if source.kind == PANEL:
        tasks = _panel_tasks(project, image_root)
    elif source.kind == SUGGESTIONS:
        tasks = _suggestion_tasks(project, image_root)
    else:
        author = None
        if source.kind == AnnotationKind.SUBMISSION:
            user = get_user_model().objects.get(pk=source.annotator_id)
            author = _author(user.pk, user.email)
        is_reference = source.kind != AnnotationKind.SUBMISSION
        tasks = (
            Task(
                image_id=row.image_id,
                reference=image_root + row.image.file_name,
                width=row.image.width,
                height=row.image.height,
                annotations=((author, row.image.boxes, is_reference),),
                meta={"quorum_image_id": row.image_id, "split": row.split},
            )
            for row in export_rows(project=project, source=source)
        )
    return labelstudio_iter_json(tasks)


def _author(user_id: int, email: str) -> Author:
    return Author(key=str(user_id), email=email or "")


def _image_pages(project: Project, image_ids) -> Iterator[list[tuple[int, str, int, int, str]]]:
    """(id, export name, width, height, split) of the images `image_ids` (a queryset of ids,
    in order), a page at a time."""
    last = 0
    while True:
        ids = list(
            image_ids.filter(image_id__gt=last)
            .order_by("image_id")
            .values_list("image_id", flat=True)
            .distinct()[:PAGE]
        )
        if not ids:
            return
        rows = list(
            Image.objects.filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "original_name", "width", "height", "split")
        )
        names = _page_names(project, [(pk, original) for pk, original, *_ in rows])
        yield [(pk, names[pk], width, height, split) for pk, _, width, height, split in rows]
        last = ids[-1]


def _panel_tasks(project: Project, image_root: str) -> Iterator[Task]:
    submissions = Annotation.objects.filter(image__project=project, kind=AnnotationKind.SUBMISSION, is_current=True)
    for page in _image_pages(project, submissions):
        rows = list(
            submissions.filter(image_id__in=[row[0] for row in page])
            .order_by("image_id", "annotator__username")
            .values_list("pk", "image_id", "annotator_id", "annotator__email")
        )
        boxes = _annotation_boxes([row[0] for row in rows])
        by_image: dict[int, list] = {}
        for annotation_id, image_id, user_id, email in rows:
            by_image.setdefault(image_id, []).append(
                (_author(user_id, email), tuple(boxes.get(annotation_id, ())), False)
            )
        for image_id, name, width, height, split in page:
            yield Task(
                image_id=image_id,
                reference=image_root + name,
                width=width,
                height=height,
                annotations=tuple(by_image.get(image_id, ())),
                meta={"quorum_image_id": image_id, "split": split},
            )


def _suggestion_tasks(project: Project, image_root: str) -> Iterator[Task]:
    suggestions = Suggestion.objects.filter(image__project=project)
    for page in _image_pages(project, suggestions):
        found = {
            image_id: (source, boxes)
            for image_id, source, boxes in suggestions.filter(image_id__in=[row[0] for row in page]).values_list(
                "image_id", "source", "boxes"
            )
        }
        for image_id, name, width, height, split in page:
            model, raw = found[image_id]
            boxes = tuple(
                FormatBox(b["x1"], b["y1"], b["x2"], b["y2"], b.get("label") or project.labels[0], score=b.get("score"))
                for b in raw
            )
            yield Task(
                image_id=image_id,
                reference=image_root + name,
                width=width,
                height=height,
                predictions=((model, boxes),),
                meta={"quorum_image_id": image_id, "split": split},
            )


def _stored_bytes(name: str) -> bytes:
    return storage_read(name)


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
