"""Dataset snapshots: a consensus version frozen as a YOLO dataset, test split kept apart,
ignore regions masked, the same inputs giving the same snapshot."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from config.errors import Conflict
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.computing import consensus_version_compute
from groundtruth.models import Annotation, Box
from groundtruth.services import adjudication_save, consensus_version_create
from tests import images as test_images
from tests.factories import MembershipFactory
from tests.storage import media_files
from training.models import DatasetSnapshot
from training.runner import snapshot_local_dataset
from training.snapshots import snapshot_create

pytestmark = pytest.mark.django_db

PERSON = (20.0, 10.0, 60.0, 90.0)
CROWD = (120.0, 20.0, 180.0, 80.0)


@pytest.fixture
def version(people):
    data = [test_images.image_bytes("PNG", size=(200, 100), seed=70 + i) for i in range(10)]
    uploads = [IncomingImage(name=f"{i}.png", file=io.BytesIO(d), size=len(d)) for i, d in enumerate(data)]
    image_ingest(project=people.project, uploads=uploads, user=None)
    stored = list(Image.objects.filter(project=people.project).order_by("pk"))
    for index, image in enumerate(stored):
        Image.objects.filter(pk=image.pk).update(split="train" if index < 6 else "val" if index < 8 else "test")
    annotators = [people.annotator] + [
        MembershipFactory(project=people.project, user__username=f"ann{i}").user for i in range(2)
    ]
    for image in stored:
        for annotator in annotators:
            annotation = Annotation.objects.create(image=image, annotator=annotator)
            Box.objects.create(annotation=annotation, x1=PERSON[0], y1=PERSON[1], x2=PERSON[2], y2=PERSON[3])
            Box.objects.create(
                annotation=annotation, x1=CROWD[0], y1=CROWD[1], x2=CROWD[2], y2=CROWD[3], is_ignored=True
            )
    Image.objects.filter(project=people.project).update(submitted_count=3)
    created = consensus_version_create(project=people.project, user=people.reviewer)
    return consensus_version_compute(version_id=created.pk)


def test_a_snapshot_is_the_train_and_val_ground_truth_as_a_yolo_dataset(people, version, tmp_path):
    snapshot = snapshot_create(version=version, user=people.project_admin)
    assert snapshot.images == {"train": 6, "val": 2} and snapshot.boxes == 8 and snapshot.masked_regions == 8
    _, files = default_storage.listdir(f"{snapshot.storage_prefix}/images/train")
    assert len(files) == 6
    assert not [
        name for name in media_files() if name.startswith(f"{snapshot.storage_prefix}/images/test/")
    ]  # kept apart
    label = default_storage.open(f"{snapshot.storage_prefix}/labels/train/{files[0].rsplit('.', 1)[0]}.txt").read()
    cx, cy, w, h = (float(v) for v in label.decode().split()[1:])
    assert (cx, cy, w, h) == pytest.approx((40 / 200, 50 / 100, 40 / 200, 80 / 100))
    # ultralytics' own dataset check accepts it
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(snapshot_local_dataset(snapshot, tmp_path / "dataset")))
    assert data["nc"] == 1 and data["names"] == {0: "pedestrian"}


def test_ignore_regions_are_filled_with_the_image_mean(people, version):
    snapshot = snapshot_create(version=version, user=None)
    _, files = default_storage.listdir(f"{snapshot.storage_prefix}/images/train")
    pixels = np.asarray(PILImage.open(default_storage.open(f"{snapshot.storage_prefix}/images/train/{files[0]}")))
    region = pixels[25:75, 125:175].reshape(-1, 3).astype(float)  # inside CROWD, away from its edges
    assert region.std(axis=0).max() < 3  # one flat colour
    np.testing.assert_allclose(region.mean(axis=0), pixels.reshape(-1, 3).mean(axis=0), atol=12)
    outside = pixels[:, :110].reshape(-1, 3).astype(float)
    assert outside.std(axis=0).max() > 10  # the rest of the (random) image is untouched


def test_the_same_inputs_give_the_same_snapshot_and_a_change_a_new_one(people, version):
    first = snapshot_create(version=version, user=None)
    assert snapshot_create(version=version, user=None).pk == first.pk
    assert DatasetSnapshot.objects.count() == 1
    train_image = Image.objects.filter(project=people.project, split="train").order_by("pk").first()
    adjudication_save(
        image=train_image,
        reviewer=people.reviewer,
        boxes=[{"x1": 10, "y1": 10, "x2": 50, "y2": 95, "label": "pedestrian"}],
    )
    second = snapshot_create(version=version, user=None)
    assert second.pk != first.pk and second.content_hash != first.content_hash
    assert second.masked_regions == 7


def test_an_unfinished_version_cannot_be_frozen(people):
    pending = consensus_version_create(project=people.project, user=people.reviewer)
    with pytest.raises(Conflict):
        snapshot_create(version=pending, user=None)
    assert not DatasetSnapshot.objects.exists()


def snapshot_files(snapshot) -> dict[str, bytes]:
    files, folders = {}, [snapshot.storage_prefix]
    while folders:
        folder = folders.pop()
        subfolders, names = default_storage.listdir(folder)
        folders += [f"{folder}/{name}" for name in subfolders]
        for name in names:
            with default_storage.open(f"{folder}/{name}", "rb") as file:
                files[f"{folder}/{name}"[len(snapshot.storage_prefix) :]] = file.read()
    return files


def test_two_snapshots_of_the_same_version_are_byte_identical(people, version):
    # given a snapshot written, read back whole, then deleted with its files
    first = snapshot_create(version=version, user=None)
    before = snapshot_files(first)
    for name in before:
        default_storage.delete(first.storage_prefix + name)
    first.delete()
    # when the same version is frozen again from scratch
    second = snapshot_create(version=version, user=None)
    # then every file has the same bytes, under the same names
    assert second.content_hash == first.content_hash
    assert len(before) == 1 + 2 * 8  # data.yaml, and an image and a label file per train/val image
    assert snapshot_files(second) == before
