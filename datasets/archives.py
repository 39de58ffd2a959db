"""Opening uploaded zip archives safely: limits checked before anything is read."""

import stat
import zipfile
from typing import BinaryIO

from django.conf import settings

from datasets.imaging import ImageRefused


def zip_open(archive: BinaryIO, *, archive_size: int) -> zipfile.ZipFile:
    """The archive, opened, once its size, entry count and unpacked size are within limits.

    ImageRefused (413 or 415) otherwise: QUORUM_MAX_UPLOAD_BYTES for the archive itself,
    QUORUM_ZIP_MAX_ENTRIES entries, QUORUM_ZIP_MAX_TOTAL_BYTES once uncompressed (zip bombs).
    The declared sizes can lie: readers still cap what they read of each member.
    """
    if archive_size > settings.QUORUM_MAX_UPLOAD_BYTES:
        raise ImageRefused(
            "too_large",
            f"The archive is {archive_size / 2**30:.2f} GiB; the limit is "
            f"{settings.QUORUM_MAX_UPLOAD_BYTES / 2**30:.2f} GiB.",
            status=413,
        )
    try:
        bundle = zipfile.ZipFile(archive)
        entries = bundle.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ImageRefused("not_a_zip", "The file is not a zip archive.", status=415) from error
    if len(entries) > settings.QUORUM_ZIP_MAX_ENTRIES:
        bundle.close()
        raise ImageRefused(
            "too_many_entries",
            f"The archive has {len(entries)} entries; the limit is {settings.QUORUM_ZIP_MAX_ENTRIES}.",
            status=413,
        )
    declared = sum(entry.file_size for entry in entries)
    if declared > settings.QUORUM_ZIP_MAX_TOTAL_BYTES:
        bundle.close()
        raise ImageRefused(
            "too_large",
            f"The archive would unpack to {declared / 2**30:.2f} GiB; the limit is "
            f"{settings.QUORUM_ZIP_MAX_TOTAL_BYTES / 2**30:.2f} GiB.",
            status=413,
        )
    return bundle


def zip_unsafe_reason(entry: zipfile.ZipInfo) -> str | None:
    """Why an entry's path is unsafe (absolute, `..`, a link), or None when it is fine."""
    name = entry.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "Absolute paths are not allowed in the archive."
    if ".." in parts:
        return "Paths with '..' are not allowed in the archive."
    if stat.S_ISLNK(entry.external_attr >> 16):
        return "Links are not allowed in the archive."
    return None


def zip_read_member(bundle: zipfile.ZipFile, entry: zipfile.ZipInfo, *, limit: int) -> bytes:
    """At most `limit` + 1 bytes of a member: one more than allowed tells the caller it is over."""
    with bundle.open(entry) as member:
        return member.read(limit + 1)
