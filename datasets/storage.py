"""Stored image files after ingest: thumbnails made (again) and files no row refers to deleted."""

import io
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from config.media import storage_put, storage_read
from datasets.imaging import decode_upright_rgb, thumbnail_bytes
from datasets.models import Image, thumbnail_storage_path

logger = logging.getLogger(__name__)


def image_thumbnail_make(*, image: Image) -> str:
    """Make (or remake) the thumbnail of `image` from its stored file; returns its storage name."""
    decoded = decode_upright_rgb(io.BytesIO(storage_read(image.file.name)), max_pixels=settings.QUORUM_MAX_IMAGE_PIXELS)
    name = storage_put(thumbnail_storage_path(image.project_id, image.sha256), thumbnail_bytes(decoded.image))
    Image.objects.filter(pk=image.pk).update(thumbnail=name)
    return name


def image_thumbnails_missing(*, limit: int = 500) -> list[int]:
    """Ids of images whose thumbnail is not made yet (an enqueue was lost, or is pending)."""
    cutoff = timezone.now() - timedelta(minutes=5)
    return list(Image.objects.filter(thumbnail="", created_at__lt=cutoff).values_list("pk", flat=True)[:limit])


def image_orphans_delete(*, older_than: timedelta = timedelta(hours=1)) -> list[str]:
    """Delete stored image and thumbnail files that no row refers to; returns their names.

    Only files older than `older_than` go, so a file written for a row that is about to
    commit is left alone.
    """
    cutoff = timezone.now() - older_than
    deleted = []
    for top in ("images", "thumbnails"):
        for name in _storage_walk(top):
            column = "file" if top == "images" else "thumbnail"
            if Image.objects.filter(**{column: name}).exists():
                continue
            if default_storage.get_modified_time(name) >= cutoff:
                continue
            default_storage.delete(name)
            deleted.append(name)
    if deleted:
        logger.info("Deleted %d orphan image files.", len(deleted))
    return deleted


def _storage_walk(top: str) -> Iterable[str]:
    # A folder is not an object on S3: exists("images") is False there, listdir answers.
    try:
        directories, files = default_storage.listdir(top)
    except FileNotFoundError:
        return
    for file in files:
        yield f"{top}/{file}"
    for directory in directories:
        yield from _storage_walk(f"{top}/{directory}")
