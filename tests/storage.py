"""Media storage in tests: the same suite on a local folder or on the S3 server.

With QUORUM_S3_BUCKET set (CI starts `tests/s3server.py` and sets it), every test's media
goes to that bucket under a key prefix of its own; otherwise to a folder of its own. A
test that needs one or the other asks for the `filesystem_media` or `s3_media` fixture.
"""

import os
import uuid

from django.conf import settings
from django.core.files.storage import default_storage

from config.media import is_s3 as media_is_s3

FILESYSTEM = {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def s3_storage(*, bucket: str, endpoint: str | None, region: str | None, location: str, **credentials) -> dict:
    """An S3 media storage as settings.STORAGES["default"] names it, under `location`."""
    from config.settings import STORAGES as CONFIGURED

    options = dict(CONFIGURED["default"].get("OPTIONS", {})) if is_s3(CONFIGURED["default"]) else {}
    options |= {
        "bucket_name": bucket, "endpoint_url": endpoint, "region_name": region, "location": location,
        "signature_version": "s3v4", "default_acl": None, "querystring_auth": True,
        "querystring_expire": settings.QUORUM_S3_URL_SECONDS, "file_overwrite": False, **credentials,
    }  # fmt: skip
    return {"BACKEND": "config.media.S3MediaStorage", "OPTIONS": options}


def is_s3(storage: dict | None = None) -> bool:
    return media_is_s3(storage if storage is not None else settings.STORAGES["default"])


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"tests/{uuid.uuid4().hex}"


def media_env() -> dict[str, str]:
    """The environment a worker or server process started by a test needs to read and write
    this test's media: the same folder, or the same bucket, prefix and credentials."""
    env = {"QUORUM_MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    storage = settings.STORAGES["default"]
    if not is_s3(storage):
        return env | {"QUORUM_S3_BUCKET": ""}
    options = storage["OPTIONS"]
    env |= {
        "QUORUM_S3_BUCKET": options["bucket_name"],
        "QUORUM_S3_ENDPOINT_URL": options.get("endpoint_url") or "",
        "QUORUM_S3_REGION": options.get("region_name") or "",
        "QUORUM_S3_LOCATION": options.get("location") or "",
        "QUORUM_S3_URL_SECONDS": str(options.get("querystring_expire", settings.QUORUM_S3_URL_SECONDS)),
    }
    if options.get("access_key"):
        env |= {"AWS_ACCESS_KEY_ID": options["access_key"], "AWS_SECRET_ACCESS_KEY": options["secret_key"]}
    return {key: value for key, value in env.items() if value or key == "QUORUM_S3_BUCKET"}


def media_files() -> set[str]:
    """Every stored media file's name (this test's folder or key prefix)."""
    if is_s3():
        storage = default_storage
        prefix = storage._normalize_name("")  # the location, with its slash
        names = set()
        for page in storage.connection.meta.client.get_paginator("list_objects_v2").paginate(
            Bucket=storage.bucket_name, Prefix=prefix
        ):
            names |= {item["Key"][len(prefix) :].lstrip("/") for item in page.get("Contents", [])}
        return names
    root = settings.MEDIA_ROOT
    return {os.path.relpath(os.path.join(folder, name), root) for folder, _, files in os.walk(root) for name in files}


def served(response) -> tuple[int, dict, bytes]:
    """What a browser ends with for a media response: Quorum's own answer, or, when Quorum
    redirected to a presigned URL on the S3 server, the storage's (status, headers, body)."""
    if response.status_code == 302 and is_s3() and response["Location"].startswith(("http://", "https://")):
        import requests

        answer = requests.get(response["Location"], timeout=30)
        return answer.status_code, answer.headers, answer.content
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, response.headers, body
