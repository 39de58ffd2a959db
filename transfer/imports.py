"""Importing boxes made elsewhere: COCO, YOLO, Pascal VOC, Label Studio and CVAT exports.

Imported boxes become people's submitted annotations (a new revision where they already had
one; the old one is kept) or gold reference boxes. An export with authors (Label Studio's
JSON) credits each annotation to its author, mapped to a Quorum user by `annotator_map` or
by email; one without names one `annotator` for everything. Cancelled annotations become
skips; a task nobody labelled is counted, never imported as an image without pedestrians.

Images are found by the names exports give them (`ImageIndex`): the exact name, the name
with a tool's prefix taken off (Label Studio's `/data/upload/<project>/` and `<8 hex>-`),
the file name with its folders left aside, and, when the export carries the images, their
sha256. An import is all or nothing: any problem (an unknown or ambiguous image, a size that
does not match, an unknown label, a bad box, an author nobody is mapped to) refuses the
whole file with every problem listed, and writes nothing.
"""

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation.models import Assignment, AssignmentState, Suggestion
from boxes.cvat import cvat_read
from boxes.formats import (
    CANCELLED,
    LABELLED,
    PREDICTION,
    Author,
    Dataset,
    FormatError,
    FormatImage,
    checked_image,
    coco_read,
    voc_read,
    yolo_class_lines,
    yolo_names,
    yolo_read,
)
from boxes.labelstudio import labelstudio_read
from config.errors import ValidationFailed
from datasets.archives import zip_open, zip_read_member, zip_unsafe_reason
from datasets.imaging import ImageRefused
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind, AnnotationSource
from groundtruth.records import annotation_record
from projects.models import Membership, Project, Role
from transfer.exports import export_file_names

FORMATS = ("coco", "yolo", "voc", "labelstudio", "cvat")
TARGETS = ("annotator", "gold")
PREDICTIONS = ("ignore", "suggestions")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# How an export's image name was matched, in the order tried.
MATCHES = ("exact", "tool_prefix", "file_name", "sha256")
# Label Studio's upload paths and the 8 hex digits it puts before every uploaded file's name.
_TOOL_FOLDERS = re.compile(r"^(?:data/upload/\d+/|data/local-files/|data/)")
_TOOL_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")
# The YOLO class lists other tools write beside (or instead of) Ultralytics' data.yaml.
YOLO_CLASS_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names")


@dataclass(frozen=True)
class ImportSummary:
    format: str
    target: str
    annotator: str  # the one annotator named for everything ("" when authors were mapped)
    images: int
    boxes: int
    revised: int  # images where an earlier annotation of the same person was superseded
    skips: int = 0  # cancelled annotations recorded as skips
    not_labelled: int = 0  # images the export lists that nobody labelled: not imported
    predictions: int = 0  # models' predictions in the export
    suggestions: int = 0  # of those, written as suggestions (predictions=suggestions)
    per_annotator: dict = field(default_factory=dict)  # username -> {submissions, boxes, skips}
    matched: dict = field(default_factory=dict)  # how images were found -> count
    matches: list = field(default_factory=list)  # [{name, image_id, by}]
    voc_origin: int | None = None
    left_out: dict = field(default_factory=dict)  # shapes that are not boxes, by kind


def _refuse(message: str, problems: list[str]) -> ValidationFailed:
    return ValidationFailed(
        f"{message}: {len(problems)} problem(s); nothing was imported.", fields={"problems": problems}
    )


def _tool_stripped(name: str) -> str | None:
    """`name` without a known tool's folders and file prefix, or None when it has none."""
    path = name.lstrip("/")
    path = _TOOL_FOLDERS.sub("", path)
    folder, _, base = path.rpartition("/")
    base = _TOOL_PREFIX.sub("", base)
    stripped = f"{folder}/{base}" if folder else base
    return stripped if stripped != name.lstrip("/") else None


class ImageIndex:
    """Finds a project's images by the names an export or another tool gives them."""

    def __init__(self, project: Project):
        rows = list(
            Image.objects.filter(project=project).values_list("pk", "original_name", "sha256", "width", "height")
        )
        self.original = {pk: original for pk, original, *_ in rows}
        self.by_sha256 = {sha: pk for pk, _, sha, *_ in rows}
        self.sizes = {pk: (width, height) for pk, _, _, width, height in rows}
        self.export_names = export_file_names(project)
        self.by_name: dict[str, set[int]] = defaultdict(set)
        self.by_file: dict[str, set[int]] = defaultdict(set)
        self.by_stem: dict[str, set[int]] = defaultdict(set)
        for pk, original in self.original.items():
            export_name = self.export_names[pk]
            for name in (export_name, original.replace("\\", "/")):
                self.by_name[name].add(pk)
                self.by_file[PurePosixPath(name).name].add(pk)
                self.by_stem[PurePosixPath(name).stem].add(pk)

    def describe(self, image_id: int) -> str:
        return f"image {image_id} ({self.original[image_id]})"

    def find(self, name: str, *, sha256: str | None = None) -> tuple[int | None, str]:
        """(image id, how it was matched), or (None, why not): nothing fits, or two do."""
        name = name.replace("\\", "/")
        stripped = _tool_stripped(name)
        stages = [
            ("exact", self.by_name.get(name) or self.by_name.get(name.lstrip("/"))),
            (
                "tool_prefix",
                (self.by_name.get(stripped) or self.by_file.get(PurePosixPath(stripped).name)) if stripped else None,
            ),
            ("file_name", self.by_file.get(PurePosixPath(name).name)),
            ("sha256", {self.by_sha256[sha256]} if sha256 in self.by_sha256 else None),
        ]
        return self._first(stages, name)

    def find_stem(self, stem: str) -> tuple[int | None, str]:
        """The same for a YOLO label file whose image the export does not carry: by its stem."""
        stripped = _TOOL_PREFIX.sub("", stem)
        stages = [
            ("exact", self.by_stem.get(stem)),
            ("tool_prefix", self.by_stem.get(stripped) if stripped != stem else None),
        ]
        return self._first(stages, f"{stem}.*")

    def _first(self, stages, name: str) -> tuple[int | None, str]:
        for how, candidates in stages:
            if not candidates:
                continue
            if len(candidates) > 1:
                both = " and ".join(self.describe(pk) for pk in sorted(candidates)[:5])
                return (
                    None,
                    f"{name}: ambiguous, {both} fit ({how.replace('_', ' ')}); name it as it is named in Quorum",
                )
            return next(iter(candidates)), how
        return None, f"{name}: no image of this project has that name"


@dataclass(frozen=True)
class ImportFile:
    """What an uploaded file says, and the images already found for its names (a YOLO
    label file is matched by its stem while it is read: name -> (image id, how))."""

    dataset: Dataset
    found: Mapping[str, tuple[int, str]] = field(default_factory=dict)


def import_dataset_read(
    *,
    project: Project,
    fmt: str,
    upload: BinaryIO,
    upload_name: str,
    size: int,
    voc_origin: int | None = None,
) -> ImportFile:
    """Parse an uploaded import file. Boxes are not yet checked against the
    image size: `annotations_import` checks the size first, then the boxes."""
    if size > settings.QUORUM_MAX_IMPORT_BYTES:
        raise ImageRefused(
            "too_large",
            f"The import file is {size / 2**20:.1f} MiB; "
            f"the limit is {settings.QUORUM_MAX_IMPORT_BYTES / 2**20:.0f} MiB.",
            status=413,
        )
    if fmt not in FORMATS:
        raise ValidationFailed(
            f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.", fields={"format": ["unknown"]}
        )
    is_zip = upload_name.lower().endswith(".zip")
    try:
        if fmt == "yolo":
            return _yolo_dataset(project, upload, size=size)
        if not is_zip:
            return ImportFile(_read_one(fmt, {upload_name: upload.read()}, voc_origin=voc_origin))
        files, hashes = _zip_files(upload, size=size)
        return ImportFile(replace(_read_one(fmt, files, voc_origin=voc_origin), image_sha256=hashes))
    except FormatError as error:
        raise _refuse(error.message, error.problems) from error


def _read_one(fmt: str, files: dict[str, bytes], *, voc_origin: int | None) -> Dataset:
    """The dataset of the annotation file(s) among `files` (name -> bytes)."""
    if fmt == "voc":
        xml = {name: content for name, content in files.items() if name.lower().endswith(".xml")}
        if not xml:
            raise FormatError("Not a VOC dataset: no .xml annotation files")
        return voc_read(xml, clip=None, origin=voc_origin)
    suffix = ".xml" if fmt == "cvat" else ".json"
    candidates = [name for name in files if name.lower().endswith(suffix)] or list(files)
    if len(candidates) != 1:
        raise FormatError(f"The archive must hold one {suffix} file; it holds {len(candidates)}", candidates[:10])
    content = files[candidates[0]]
    if fmt == "coco":
        return coco_read(content, clip=None)
    if fmt == "labelstudio":
        return labelstudio_read(content, clip=None)
    return cvat_read(content, clip=None)


def _zip_files(upload: BinaryIO, *, size: int) -> tuple[dict[str, bytes], dict[str, str]]:
    """An archive's annotation files (name -> bytes) and the sha256 of the images it carries
    (its name, and its file name alone, -> sha256)."""
    texts, hashes = {}, {}
    with zip_open(upload, archive_size=size) as bundle:
        for entry in bundle.infolist():
            if entry.is_dir() or "__MACOSX" in entry.filename:
                continue
            reason = zip_unsafe_reason(entry)
            if reason:
                raise _refuse("The archive is unsafe", [f"{entry.filename}: {reason}"])
            is_image = entry.filename.lower().endswith(IMAGE_SUFFIXES)
            limit = settings.QUORUM_MAX_UPLOAD_BYTES if is_image else settings.QUORUM_MAX_IMPORT_BYTES
            content = zip_read_member(bundle, entry, limit=limit)
            if len(content) > limit:
                raise ImageRefused("too_large", f"{entry.filename} unpacks to more than the limit.", status=413)
            if is_image:
                digest = hashlib.sha256(content).hexdigest()
                hashes[entry.filename] = digest
                hashes.setdefault(PurePosixPath(entry.filename).name, digest)
            else:
                texts[entry.filename] = content
    return texts, hashes


def _yolo_dataset(project: Project, upload: BinaryIO, *, size: int) -> ImportFile:
    files, hashes = _zip_files(upload, size=size)
    class_files = {PurePosixPath(name).name: name for name in files if PurePosixPath(name).name in YOLO_CLASS_FILES}
    found = next((class_files[name] for name in YOLO_CLASS_FILES if name in class_files), None)
    if found is None:
        raise _refuse(
            "Not a YOLO dataset",
            [
                "no class list in the archive: it needs data.yaml (Ultralytics), classes.txt (Label Studio) "
                "or obj.names (darknet, CVAT)"
            ],
        )
    names = yolo_names(files[found]) if found.endswith(".yaml") else yolo_class_lines(files[found])
    images_by_stem: dict[str, list[str]] = defaultdict(list)
    for image_name in hashes:
        if "/" in image_name:
            images_by_stem[PurePosixPath(image_name).stem].append(image_name)
    index = ImageIndex(project)
    label_files, sizes, problems, found_images = {}, {}, [], {}
    for name, content in files.items():
        path = PurePosixPath(name)
        if path.suffix != ".txt" or path.name in YOLO_CLASS_FILES or not {"labels", "obj_train_data"} & set(path.parts):
            continue
        carried = images_by_stem.get(path.stem, [])
        if len(carried) == 1:
            image_id, how = index.find(carried[0], sha256=hashes[carried[0]])
        else:
            image_id, how = index.find_stem(path.stem)
        if image_id is None:
            problems.append(f"{name}: {how.split(': ', 1)[1]}")
            continue
        file_name = index.export_names[image_id]
        label_files[file_name] = content
        sizes[file_name] = index.sizes[image_id]
        found_images[file_name] = (image_id, how)
    if problems:
        raise _refuse("Some labels name no image", problems)
    # Each label file is now named as Quorum names its image; `found` keeps how it was matched.
    return ImportFile(yolo_read(names=names, label_files=label_files, sizes=sizes, clip=None), found=found_images)


def _user_by_username(username: str):
    return get_user_model().objects.filter(username=username, is_active=True).first()


def _annotator_problem(project: Project, user) -> str | None:
    """Why `user`'s work cannot be imported as a panel submission (None when it can)."""
    role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    if role != Role.ANNOTATOR or user.is_staff:
        return (
            f"{user.get_username()} is not an annotator of this project: imported submissions are credited "
            "only to the project's annotators, whose work is blind and counts in the consensus."
        )
    return None


class _People:
    """Who each entry of an export is credited to: one named annotator for everything, or
    each author mapped by `annotator_map` (author id or email -> username), then by email."""

    def __init__(self, *, project: Project, annotator_username: str | None, annotator_map: Mapping | None):
        self.project = project
        self.problems: list[str] = []
        self.unmapped: Counter = Counter()
        self.single = None
        self.map: dict[str, object] = {}
        if annotator_username:
            self.single = _user_by_username(annotator_username)
            if self.single is None:
                raise ValidationFailed(
                    "Name the annotator whose work this is.", fields={"annotator": ["No such user."]}
                )
            problem = _annotator_problem(project, self.single)
            if problem:
                raise ValidationFailed(problem, fields={"annotator": ["Not an annotator of this project."]})
        for key, username in (annotator_map or {}).items():
            user = _user_by_username(str(username))
            if user is None:
                self.problems.append(f"annotator_map: {key} -> {username}: no such user")
            elif problem := _annotator_problem(project, user):
                self.problems.append(f"annotator_map: {key} -> {problem}")
            else:
                self.map[str(key).strip().lower()] = user
        self._by_email: dict[str, object] = {}

    def of(self, author: Author | None):
        """The user an entry is credited to, or None (counted in `unmapped`)."""
        if self.single is not None:
            return self.single
        if author is None:
            self.unmapped["(no author in the file)"] += 1
            return None
        for key in (author.key, author.email):
            if key and key.strip().lower() in self.map:
                return self.map[key.strip().lower()]
        if author.email:
            email = author.email.strip().lower()
            if email not in self._by_email:
                users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
                user = users[0] if len(users) == 1 else None
                if user is not None and (problem := _annotator_problem(self.project, user)):
                    self.problems.append(f"{author}: {problem}")
                    user = False
                self._by_email[email] = user
            if self._by_email[email]:
                return self._by_email[email]
            if self._by_email[email] is False:
                return None
        self.unmapped[str(author)] += 1
        return None


def _username(user_id: int) -> str:
    return get_user_model().objects.get(pk=user_id).get_username()


def _size_problem(item: FormatImage, image: Image) -> str | None:
    """The export's size against the image's (upright) size, EXIF orientation named."""
    if not item.width or (item.width, item.height) == (image.width, image.height):
        return None
    said = f"{item.file_name}: the file says {item.width}x{item.height}, the image is {image.width}x{image.height}"
    if (item.width, item.height) == (image.height, image.width) and image.exif_orientation in (5, 6, 7, 8):
        return (
            f"{said} upright: the file gives the size stored in the JPEG, before its EXIF orientation "
            f"{image.exif_orientation} turns it a quarter, while its boxes are drawn on the upright image. "
            "Label Studio's COCO and VOC exports do this; its JSON export gives the upright size."
        )
    return said


def annotations_import(
    *,
    project: Project,
    source: ImportFile,
    target: str,
    annotator_username: str | None,
    importer: AbstractBaseUser,
    fmt: str,
    annotator_map: Mapping | None = None,
    predictions: str = "ignore",
    clip: bool = False,
) -> ImportSummary:
    """Write the file's boxes as its authors' submissions (or one annotator's), or as gold."""
    if target not in TARGETS:
        raise ValidationFailed(f"target must be one of {', '.join(TARGETS)}.", fields={"target": ["unknown"]})
    if predictions not in PREDICTIONS:
        raise ValidationFailed(
            f"predictions must be one of {', '.join(PREDICTIONS)}.", fields={"predictions": ["unknown"]}
        )
    if annotator_username and annotator_map:
        raise ValidationFailed(
            "Give either one annotator for everything or an annotator_map, not both.",
            fields={"annotator_map": ["Not with annotator."]},
        )
    dataset = source.dataset
    problems: list[str] = []
    entries = [item for item in dataset.images if item.state in (LABELLED, CANCELLED)]
    models = [item for item in dataset.images if item.state == PREDICTION]
    chosen: list[tuple[FormatImage, object]] = []  # (entry, user); user None for gold
    if target == "annotator":
        if not annotator_username and not annotator_map and not any(item.author for item in entries):
            raise ValidationFailed("Name the annotator whose work this is.", fields={"annotator": ["No such user."]})
        people = _People(project=project, annotator_username=annotator_username, annotator_map=annotator_map)
        if people.single is not None:
            per_task = Counter(item.task or item.file_name for item in entries if item.state == LABELLED)
            problems += [
                f"task {task}: {count} annotations; with one annotator for everything only tasks with a single "
                "annotation are accepted: map their authors with annotator_map instead"
                for task, count in per_task.items()
                if count > 1
            ]
        chosen = [(item, people.of(item.author)) for item in entries]
        problems += people.problems
        if people.unmapped:
            listed = ", ".join(f"{author} ({count} annotation(s))" for author, count in people.unmapped.most_common())
            problems.append(
                f"no Quorum annotator for {listed}: map them with annotator_map "
                '({"<their id or email>": "<username>"}), or give them the same email in Quorum'
            )
    else:
        by_task: dict[str, list[FormatImage]] = defaultdict(list)
        for item in entries:
            if item.state == LABELLED:
                by_task[item.task or item.file_name].append(item)
        for task, items in by_task.items():
            marked = [item for item in items if item.is_ground_truth]
            if len(items) == 1 or len(marked) == 1:
                chosen.append(((marked or items)[0], None))
            else:
                problems.append(
                    f"task {task}: {len(items)} annotations and {len(marked) or 'none'} marked as ground truth; "
                    "gold takes one: mark one as ground truth in Label Studio, or import them as submissions"
                )
    index = ImageIndex(project)
    matches: dict[str, tuple[int, str]] = {}
    for name in dict.fromkeys([item.file_name for item, _ in chosen] + [item.file_name for item in models]):
        image_id, how = source.found.get(name) or index.find(name, sha256=dataset.image_sha256.get(name))
        if image_id is None:
            problems.append(how)
        else:
            matches[name] = (image_id, how)
    images = Image.objects.in_bulk({image_id for image_id, _ in matches.values()})
    checked: list[tuple[Image, FormatImage, object]] = []
    for item, user in chosen:
        if item.file_name not in matches:
            continue
        image = images[matches[item.file_name][0]]
        size_problem = _size_problem(item, image)
        if size_problem:
            problems.append(size_problem)
            continue
        unknown = sorted({box.label for box in item.boxes} - set(project.labels))
        if unknown:
            problems.append(
                f"{item.file_name}: unknown label(s) {', '.join(unknown)}; this project has {', '.join(project.labels)}"
            )
            continue
        sized = replace(item, width=image.width, height=image.height)
        checked.append((image, checked_image(sized, clip=clip, problems=problems), user))
    names_of = defaultdict(set)
    for name, (image_id, _) in matches.items():
        names_of[image_id].add(name)
    problems += [
        f"{' and '.join(sorted(names))}: the same image twice" for names in names_of.values() if len(names) > 1
    ]
    credited = Counter((image.pk, getattr(user, "pk", None)) for image, item, user in checked if item.state == LABELLED)
    problems += [
        f"{index.describe(image_id)}: two annotations credited to {_username(user_id)}"
        for (image_id, user_id), count in credited.items()
        if count > 1 and user_id is not None
    ]
    if problems:
        raise _refuse("The import does not fit this project", problems)
    checked.sort(key=lambda row: row[1].state != LABELLED)  # a person's annotation before their skip
    return _write(
        project=project,
        dataset=dataset,
        checked=checked,
        models=[(images[matches[item.file_name][0]], item) for item in models],
        target=target,
        importer=importer,
        fmt=fmt,
        single=annotator_username or "",
        predictions=predictions,
        matches=matches,
    )


def _write(*, project, dataset, checked, models, target, importer, fmt, single, predictions, matches) -> ImportSummary:
    kind = AnnotationKind.GOLD if target == "gold" else AnnotationKind.SUBMISSION
    revised = boxes = skips = suggestions = 0
    per_annotator: dict[str, Counter] = defaultdict(Counter)
    now = timezone.now()
    with transaction.atomic():
        for image, item, user in checked:
            annotator = user if user is not None else importer
            if item.state == CANCELLED:
                has_work = (
                    Assignment.objects.filter(image=image, annotator=annotator).exists()
                    or Annotation.objects.filter(image=image, annotator=annotator, kind=kind, is_current=True).exists()
                )
                if not has_work:
                    Assignment.objects.create(
                        image=image,
                        annotator=annotator,
                        state=AssignmentState.SKIPPED,
                        leased_at=now,
                        lease_expires_at=now,
                        finished_at=now,
                        skip_reason=f"Skipped in the imported {fmt} export.",
                    )
                    skips += 1
                    per_annotator[annotator.get_username()]["skips"] += 1
                continue
            annotation = annotation_record(
                image=image, annotator=annotator, boxes=item.boxes, kind=kind, source=AnnotationSource.IMPORT
            )
            revised += annotation.supersedes_id is not None
            boxes += len(item.boxes)
            per_annotator[annotator.get_username()]["submissions" if kind == AnnotationKind.SUBMISSION else "gold"] += 1
            per_annotator[annotator.get_username()]["boxes"] += len(item.boxes)
        if predictions == "suggestions":
            for image, item in models:
                Suggestion.objects.update_or_create(
                    image=image,
                    defaults={
                        "boxes": [
                            {"x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2, "label": b.label, "score": b.score}
                            for b in item.boxes
                        ],
                        "source": f"imported {fmt} prediction {item.model}".strip()[:120],
                    },
                )
                suggestions += 1
    return ImportSummary(
        format=fmt,
        target=target,
        annotator=single,
        images=len({image.pk for image, item, _ in checked if item.state == LABELLED}),
        boxes=boxes,
        revised=revised,
        skips=skips,
        not_labelled=len(dataset.not_labelled),
        predictions=len(models),
        suggestions=suggestions,
        per_annotator={name: dict(counts) for name, counts in sorted(per_annotator.items())},
        matched=dict(Counter(how for _, how in matches.values())),
        matches=[{"name": name, "image_id": image_id, "by": how} for name, (image_id, how) in matches.items()],
        voc_origin=dataset.voc_origin,
        left_out=dict(dataset.left_out),
    )
