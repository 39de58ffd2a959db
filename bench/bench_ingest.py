"""Ingest benchmark: 200 JPEGs of 1920x1080 through the upload API, against a reference
that does the same work with Pillow alone, in the same run.

Two sets of files: plain camera-less JPEGs, which Quorum checks, decodes and stores byte
for byte, and the same pictures carrying EXIF (a camera tag), which Quorum must re-encode
to drop the metadata. The reference does per file what Quorum's ingest does, on as many
threads (QUORUM_INGEST_THREADS): hash the bytes (sha256), decode the whole image upright,
then keep a clean file's bytes as they are or re-encode it with the settings Quorum stores
with (quality 95, no chroma subsampling), and write the result to a file, in the main
thread as Quorum's storage writes are. It stops where Quorum's upload answers (thumbnails
are a worker's job in both). Each side runs 3 times, alternating; the median and range of
the rates and of the ratios are printed. Target: ratio >= 0.7 for both sets; exits 1 when
one is missed.
"""

import hashlib
import io
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _setup import django_test_database
from PIL import Image, ImageOps

COUNT = 200
BATCH = 20
RUNS = 3
SIZE = (1920, 1080)


def make_jpegs(*, with_exif: bool = False) -> list[bytes]:
    """200 distinct street-like JPEGs: a few rendered scenes with a little different noise each."""
    from demo.synthetic import render_scene

    conditions = {"weather": "sun", "setting": "street"}
    bases = [np.asarray(render_scene(seed=s, conditions=conditions, size=SIZE).image, dtype=np.int16) for s in range(4)]
    rng = np.random.default_rng(1 if with_exif else 0)
    exif = Image.Exif()
    exif[0x010F] = "Bench camera"
    files = []
    for index in range(COUNT):
        noisy = np.clip(bases[index % 4] + rng.integers(-3, 4, bases[0].shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        extra = {"exif": exif.tobytes()} if with_exif else {}
        Image.fromarray(noisy).save(buffer, format="JPEG", quality=90, **extra)
        files.append(buffer.getvalue())
    return files


def _reference_one(data: bytes) -> tuple[str, bytes]:
    """What ingest does to one file, with Pillow alone: its sha256, the whole image decoded
    upright, then the bytes as sent when the file is clean, or a re-encoded JPEG."""
    digest = hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as image:
        clean = image.format == "JPEG" and image.mode == "RGB" and not image.info.get("exif") and not image.getexif()
        upright = ImageOps.exif_transpose(image).convert("RGB")
        upright.load()
    if clean:
        return digest, data
    out = io.BytesIO()
    upright.save(out, format="JPEG", quality=95, subsampling=0)
    return digest, out.getvalue()


def reference_rate(files: list[bytes], *, threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="quorum-bench-ingest-") as folder:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for start in range(0, len(files), BATCH):  # in the API's batches
                for digest, stored in pool.map(_reference_one, files[start : start + BATCH]):
                    (Path(folder) / f"{digest}.jpg").write_bytes(stored)
        return len(files) / (time.perf_counter() - started)


def api_rate(files: list[bytes], *, name: str) -> float:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from datasets.models import Image as ImageRow
    from projects.models import Membership, Project, Role
    from tests.factories import UserFactory

    project = Project.objects.create(name=name)
    admin = UserFactory(username="bench-admin")
    Membership.objects.get_or_create(project=project, user=admin, role=Role.ADMIN)
    client = Client()
    client.force_login(admin)
    url = f"/api/v1/projects/{project.pk}/images/"
    started = time.perf_counter()
    for start in range(0, len(files), BATCH):
        batch = [
            SimpleUploadedFile(f"img_{start + i:04d}.jpg", data) for i, data in enumerate(files[start : start + BATCH])
        ]
        response = client.post(url, {"files": batch, "conditions": '{"weather": "sun"}'})
        assert response.status_code == 201, response.content[:500]
    elapsed = time.perf_counter() - started
    assert ImageRow.objects.filter(project=project).count() == len(files)
    return len(files) / elapsed


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} [{min(values):.2f}, {max(values):.2f}]"


def main() -> None:
    with django_test_database():
        from django.conf import settings

        threads = max(1, settings.QUORUM_INGEST_THREADS)
        plain, tagged = make_jpegs(), make_jpegs(with_exif=True)
        megabytes = sum(len(f) for f in plain) / 2**20
        print(f"ingest: {COUNT} JPEGs of {SIZE[0]}x{SIZE[1]} ({megabytes:.0f} MiB), API batches of {BATCH}, "
              f"{threads} thread(s) on both sides, {RUNS} runs each")  # fmt: skip
        # Warm up both paths (imports, URL resolver, broker connection) on other files.
        reference_rate(plain[:10], threads=threads)
        api_rate([tagged[0]], name="warm-up")
        missed = []
        for label, files in (("plain JPEGs (stored as sent)", plain), ("JPEGs with EXIF (re-encoded)", tagged)):
            reference, api = [], []
            for run in range(RUNS):
                reference.append(reference_rate(files, threads=threads))
                api.append(api_rate(files, name=f"{label} {run}"))
            ratios = [a / r for a, r in zip(api, reference, strict=True)]
            print(f"  {label}: images/s, median [range]")
            print(f"    reference (Pillow, same work):  {spread(reference)}")
            print(f"    Quorum upload API:              {spread(api)}")
            print(f"    ratio API / reference:          {spread(ratios)}  (target >= 0.70)")
            if statistics.median(ratios) < 0.7:
                missed.append(label)
        if missed:
            print(f"MISSED: {', '.join(missed)}")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
