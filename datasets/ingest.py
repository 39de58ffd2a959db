"""Image ingestion: the one service under the upload API, the zip upload and `import_images`.

Per file: size limit, sha256, duplicate check, condition check, `decode_upright_rgb`, then
the stored file is written; a group's rows are committed together. A refused file leaves
no row and no file; files written for rows that then failed are deleted at once, and
`image_orphans_delete` (run by beat) removes what a crash between the two leaves behind.
"""

import csv
import hashlib
import io
import logging
import zipfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, OperationalError, transaction

from datasets.archives import zip_open, zip_read_member, zip_unsafe_reason
from datasets.imaging import DecodedImage, ImageRefused, decode_upright_rgb, encode_for_storage
from datasets.models import Image, image_storage_path
from datasets.splits import splits_assign, stratum_key
from datasets.tasks import image_thumbnails_task
from projects.models import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingImage:
    """One file to ingest: its client-side name, a seekable binary file, its size in bytes."""

    name: str
    file: BinaryIO
    size: int
    conditions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    name: str
    status: str  # "stored", "duplicate" or "refused"
    image_id: int | None = None
    split: str | None = None
    code: str | None = None
    message: str | None = None
    http_status: int = 201


def conditions_validate(*, project: Project, conditions: Mapping[str, str]) -> dict[str, str]:
    """`conditions` checked against the project's vocabulary; ImageRefused names what is wrong."""
    if not isinstance(conditions, Mapping):
        raise ImageRefused("bad_conditions", "Conditions must be an object of dimension -> value.")
    vocabulary = project.conditions
    clean = {}
    for dimension, value in conditions.items():
        if dimension not in vocabulary:
            known = ", ".join(sorted(vocabulary)) or "none"
            raise ImageRefused(
                "bad_conditions", f"Unknown condition {dimension!r}; this project's conditions are: {known}."
            )
        if value not in vocabulary[dimension]:
            allowed = ", ".join(vocabulary[dimension])
            raise ImageRefused("bad_conditions", f"Unknown value {value!r} for {dimension!r}; allowed: {allowed}.")
        clean[dimension] = value
    return clean


def image_ingest(
    *,
    project: Project,
    uploads: Iterable[IncomingImage],
    user: AbstractBaseUser | None,
    is_synthetic: bool = False,
) -> list[IngestResult]:
    """Ingest each upload on its own: one result per file, in order.

    Files go through in small groups: their bytes are read and hashed, known content is
    answered as a duplicate at once, the rest are decoded and re-encoded on a few threads
    (Pillow releases the GIL while it works) and their files written in order as they come;
    then the group's rows are made in one transaction (splits drawn in order, one insert).
    A group is at most four times the thread count, which bounds the memory a batch holds;
    a failure while a group's rows are written leaves none of that group's rows or files.
    """
    uploads = list(uploads)
    workers = max(1, settings.QUORUM_INGEST_THREADS)
    size = 4 * workers
    results: list[IngestResult] = []
    with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        current = None
        for start in range(0, len(uploads) + size, size):
            # The next group starts decoding before this one's files and rows are written,
            # so the threads are not left idle while the database works.
            following = (
                _group_start(project=project, uploads=uploads[start : start + size], pool=pool, earlier=current)
                if start < len(uploads)
                else None
            )
            if current is not None:
                results += _group_finish(
                    project=project, group=current, user=user, is_synthetic=is_synthetic, pool=pool
                )
            current = following
    return results


def image_ingest_one(
    *, project: Project, upload: IncomingImage, user: AbstractBaseUser | None, is_synthetic: bool = False
) -> IngestResult:
    return image_ingest(project=project, uploads=[upload], user=user, is_synthetic=is_synthetic)[0]


def _refused(upload: IncomingImage, refusal: ImageRefused) -> IngestResult:
    return IngestResult(
        name=upload.name, status="refused", code=refusal.code, message=refusal.message, http_status=refusal.status
    )


@dataclass
class _Pending:
    upload: IncomingImage
    content: bytes
    sha256: str
    conditions: dict
    decoded: DecodedImage | None = None
    stored: bytes = b""
    name: str = ""  # where its file was written


@dataclass
class _Group:
    outcomes: list  # per upload, in order: its IngestResult when answered at once, else its _Pending
    known: dict[str, int]  # sha256 -> id of images the project already had
    firsts: dict[str, _Pending]  # the first file of each new content; later ones are its duplicates
    futures: dict
    earlier: "_Group | None"  # the group before, for content it was already storing
    answers: dict[str, IngestResult] = field(default_factory=dict)  # for each of `firsts`


def _group_start(*, project: Project, uploads: list[IncomingImage], pool, earlier: _Group | None) -> _Group:
    """Read, hash and look up a group's files, and start decoding the new ones on the threads."""
    outcomes: list[IngestResult | _Pending] = []
    for upload in uploads:
        try:
            content = _read(upload)
            conditions = conditions_validate(project=project, conditions=upload.conditions)
        except ImageRefused as refusal:
            outcomes.append(_refused(upload, refusal))
            continue
        outcomes.append(
            _Pending(upload=upload, content=content, sha256=hashlib.sha256(content).hexdigest(), conditions=conditions)
        )
    pending = [item for item in outcomes if isinstance(item, _Pending)]
    known = dict(
        Image.objects.filter(project=project, sha256__in=[item.sha256 for item in pending]).values_list("sha256", "pk")
    )
    firsts: dict[str, _Pending] = {}
    for item in pending:
        if item.sha256 not in known and (earlier is None or item.sha256 not in earlier.firsts):
            firsts.setdefault(item.sha256, item)
    decode = partial(_decode, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
    # Submitted all at once: later files decode on the threads while earlier ones are written.
    futures = {sha256: pool.submit(decode, item) for sha256, item in firsts.items()} if pool else {}
    return _Group(outcomes=outcomes, known=known, firsts=firsts, futures=futures, earlier=earlier)


def _group_finish(*, project: Project, group: _Group, user, is_synthetic: bool, pool) -> list[IngestResult]:
    """Write a group's decoded files in order, then its rows in one transaction; its answers."""
    decode = partial(_decode, max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
    written: list[_Pending] = []
    for sha256, item in group.firsts.items():
        refusal = group.futures[sha256].result() if pool else decode(item)
        if refusal is not None:
            group.answers[sha256] = _refused(item.upload, refusal)
            continue
        try:
            item.name = default_storage.save(
                image_storage_path(project.pk, sha256, item.decoded.format), ContentFile(item.stored)
            )
        except BaseException:
            _files_delete(written)
            raise
        written.append(item)
    group.answers |= _rows_create(project=project, items=written, user=user, is_synthetic=is_synthetic)
    earlier_answers = group.earlier.answers if group.earlier is not None else {}
    group.earlier = None  # let the group before go
    results = []
    for item in group.outcomes:
        if isinstance(item, IngestResult):
            results.append(item)
        elif item.sha256 in group.known:
            results.append(_duplicate(item.upload.name, group.known[item.sha256]))
        elif group.firsts.get(item.sha256) is item:
            results.append(group.answers[item.sha256])
        else:
            first = group.answers.get(item.sha256) or earlier_answers[item.sha256]
            if first.image_id is not None:
                results.append(_duplicate(item.upload.name, first.image_id))
            else:  # the same content as a refused file: the same refusal
                results.append(replace(first, name=item.upload.name))
    stored = [result.image_id for result in results if result.status == "stored"]
    if stored:
        # One thumbnail task per group, once the rows are committed.
        transaction.on_commit(lambda: _enqueue_thumbnails(stored))
    for item in group.firsts.values():
        item.content = item.stored = b""  # let the bytes go
    return results


def _read(upload: IncomingImage) -> bytes:
    max_bytes = settings.QUORUM_MAX_IMAGE_BYTES
    if upload.size > max_bytes:
        raise ImageRefused(
            "too_large",
            f"The file is {upload.size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.1f} MiB.",
            status=413,
        )
    if upload.size == 0:
        raise ImageRefused("empty", "The file is empty.")
    upload.file.seek(0)
    content = upload.file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise ImageRefused("too_large", f"The file is over the {max_bytes / 2**20:.1f} MiB limit.", status=413)
    return content


def _decode(item: _Pending, *, max_pixels: int) -> ImageRefused | None:
    """Decode and re-encode one file; runs on a worker thread, so it touches no database."""
    try:
        item.decoded = decode_upright_rgb(io.BytesIO(item.content), max_pixels=max_pixels)
    except ImageRefused as refusal:
        return refusal
    # A clean file (RGB, upright, no metadata) is kept byte for byte; others are re-encoded.
    item.stored = item.content if item.decoded.is_clean else encode_for_storage(item.decoded)
    item.decoded = replace(item.decoded, image=None)  # the size and format stay; the pixels go
    return None


def _files_delete(items: list[_Pending]) -> None:
    for item in items:
        default_storage.delete(item.name)


def _rows_create(*, project: Project, items: list[_Pending], user, is_synthetic: bool) -> dict[str, IngestResult]:
    """The rows of the group's written files, in one transaction: its splits drawn in order
    under the project's lock, one insert. The answer for each file, by sha256."""
    if not items:
        return {}
    try:
        with transaction.atomic():
            # One writer per project at a time, so concurrent batches see each other's splits.
            locked = Project.objects.select_for_update().get(pk=project.pk)
            splits = splits_assign(project=locked, arrivals=[(item.conditions, item.sha256) for item in items])
            uploader = user if user is not None and user.is_authenticated else None
            rows = Image.objects.bulk_create(
                _row(locked, item, split=split, user=uploader, is_synthetic=is_synthetic)
                for item, split in zip(items, splits, strict=True)
            )
    except IntegrityError:
        # A concurrent request stored some of the same content after this group looked:
        # each file is tried on its own, and those already there are answered as duplicates.
        return {item.sha256: _row_create_one(project=project, item=item, user=user, is_synthetic=is_synthetic)
                for item in items}  # fmt: skip
    except OperationalError:
        _files_delete(items)
        return {item.sha256: _database_busy(item) for item in items}
    except BaseException:
        _files_delete(items)
        raise
    return {
        row.sha256: IngestResult(name=item.upload.name, status="stored", image_id=row.pk, split=row.split)
        for item, row in zip(items, rows, strict=True)
    }


def _row(project: Project, item: _Pending, *, split: str, user, is_synthetic: bool) -> Image:
    decoded = item.decoded
    image = Image(
        project=project,
        original_name=item.upload.name[:255],
        sha256=item.sha256,
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        exif_orientation=decoded.orientation,
        bytes=len(item.stored),
        conditions=item.conditions,
        stratum=stratum_key(item.conditions),
        split=split,
        shuffle_key=shuffle_key(seed=project.split_seed, sha256=item.sha256),
        is_synthetic=is_synthetic,
        uploaded_by=user,
    )
    image.file.name = item.name
    return image


def _row_create_one(*, project: Project, item: _Pending, user, is_synthetic: bool) -> IngestResult:
    try:
        with transaction.atomic():
            locked = Project.objects.select_for_update().get(pk=project.pk)
            existing = Image.objects.filter(project=project, sha256=item.sha256).values_list("pk", flat=True).first()
            if existing:
                default_storage.delete(item.name)
                return _duplicate(item.upload.name, existing)
            split = splits_assign(project=locked, arrivals=[(item.conditions, item.sha256)])[0]
            uploader = user if user is not None and user.is_authenticated else None
            image = _row(locked, item, split=split, user=uploader, is_synthetic=is_synthetic)
            image.save()
    except OperationalError:
        default_storage.delete(item.name)
        return _database_busy(item)
    except BaseException:
        default_storage.delete(item.name)
        raise
    return IngestResult(name=item.upload.name, status="stored", image_id=image.pk, split=image.split)


def _database_busy(item: _Pending) -> IngestResult:
    # The database stayed busy (or went away) past its timeout: this file is not stored,
    # and the answer says so; the files of other groups are answered on their own.
    logger.warning("Image %s not stored (%s): the database was unavailable.", item.upload.name, item.name)
    return IngestResult(
        name=item.upload.name,
        status="refused",
        code="database_busy",
        message="The database was busy; this file was not stored. Send it again.",
        http_status=503,
    )


def _duplicate(name: str, existing_id: int | None) -> IngestResult:
    return IngestResult(
        name=name,
        status="duplicate",
        image_id=existing_id,
        code="duplicate",
        message=f"This project already has this image (id {existing_id}).",
        http_status=200,
    )


def shuffle_key(*, seed: int, sha256: str) -> int:
    """An image's seeded place in the annotation queue (among images equally far along)."""
    return int(hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _enqueue_thumbnails(image_ids: list[int]) -> None:
    try:
        image_thumbnails_task.delay(image_ids)
    except Exception:  # noqa: BLE001 - the images are stored; beat makes missing thumbnails later
        logger.warning("Could not enqueue thumbnails of images %s; the periodic sweep will make them.", image_ids)


ZIP_SKIPPED_PREFIXES = ("__MACOSX/",)
ZIP_MANIFEST = "conditions.csv"
# Entries read into memory and ingested together (decoded on the ingest threads).
ZIP_GROUP = 16


def zip_ingest(
    *, project: Project, archive: BinaryIO, archive_size: int, conditions: Mapping[str, str], user
) -> list[IngestResult]:
    """Ingest every image of a zip archive, one result per entry.

    Refused as a whole, before anything is stored (ImageRefused): a file that is not a zip,
    an archive over QUORUM_MAX_UPLOAD_BYTES, more than QUORUM_ZIP_MAX_ENTRIES entries, or
    more than QUORUM_ZIP_MAX_TOTAL_BYTES once uncompressed (zip bombs). Refused per entry:
    absolute paths, `..` components, links, and everything image ingestion refuses. Entries
    are read into memory one at a time, never extracted to disk. An optional `conditions.csv`
    at the top (columns: file, then one per dimension) gives conditions per file, over
    `conditions`. Folders starting with a dot and `__MACOSX/` are skipped.
    """
    bundle = zip_open(archive, archive_size=archive_size)
    with bundle:
        entries = bundle.infolist()
        per_file = _zip_manifest(bundle)
        results: list[IngestResult | None] = []
        waiting: list[tuple[int, IncomingImage]] = []
        read_total = 0
        for entry in entries:
            name = entry.filename
            reason = zip_unsafe_reason(entry)
            if reason:
                results.append(
                    IngestResult(name=name, status="refused", code="unsafe_path", message=reason, http_status=400)
                )
                continue
            if entry.is_dir() or name == ZIP_MANIFEST or _zip_is_skipped(name):
                continue
            # Declared sizes can lie: read at most one image's limit, and stop at the total.
            content = zip_read_member(bundle, entry, limit=settings.QUORUM_MAX_IMAGE_BYTES)
            read_total += len(content)
            if read_total > settings.QUORUM_ZIP_MAX_TOTAL_BYTES:
                results.append(
                    IngestResult(
                        name=name,
                        status="refused",
                        code="too_large",
                        message="The archive unpacks to more than its limit; the rest was not read.",
                        http_status=413,
                    )
                )
                break
            upload = IncomingImage(
                name=name,
                file=io.BytesIO(content),
                size=len(content),
                conditions={**conditions, **per_file.get(name, {})},
            )
            # Placeholders keep the archive's order; groups of entries are ingested together.
            waiting.append((len(results), upload))
            results.append(None)
            if len(waiting) >= ZIP_GROUP:
                _zip_flush(project, waiting, results, user)
        _zip_flush(project, waiting, results, user)
    return results


def _zip_flush(project: Project, waiting: list, results: list, user) -> None:
    if not waiting:
        return
    ingested = image_ingest(project=project, uploads=[upload for _, upload in waiting], user=user)
    for (index, _), result in zip(waiting, ingested, strict=True):
        results[index] = result
    waiting.clear()


def _zip_is_skipped(name: str) -> bool:
    return name.startswith(ZIP_SKIPPED_PREFIXES) or any(part.startswith(".") for part in name.split("/"))


def _zip_manifest(bundle: zipfile.ZipFile) -> dict[str, dict[str, str]]:
    """file -> conditions from `conditions.csv`, if the archive has one."""
    try:
        raw = bundle.read(ZIP_MANIFEST)
    except KeyError:
        return {}
    if len(raw) > 10 * 2**20:
        raise ImageRefused("bad_manifest", f"{ZIP_MANIFEST} is over 10 MiB.", status=413)
    try:
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
        if not reader.fieldnames or reader.fieldnames[0] != "file":
            raise ImageRefused("bad_manifest", f"{ZIP_MANIFEST} must start with a 'file' column.")
        return {row["file"]: {key: value for key, value in row.items() if key != "file" and value} for row in reader}
    except (UnicodeDecodeError, csv.Error) as error:
        raise ImageRefused("bad_manifest", f"{ZIP_MANIFEST} could not be read: {error}") from error
