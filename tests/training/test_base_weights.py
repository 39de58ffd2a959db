"""Base weights: safetensors checked tensor by tensor before anything is stored, no pickle
from a person ever loaded, a changed file refused before a run loads it, and a run that
really starts from the base (backbone kept, head narrowed to the base's `person`)."""

import hashlib
import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from safetensors.numpy import save as safetensors_bytes

from datasets.models import Image
from groundtruth.models import Annotation
from projects.models import Role
from tests.factories import MembershipFactory
from tests.storage import media_files
from tests.training.conftest import trainable_project
from training.base_weights import architecture_tensors
from training.models import BaseWeights, ModelVersion, RunState, TrainingRun
from training.runner import training_run_execute
from training.services import training_run_create

pytestmark = pytest.mark.django_db
ARCHITECTURE = "yolo26n.yaml"


def state_arrays(classes: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """A state dict that fits yolo26n with `classes` classes, filled with seeded numbers."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, (dtype, shape) in architecture_tensors(ARCHITECTURE, classes).items():
        if dtype == "I64":
            arrays[name] = np.zeros(shape, dtype=np.int64)
        else:
            arrays[name] = rng.normal(0, 0.05, size=shape).astype(np.float32)
    return arrays


@pytest.fixture
def admin_api(api_client, people):
    api_client.force_login(people.project_admin)
    return api_client


def upload(client, content: bytes, *, name="street base", classes="pedestrian", filename="base.safetensors", **extra):
    file = io.BytesIO(content)
    file.name = filename
    data = {"file": file, "name": name, "architecture": ARCHITECTURE, "classes": classes, **extra}
    return client.post(reverse("api-base-weights"), data, format="multipart")


def stored_files() -> list[str]:
    return sorted(name.removeprefix("base-weights/") for name in media_files() if name.startswith("base-weights/"))


def test_a_safetensors_state_dict_that_fits_is_registered_for_its_uploader(admin_api, api_client, people):
    content = safetensors_bytes(state_arrays(1))
    response = upload(admin_api, content)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest() and body["format"] == "safetensors"
    assert body["classes"] == ["pedestrian"] and body["added_by"] == "adam" and body["is_shared"] is False
    assert stored_files() == [f"{body['sha256']}.safetensors"]
    assert [row["id"] for row in admin_api.get(reverse("api-base-weights")).json()] == [body["id"]]
    # another project's admin neither lists it nor may start from it
    other = MembershipFactory(project=people.other_project, user__username="olga", role=Role.ADMIN).user
    api_client.force_login(other)
    assert api_client.get(reverse("api-base-weights")).json() == []
    assert api_client.get(reverse("api-base-weight", args=[body["id"]])).status_code == 404
    # reviewers and annotators may not upload
    for user in (people.reviewer, people.annotator):
        api_client.force_login(user)
        assert upload(api_client, content, name="again").status_code == 403


def with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def bad_files() -> dict[str, tuple[bytes, str]]:
    arrays = state_arrays(1)
    first = next(name for name, array in arrays.items() if array.ndim == 4)
    wrong_shape = {**arrays, first: np.zeros((3, 3, 3, 3), dtype=np.float32)}
    wrong_dtype = {**arrays, first: arrays[first].astype(np.int32)}
    unknown = {**arrays, "model.99.secret.weight": np.zeros(4, dtype=np.float32)}
    whole = safetensors_bytes(arrays)
    claim = {"dtype": "F32", "shape": [2500, 1000, 1000], "data_offsets": [0, 10**10]}
    ten_gb = with_header({"model.0.conv.weight": claim}, b"\0" * 64)
    return {
        "wrong shape": (safetensors_bytes(wrong_shape), f"Tensor {first} has shape [3, 3, 3, 3]"),
        "wrong dtype": (safetensors_bytes(wrong_dtype), f"Tensor {first} is I32"),
        "unknown tensor": (safetensors_bytes(unknown), "model.99.secret.weight is not part of yolo26n.yaml"),
        "truncated": (whole[: len(whole) - 1000], "truncated"),
        "header claims 10 GB": (ten_gb, "claims bytes 0 to 10,000,000,000"),
        "not safetensors": (b"PK\x03\x04 a zip, say", "Not a safetensors file"),
    }


@pytest.mark.parametrize("case", list(bad_files()))
def test_a_safetensors_file_that_does_not_fit_is_refused_and_nothing_is_stored(admin_api, case):
    content, reason = bad_files()[case]
    response = upload(admin_api, content)
    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]["message"], response.json()
    assert not BaseWeights.objects.exists() and stored_files() == []


class WritesAMarker:
    """A pickle that, unpickled, would create the file `path`."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_a_pickle_is_refused_everywhere_a_file_goes_in_and_never_unpickled(admin_api, people, tmp_path):
    marker = tmp_path / "unpickled"
    evil = pickle.dumps({"model": WritesAMarker(str(marker)), "epoch": 1})
    answers = {
        "base weights as .pt": upload(admin_api, evil, filename="yolo11n.pt").status_code,
        "base weights as .safetensors": upload(admin_api, evil, filename="yolo11n.safetensors").status_code,
    }
    image_url = reverse("api-project-images", args=[people.project.pk])
    file = io.BytesIO(evil)
    file.name = "street.pt"
    answers["image upload"] = admin_api.post(image_url, {"files": [file]}, format="multipart").status_code
    for fmt in ("coco", "yolo", "voc", "labelstudio", "cvat"):
        file = io.BytesIO(evil)
        file.name = "export.pt"
        data = {"file": file, "format": fmt, "target": "gold"}
        url = reverse("api-project-import", args=[people.project.pk])
        answers[f"{fmt} import"] = admin_api.post(url, data, format="multipart").status_code
    image_status = answers.pop("image upload")
    # an upload of several files answers per file: 200 with the file refused, or 4xx when all are
    assert image_status in (200, 415) and not Image.objects.exists(), image_status
    assert all(400 <= status < 500 for status in answers.values()), answers
    assert not marker.exists()
    assert not BaseWeights.objects.exists() and not Annotation.objects.exists()


@pytest.fixture
def street(db, settings, tmp_path):
    settings.QUORUM_TRAINING_DIR = tmp_path / "training"
    # runs execute in this process, inside the test's transaction: the heartbeat thread's own
    # connection cannot see the run on PostgreSQL, and would take it for lost if it beat
    settings.QUORUM_TRAINING_HEARTBEAT_SECONDS = 3600
    return trainable_project(images=24)


def registered(street, content: bytes, classes: list[str], name: str = "base") -> BaseWeights:
    from training.base_weights import base_weights_upload

    return base_weights_upload(
        user=street.admin, file=io.BytesIO(content), size=len(content), name=name, architecture=ARCHITECTURE,
        classes=classes,
    )  # fmt: skip


def test_a_base_changed_on_disk_fails_the_next_run_with_that_reason(street):
    base = registered(street, safetensors_bytes(state_arrays(1)), ["pedestrian"])
    run = training_run_create(
        project=street.project, user=street.admin, init="base", base_weights=base.pk, epochs=1, imgsz=160
    )
    with default_storage.open(base.file, "rb") as stored:
        changed = stored.read()[:-4] + b"\0\0\0\1"
    default_storage.delete(base.file)  # the same name, other bytes (on S3 as on a disk)
    assert default_storage.save(base.file, ContentFile(changed)) == base.file
    done = training_run_execute(run_id=run.pk, worker="pytest")
    assert done.state == RunState.FAILED
    assert "changed on disk since they were registered" in done.error and "refusing to load them" in done.error
    assert not ModelVersion.objects.exists()


def test_a_run_may_start_only_from_base_weights_its_caller_may_use(street, api_client, people):
    foreign = registered(street, safetensors_bytes(state_arrays(1)), ["pedestrian"])
    other_admin = MembershipFactory(project=street.project, user__username="street-ada", role=Role.ADMIN).user
    api_client.force_login(other_admin)
    url = f"/api/v1/projects/{street.project.pk}/training-runs/"
    response = api_client.post(url, {"init": "base", "base_weights": foreign.pk, "epochs": 1}, format="json")
    assert response.status_code == 400 and "base_weights" in response.json()["error"]["fields"]
    response = api_client.post(url, {"init": "scratch", "base_weights": foreign.pk}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["base_weights"] == [
        "Only with init=base."
    ]
    assert not TrainingRun.objects.exists()


def base_file(tmp_path, classes: list[str], seed: int) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = state_arrays(len(classes), seed=seed)
    path = tmp_path / f"base-{seed}.safetensors"
    path.write_bytes(safetensors_bytes(arrays))
    return path, arrays


def test_the_starting_model_keeps_the_base_and_narrows_its_head_to_person(tmp_path):
    from training.trainer import base_model, class_rows

    assert class_rows(["car", "person", "dog"], ["pedestrian"]) == [1]
    assert class_rows(["car", "dog"], ["pedestrian"]) is None
    path, arrays = base_file(tmp_path, ["car", "person", "dog"], seed=3)
    spec = {
        "format": "safetensors",
        "path": str(path),
        "architecture": ARCHITECTURE,
        "classes": ["car", "person", "dog"],
    }
    model, how = base_model(spec, ["pedestrian"])
    state = model.state_dict()
    assert how == "head narrowed to the base's person" and model.model[-1].nc == 1
    backbone = [name for name in arrays if name.startswith("model.0.") and arrays[name].dtype == np.float32]
    assert backbone and all(np.array_equal(state[name].numpy(), arrays[name]) for name in backbone)
    for head in ("model.23.cv3.0.2", "model.23.one2one_cv3.0.2"):
        assert np.array_equal(state[f"{head}.weight"].numpy(), arrays[f"{head}.weight"][1:2])
        assert np.array_equal(state[f"{head}.bias"].numpy(), arrays[f"{head}.bias"][1:2])
    # a base without the label: every layer that fits, and a new one-class head
    path, arrays = base_file(tmp_path, ["car", "dog"], seed=4)
    model, how = base_model({**spec, "path": str(path), "classes": ["car", "dog"]}, ["pedestrian"])
    state = model.state_dict()
    assert how.startswith("new head;") and state["model.23.cv3.0.2.weight"].shape[0] == 1
    assert all(np.array_equal(state[name].numpy(), arrays[name]) for name in backbone)


def test_a_run_from_a_base_trains_and_its_model_exports_as_a_base_again(street, tmp_path):
    content = safetensors_bytes(state_arrays(3, seed=5))
    base = registered(street, content, ["car", "person", "dog"])
    run = training_run_create(
        project=street.project, user=street.admin, init="base", base_weights=base.pk, epochs=1, imgsz=160, batch=8,
        device="cpu",
    )  # fmt: skip
    assert run.base_weights_sha256 == base.sha256 and run.architecture == ARCHITECTURE
    done = training_run_execute(run_id=run.pk, worker="pytest")
    assert done.state == RunState.SUCCEEDED, (done.error, done.log_tail[-2000:])
    assert done.base_start == "head narrowed to the base's person"
    model = ModelVersion.objects.get(run=done)
    client = Client()
    client.force_login(street.reviewer)
    for page in (reverse("training-run", args=[done.pk]), reverse("model", args=[model.pk])):
        html = client.get(page).content.decode()
        assert base.sha256 in html and "head narrowed to the base&#x27;s person" in html, page
    target = tmp_path / "exported.safetensors"
    call_command("base_weights_export", str(model.pk), str(target), stdout=io.StringIO())
    from safetensors import safe_open

    with safe_open(str(target), "np") as exported:
        assert exported.metadata()["architecture"] == ARCHITECTURE
        assert json.loads(exported.metadata()["classes"]) == ["pedestrian"]
    # the export is a base another installation accepts: every tensor fits yolo26n with one class
    again = registered(street, target.read_bytes(), ["pedestrian"], name="street model 1")
    assert again.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()


def test_an_operator_registers_a_pt_from_the_shell_and_a_run_starts_from_it(street, tmp_path):
    # a model this installation trained stands in for a .pt downloaded from Ultralytics' releases
    from training.runner import verified_weights_path

    first = training_run_create(project=street.project, user=street.admin, epochs=1, imgsz=160, batch=8, device="cpu")
    model = ModelVersion.objects.get(run=training_run_execute(run_id=first.pk, worker="pytest"))
    with verified_weights_path(model) as weights:
        path = tmp_path / "yolo26n-street.pt"
        path.write_bytes(weights.read_bytes())
    output = io.StringIO()
    call_command("base_weights_add", str(path), "--name", "street v1", "--source", "run 1", stdout=output)
    base = BaseWeights.objects.get(name="street v1")
    assert base.format == "pt" and base.is_shared and base.added_by is None and base.classes == ["pedestrian"]
    assert base.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and base.sha256 in output.getvalue()
    assert base.architecture == ARCHITECTURE
    # every project admin may start from it
    other = trainable_project(images=24, name="Other")
    run = training_run_create(
        project=other.project, user=other.admin, init="base", base_weights=base.pk, epochs=1, imgsz=160, batch=8,
        device="cpu",
    )  # fmt: skip
    done = training_run_execute(run_id=run.pk, worker="pytest")
    assert done.state == RunState.SUCCEEDED, (done.error, done.log_tail[-2000:])
    assert done.base_start == "head narrowed to the base's pedestrian"


def test_the_base_weights_page_lists_and_uploads(client, people):
    client.force_login(people.project_admin)
    url = reverse("base-weights")
    bad = io.BytesIO(b"PK\x03\x04 not tensors")
    bad.name = "w.safetensors"
    response = client.post(url, {"file": bad, "name": "street", "architecture": ARCHITECTURE, "classes": "pedestrian"})
    assert response.status_code == 400 and "Not a safetensors file" in response.content.decode()
    assert not BaseWeights.objects.exists() and stored_files() == []
    good = io.BytesIO(safetensors_bytes(state_arrays(1)))
    good.name = "w.safetensors"
    response = client.post(url, {"file": good, "name": "street", "architecture": ARCHITECTURE, "classes": "pedestrian"})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "street" in page and BaseWeights.objects.get().sha256[:12] in page
    client.force_login(people.reviewer)
    assert client.get(url).status_code == 403


def test_an_exported_model_as_base_beats_scratch_on_a_fresh_project(street, tmp_path):
    # a model that detects: three epochs on the street project from the starter checkpoint
    from training.starter import starter_register

    quick = {"epochs": 3, "imgsz": 160, "batch": 8, "device": "cpu"}
    first = training_run_create(
        project=street.project, user=street.admin, init="base", base_weights=starter_register().pk, **quick
    )
    model = ModelVersion.objects.get(run=training_run_execute(run_id=first.pk, worker="pytest"))
    exported = tmp_path / "street.safetensors"
    call_command("base_weights_export", str(model.pk), str(exported), stdout=io.StringIO())
    # on a fresh synthetic project, the same snapshot three epochs from scratch and from that export
    fresh = trainable_project(images=40, name="Fresh")
    base = registered(fresh, exported.read_bytes(), ["pedestrian"], name="street model")
    scratch = training_run_create(project=fresh.project, user=fresh.admin, **quick)
    based = training_run_create(project=fresh.project, user=fresh.admin, init="base", base_weights=base.pk, **quick)
    TrainingRun.objects.filter(pk=based.pk).update(snapshot=scratch.snapshot)
    results = {}
    for name, run in (("scratch", scratch), ("base", based)):
        done = training_run_execute(run_id=run.pk, worker="pytest")
        assert done.state == RunState.SUCCEEDED, (done.error, done.log_tail[-2000:])
        human = done.evaluation["human"]
        results[name] = (done.evaluation["coco"]["ap50"], human["model_mean"]["recall_at_precision"] or 0.0)
    print(f"\nAP50 and recall at the humans' precision, 3 epochs: {results}")
    assert results["base"][0] > results["scratch"][0] + 0.1, results
    assert results["base"][1] > results["scratch"][1], results
