"""Ingest benchmark: 200 JPEGs of 1920x1080 through the upload API, against the bare cost
of decoding and re-encoding the same files with Pillow in a loop, in the same run.

Two sets of files: plain camera-less JPEGs, which Quorum checks, decodes and stores byte
for byte, and the same pictures carrying EXIF (a camera tag), which Quorum must re-encode
to drop the metadata. The reference loop decodes and re-encodes with the settings Quorum
stores with (quality 95, no chroma subsampling). Aim: ratio >= 0.7 for both.
"""

import io
import time

import numpy as np
from _setup import django_test_database
from PIL import Image

COUNT = 200
BATCH = 20
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


def bare_rate(files: list[bytes]) -> float:
    started = time.perf_counter()
    for data in files:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=95, subsampling=0)
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


def main() -> None:
    with django_test_database():
        plain, tagged = make_jpegs(), make_jpegs(with_exif=True)
        megabytes = sum(len(f) for f in plain) / 2**20
        print(f"ingest: {COUNT} JPEGs of {SIZE[0]}x{SIZE[1]} ({megabytes:.0f} MiB), API batches of {BATCH}")
        # Warm up both paths (imports, URL resolver, broker connection) on other files.
        bare_rate(plain[:10])
        api_rate([tagged[0]], name="warm-up")
        for label, files in (("plain JPEGs (stored as sent)", plain), ("JPEGs with EXIF (re-encoded)", tagged)):
            bare = bare_rate(files)
            api = api_rate(files, name=label)
            print(f"  {label}:")
            print(f"    bare Pillow decode + re-encode: {bare:7.2f} images/s")
            print(f"    Quorum upload API:              {api:7.2f} images/s")
            print(f"    ratio API / bare:               {api / bare:7.2f}  (aim >= 0.70)")


if __name__ == "__main__":
    main()
