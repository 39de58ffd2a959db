"""Importing boxes made elsewhere: COCO, YOLO, Pascal VOC and Label Studio exports.

Imported boxes become either one named annotator's submitted annotations (a new revision
where they already had one; the old one is kept) or gold reference boxes. An import is all
or nothing: any problem (an unknown image, an unknown label, a size that does not match,
a bad box) refuses the whole file with every problem listed, and writes nothing.
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from annotation.archives import zip_open, zip_read_member, zip_unsafe_reason
from annotation.exports import export_file_names
from annotation.imaging import ImageRefused
from annotation.models import Annotation, AnnotationKind, AnnotationSource, Box, Image, Membership, Project, Role
from boxes.formats import Dataset, FormatError, coco_read, labelstudio_read, voc_read, yolo_names, yolo_read
from config.errors import ValidationFailed

FORMATS = ("coco", "yolo", "voc", "labelstudio")
TARGETS = ("annotator", "gold")


@dataclass(frozen=True)
class ImportSummary:
    format: str
    target: str
    annotator: str
    images: int
    boxes: int
    revised: int  # images where an earlier annotation of the same person was superseded


def _refuse(message: str, problems: list[str]) -> ValidationFailed:
    return ValidationFailed(
        f"{message}: {len(problems)} problem(s); nothing was imported.", fields={"problems": problems}
    )


class _ImageIndex:
    """Finds a project's images by the names an export or another tool gives them."""

    def __init__(self, project: Project):
        images = {image.pk: image for image in Image.objects.filter(project=project)}
        self.by_name: dict[str, Image | None] = {}
        self.by_stem: dict[str, Image | None] = {}
        self.export_names = export_file_names(project)
        for image_id, export_name in self.export_names.items():
            image = images[image_id]
            for name in {export_name, image.original_name, PurePosixPath(image.original_name).name}:
                self._add(self.by_name, name, image)
            for name in {export_name, PurePosixPath(image.original_name).name}:
                self._add(self.by_stem, PurePosixPath(name).stem, image)

    @staticmethod
    def _add(index: dict, key: str, image: Image) -> None:
        # A name two different images answer to is ambiguous: None marks it.
        index[key] = image if index.get(key, image) == image else None

    def find(self, name: str) -> Image | None:
        return self.by_name.get(name) or self.by_name.get(PurePosixPath(name).name)


def import_dataset_read(
    *, project: Project, fmt: str, upload: BinaryIO, upload_name: str, size: int, clip: bool
) -> Dataset:
    """Parse an uploaded import file into a `Dataset` with file names of the project's images."""
    if size > settings.QUORUM_MAX_IMPORT_BYTES:
        raise ImageRefused(
            "too_large",
            f"The import file is {size / 2**20:.1f} MiB; "
            f"the limit is {settings.QUORUM_MAX_IMPORT_BYTES / 2**20:.0f} MiB.",
            status=413,
        )
    try:
        if fmt == "coco":
            return coco_read(upload.read(), clip=clip)
        if fmt == "labelstudio":
            return labelstudio_read(upload.read(), clip=clip)
        if fmt == "voc":
            if upload_name.lower().endswith(".xml"):
                return voc_read({upload_name: upload.read()}, clip=clip)
            return voc_read(_zip_texts(upload, size=size, suffix=".xml"), clip=clip)
        if fmt == "yolo":
            return _yolo_dataset(project, upload, size=size, clip=clip)
    except FormatError as error:
        raise _refuse(error.message, error.problems) from error
    raise ValidationFailed(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.", fields={"format": ["unknown"]})


def _zip_texts(upload: BinaryIO, *, size: int, suffix: str) -> dict[str, bytes]:
    texts = {}
    with zip_open(upload, archive_size=size) as bundle:
        for entry in bundle.infolist():
            if entry.is_dir() or not entry.filename.lower().endswith(suffix) or "__MACOSX" in entry.filename:
                continue
            reason = zip_unsafe_reason(entry)
            if reason:
                raise _refuse("The archive is unsafe", [f"{entry.filename}: {reason}"])
            content = zip_read_member(bundle, entry, limit=settings.QUORUM_MAX_IMPORT_BYTES)
            if len(content) > settings.QUORUM_MAX_IMPORT_BYTES:
                raise ImageRefused("too_large", f"{entry.filename} unpacks to more than the import limit.", status=413)
            texts[entry.filename] = content
    return texts


def _yolo_dataset(project: Project, upload: BinaryIO, *, size: int, clip: bool) -> Dataset:
    files = _zip_texts(upload, size=size, suffix="")
    yaml_name = next((name for name in files if PurePosixPath(name).name in ("data.yaml", "dataset.yaml")), None)
    if yaml_name is None:
        raise _refuse("Not a YOLO dataset", ["no data.yaml in the archive"])
    names = yolo_names(files[yaml_name])
    index = _ImageIndex(project)
    label_files, sizes, problems = {}, {}, []
    for name, content in files.items():
        path = PurePosixPath(name)
        if path.suffix != ".txt" or "labels" not in path.parts:
            continue
        image = index.by_stem.get(path.stem)
        if image is None:
            problems.append(f"{name}: no image of this project is named {path.stem}.*")
            continue
        label_files[index.export_names[image.pk]] = content
        sizes[index.export_names[image.pk]] = (image.width, image.height)
    if problems:
        raise _refuse("Some labels name no image", problems)
    return yolo_read(names=names, label_files=label_files, sizes=sizes, clip=clip)


def _box(annotation: Annotation, box) -> Box:
    return Box(
        annotation=annotation,
        x1=box.x1,
        y1=box.y1,
        x2=box.x2,
        y2=box.y2,
        label=box.label,
        is_occluded=box.is_occluded,
        is_truncated=box.is_truncated,
        is_ignored=box.is_ignored,
    )


def annotations_import(
    *,
    project: Project,
    dataset: Dataset,
    target: str,
    annotator_username: str | None,
    importer: AbstractBaseUser,
    fmt: str,
) -> ImportSummary:
    """Write `dataset`'s boxes as `annotator_username`'s submissions or as gold references."""
    if target not in TARGETS:
        raise ValidationFailed(f"target must be one of {', '.join(TARGETS)}.", fields={"target": ["unknown"]})
    if target == "annotator":
        annotator = get_user_model().objects.filter(username=annotator_username or "", is_active=True).first()
        if annotator is None:
            raise ValidationFailed("Name the annotator whose work this is.", fields={"annotator": ["No such user."]})
        role = Membership.objects.filter(project=project, user=annotator).values_list("role", flat=True).first()
        if role != Role.ANNOTATOR or annotator.is_staff:
            message = (
                f"{annotator.get_username()} is not an annotator of this project: imported submissions are credited "
                "only to the project's annotators, whose work is blind and counts in the consensus."
            )
            raise ValidationFailed(message, fields={"annotator": ["Not an annotator of this project."]})
    else:
        annotator = importer
    index = _ImageIndex(project)
    problems = []
    matched: list[tuple[Image, object]] = []
    for item in dataset.images:
        image = index.find(item.file_name)
        if image is None:
            problems.append(f"{item.file_name}: no image of this project has that name")
            continue
        if item.width and (item.width, item.height) != (image.width, image.height):
            problems.append(
                f"{item.file_name}: the file says {item.width}x{item.height}, the image is {image.width}x{image.height}"
            )
            continue
        unknown = sorted({box.label for box in item.boxes} - set(project.labels))
        if unknown:
            problems.append(
                f"{item.file_name}: unknown label(s) {', '.join(unknown)}; this project has {', '.join(project.labels)}"
            )
            continue
        matched.append((image, item))
    seen = defaultdict(list)
    for image, item in matched:
        seen[image.pk].append(item.file_name)
    problems += [f"{' and '.join(names)}: the same image twice" for names in seen.values() if len(names) > 1]
    if problems:
        raise _refuse("The import does not fit this project", problems)
    kind = AnnotationKind.GOLD if target == "gold" else AnnotationKind.SUBMISSION
    revised = boxes = 0
    complete: list[int] = []  # images given a new submission (those at k or more get their update)
    with transaction.atomic():
        for image, item in matched:
            previous = (
                Annotation.objects.select_for_update()
                .filter(image=image, annotator=annotator, kind=kind, is_current=True)
                .first()
            )
            if previous is not None:
                previous.is_current = False
                previous.save(update_fields=["is_current"])
                revised += 1
            annotation = Annotation.objects.create(
                image=image,
                annotator=annotator,
                kind=kind,
                source=AnnotationSource.IMPORT,
                revision=previous.revision + 1 if previous else 1,
                supersedes=previous,
            )
            Box.objects.bulk_create(_box(annotation, box) for box in item.boxes)
            boxes += len(item.boxes)
            if kind == AnnotationKind.GOLD and not image.is_gold:
                Image.objects.filter(pk=image.pk).update(is_gold=True)
            if kind == AnnotationKind.SUBMISSION and previous is None:
                # a new submission counts toward the image's k, as one made on the canvas does
                Image.objects.filter(pk=image.pk).update(submitted_count=F("submitted_count") + 1)
                complete.append(image.pk)
        complete = list(
            Image.objects.filter(pk__in=complete, submitted_count__gte=project.overlap_k).values_list("pk", flat=True)
        )
        if complete:
            from groundtruth.services import image_consensus_enqueue

            transaction.on_commit(
                lambda: [image_consensus_enqueue(image_id=pk, project_id=project.pk) for pk in complete]
            )
    return ImportSummary(
        format=fmt, target=target, annotator=annotator.get_username(), images=len(matched), boxes=boxes, revised=revised
    )
