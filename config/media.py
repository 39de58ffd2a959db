"""Media files as browsers get them: the bytes through Quorum from a local folder, or a
redirect to a short-lived presigned URL when media is on S3, so that web processes do not
stream image bytes; and the origin the pages' security policy must allow for the latter."""

from urllib.parse import quote, urlsplit

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiResponse
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, is_seekable


class S3MediaStorage(S3Storage):
    """django-storages' S3 storage (settings.STORAGES names it when QUORUM_S3_BUCKET is set),
    writing a file below the multipart threshold in one PUT on the calling thread: its own
    `_save` hands every file to s3transfer, which starts a pool of threads per upload."""

    def _save(self, name, content):
        size = getattr(content, "size", None)
        if self.gzip or size is None or size >= self.transfer_config.multipart_threshold:
            return super()._save(name, content)
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        parameters = self._get_write_parameters(key, content)
        if is_seekable(content):
            content.seek(0)
        body = content.read()
        self.bucket.Object(key).put(Body=body.encode() if isinstance(body, str) else body, **parameters)
        return cleaned


def is_s3(storage: dict) -> bool:
    """Whether a STORAGES entry keeps media on S3."""
    return issubclass(import_string(storage["BACKEND"]), S3Storage)


def media_origin() -> str:
    """Where browsers fetch media from besides Quorum: the S3 endpoint's origin when media
    is on S3 ("https://*.amazonaws.com" on AWS itself), else ""."""
    storage = settings.STORAGES["default"]
    if not is_s3(storage):
        return ""
    endpoint = storage.get("OPTIONS", {}).get("endpoint_url")
    if not endpoint:
        return "https://*.amazonaws.com"
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def media_policy(policy: str) -> str:
    """`policy` with the media origin allowed for images and fetches (presigned URLs)."""
    origin = media_origin()
    if not origin:
        return policy
    return policy.replace("img-src 'self'", f"img-src 'self' {origin}").replace(
        "connect-src 'self'", f"connect-src 'self' {origin}"
    )


# The OpenAPI description of a media endpoint's answers.
MEDIA_RESPONSES = {
    (200, "image/*"): bytes,
    302: OpenApiResponse(description="With media on S3: a redirect to a presigned URL of the bytes, short-lived"),
}


def presigns(storage: Storage) -> bool:
    """Whether `storage` hands out presigned URLs (S3) rather than serving bytes itself."""
    return bool(getattr(storage, "querystring_auth", False)) and hasattr(storage, "bucket_name")


def media_response(
    stored, *, open_file, content_type: str, cache_seconds: int, filename: str | None = None
) -> HttpResponse:
    """The response for a stored file `stored` (a FieldFile): on S3 a 302 to a presigned URL
    that lives settings.QUORUM_S3_URL_SECONDS and answers with `content_type` and, when
    given, `filename`; otherwise the bytes, read through `open_file(stored)`.

    The caller has checked access: a presigned URL is issued only after that check.
    """
    if presigns(stored.storage):
        disposition = f'inline; filename="{quote(filename)}"' if filename else None
        return _presigned_redirect(stored.storage, stored.name, content_type, disposition, cache_seconds)
    response = FileResponse(open_file(stored), content_type=content_type, filename=filename)
    response["Cache-Control"] = f"private, max-age={cache_seconds}"
    return response


def download_response(name: str, *, filename: str, content_type: str = "application/octet-stream") -> HttpResponse:
    """A file of the default storage as a download named `filename`: on S3 a 302 to a
    presigned URL (the bytes go from the bucket to the client, not through a web process),
    otherwise the bytes. The caller has checked access."""
    if presigns(default_storage):
        disposition = content_disposition_header(as_attachment=True, filename=filename)  # as FileResponse's
        return _presigned_redirect(default_storage, name, content_type, disposition, cache_seconds=0)
    response = FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=filename,
                            content_type=content_type)  # fmt: skip
    response["Cache-Control"] = "private, max-age=0"
    return response


def _presigned_redirect(
    storage: Storage, name: str, content_type: str, disposition: str | None, cache_seconds: int
) -> HttpResponse:
    parameters = {"ResponseContentType": content_type}
    if disposition:
        parameters["ResponseContentDisposition"] = disposition
    seconds = settings.QUORUM_S3_URL_SECONDS
    response = HttpResponseRedirect(storage.url(name, parameters=parameters, expire=seconds))
    # The browser may reuse the redirect (and the bytes behind it) for half the URL's life.
    response["Cache-Control"] = f"private, max-age={min(cache_seconds, seconds // 2)}"
    return response


def storage_put(name: str, content: bytes) -> str:
    """Store `content` under exactly `name`, replacing a file of that name; returns the name.

    On S3 one PUT, which replaces (Storage.save would first ask whether the name is taken,
    and the caller whether to delete it: three requests a file); elsewhere delete and save.
    For files whose name is theirs alone: snapshots, thumbnails, a run's artifacts.
    """
    if presigns(default_storage):
        return default_storage._save(name, ContentFile(content))  # the PUT that save() ends with
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


def storage_read(name: str) -> bytes:
    """A stored file's bytes: on S3 one GET (opening a file asks for its size first, and the
    transfer again); FileNotFoundError when there is none."""
    if presigns(default_storage):
        try:
            return default_storage.bucket.Object(default_storage._normalize_name(clean_name(name))).get()["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
    with default_storage.open(name, "rb") as stored:
        return stored.read()
