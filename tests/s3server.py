"""An S3 API server on 127.0.0.1 for the tests and CI: moto's server, behind a gate that
checks presigned URLs the way S3 does.

moto answers every request it can parse and does not check a presigned URL's signature or
its expiry. The gate does, for requests signed in the query string (AWS Signature Version 4,
what boto3's `generate_presigned_url` and django-storages' `url()` make with
`signature_version="s3v4"`; Version 2 URLs are refused, as in the regions that take only
Version 4): the signature is
computed again with botocore from the test credentials and compared, and a URL past
X-Amz-Date + X-Amz-Expires is refused with 403 AccessDenied "Request has expired". Requests
signed in headers (boto3's own calls) pass through to moto. One moto quirk is undone: it
echoes an upload's `x-amz-content-sha256` on every GET of the object, which S3 does not.

    python -m tests.s3server --port 9000 --bucket quorum-test

creates the bucket and serves until stopped; `s3_server_start` does the same for a test
session.
"""

import argparse
import hmac
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
ACCESS_KEY = "quorum-test-key"
SECRET_KEY = "quorum-test-secret"
REGION = "us-east-1"
# The query parameters that carry a presigned URL's authentication, not signed themselves
# except as the canonical request's auth part (botocore adds them again when signing).
AUTH_PARAMETERS = {
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
    "X-Amz-Signature", "X-Amz-Security-Token",
}  # fmt: skip


def presigned_refusal(method: str, host: str, raw_uri: str, now: datetime | None = None) -> str | None:
    """Why S3 would refuse this presigned request (a message), or None when it is sound or
    not presigned."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(raw_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)
    if "X-Amz-Signature" not in given:
        return None
    try:
        signed_at = datetime.strptime(given["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        lifetime = int(given["X-Amz-Expires"])
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError: X-Amz-Date and X-Amz-Expires are required"
    if given.get("X-Amz-Credential", "").split("/")[0] != ACCESS_KEY:
        return "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."
    rest = [(key, value) for key, value in query if key not in AUTH_PARAMETERS]
    url = f"http://{host}{parts.path}" + (f"?{urlencode(rest)}" if rest else "")
    request = AWSRequest(method=method, url=url, headers={"host": host})
    # add_auth would sign at the current time: the steps it takes, at the URL's time.
    request.context["timestamp"] = given["X-Amz-Date"]
    signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION, expires=lifetime)
    signer._modify_request_before_signing(request)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, given["X-Amz-Signature"]):
        return "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided."
    if (now or datetime.now(UTC)) > signed_at + timedelta(seconds=lifetime):
        return "AccessDenied: Request has expired"
    return None


class PresignGate:
    """WSGI middleware: presigned requests are checked before moto sees them."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if "Signature=" in query and "X-Amz-Signature=" not in query:
            return _refuse(environ, start_response, "AccessDenied: Only Signature Version 4 is accepted here.")
        if "X-Amz-Signature=" in query:
            path = (environ.get("RAW_URI") or environ.get("PATH_INFO", "/")).split("?", 1)[0]
            raw_uri = f"{path}?{query}"
            refusal = presigned_refusal(environ["REQUEST_METHOD"], environ.get("HTTP_HOST", ""), raw_uri)
            if refusal is not None:
                return _refuse(environ, start_response, refusal)

        def start_response_as_s3(status, headers, exc_info=None):
            # moto echoes the upload's payload hash on a GET; S3 does not
            headers = [(name, value) for name, value in headers if name.lower() != "x-amz-content-sha256"]
            return start_response(status, headers, exc_info)

        return self.app(environ, start_response_as_s3)


def _refuse(environ, start_response, refusal: str) -> list[bytes]:
    code, message = refusal.split(": ", 1)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body.encode())))]
    origin = environ.get("HTTP_ORIGIN")
    if origin:  # so that a browser reads the refusal instead of a CORS error
        headers.append(("Access-Control-Allow-Origin", origin))
    start_response("403 Forbidden", headers)
    return [body.encode()]


def serve(host: str, port: int, bucket: str | None) -> None:
    import logging

    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request: CI makes ~60,000
    # moto's S3 application itself: its dispatcher would find the service of every request
    # by its host, listing moto's modules on disk each time (a tenth of the server's time)

    server = make_server(
        host, port, PresignGate(create_backend_app("s3")), threaded=True,
        request_handler=MotoRequestHandler,
    )  # fmt: skip
    if bucket:
        import threading

        threading.Thread(target=_bucket_create, args=(f"http://{host}:{port}", bucket), daemon=True).start()
    print(f"S3 server on http://{host}:{port}", flush=True)
    server.serve_forever()


def _bucket_create(endpoint: str, bucket: str) -> None:
    for _ in range(100):
        try:
            client(endpoint).create_bucket(Bucket=bucket)
            print(f"bucket {bucket} created", flush=True)
            return
        except Exception:  # noqa: BLE001 - the server is still starting
            time.sleep(0.1)


def client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4"),
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def s3_server_start(bucket: str) -> tuple[subprocess.Popen, str]:
    """This module's server in a process of its own, with `bucket`; (process, endpoint URL)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server", "--port", str(port), "--bucket", bucket],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client(endpoint).head_bucket(Bucket=bucket)
            return process, endpoint
        except Exception:  # noqa: BLE001 - not up yet
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the S3 server on port {port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("QUORUM_TEST_S3_PORT", "9000")))
    parser.add_argument("--bucket", default=None, help="a bucket to create once the server is up")
    arguments = parser.parse_args()
    serve(arguments.host, arguments.port, arguments.bucket)


if __name__ == "__main__":
    main()
