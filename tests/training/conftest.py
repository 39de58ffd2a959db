"""A small project that a model can be trained on in seconds: 40 synthetic street scenes of
160 x 128 pixels, annotated by a simulated panel of 3, with a finished consensus version."""

from dataclasses import dataclass

import pytest

from demo.simulation import panel_simulate
from demo.synthetic_data import synthetic_images_add
from groundtruth.computing import consensus_version_compute
from groundtruth.models import ConsensusVersion
from groundtruth.services import consensus_version_create
from projects.models import Project, Role
from tests.factories import MembershipFactory
from training.models import ModelStage, ModelVersion, RunState, TrainingRun
from training.snapshots import snapshot_create

SMALL_SCENE = (160, 128)
QUICK_RUN = {"architecture": "yolo26n.yaml", "imgsz": 160, "epochs": 3, "batch": 8, "device": "cpu"}


@dataclass
class Trainable:
    project: Project
    version: ConsensusVersion
    annotator: object
    reviewer: object
    admin: object
    outsider: object


def trainable_project(*, images: int = 40, name: str = "Street") -> Trainable:
    project = Project.objects.create(name=name, overlap_k=3, split_seed=11)
    synthetic_images_add(project=project, count=images, seed=21, size=SMALL_SCENE)
    panel_simulate(project=project, annotators=3, fraction=1.0, seed=2)
    admin = MembershipFactory(project=project, user__username=f"{name.lower()}-adam", role=Role.ADMIN).user
    version = consensus_version_create(project=project, user=admin)
    version = consensus_version_compute(version_id=version.pk)
    other = Project.objects.create(name=f"{name} elsewhere")
    return Trainable(
        project=project,
        version=version,
        annotator=MembershipFactory(project=project, user__username=f"{name.lower()}-anna", role=Role.ANNOTATOR).user,
        reviewer=MembershipFactory(project=project, user__username=f"{name.lower()}-rita", role=Role.REVIEWER).user,
        admin=admin,
        outsider=MembershipFactory(project=other, user__username=f"{name.lower()}-otto", role=Role.ADMIN).user,
    )


@pytest.fixture
def trainable(db) -> Trainable:
    return trainable_project(images=24)


def make_run(trainable: Trainable, **fields) -> TrainingRun:
    """A run row on a snapshot of the project's version, in whatever state `fields` say."""
    snapshot = snapshot_create(version=trainable.version, user=None)
    number = TrainingRun.objects.filter(project=trainable.project).count() + 1
    return TrainingRun.objects.create(project=trainable.project, number=number, snapshot=snapshot, **fields)


def make_model(
    trainable: Trainable, *, ap50: float, stage: str = ModelStage.CANDIDATE, latency_ms: float = 5.0
) -> ModelVersion:
    """A registry row with a val evaluation of the given AP50 (MR-2 1 - AP50); no files."""
    run = make_run(trainable, state=RunState.SUCCEEDED)
    number = ModelVersion.objects.filter(project=trainable.project).count() + 1
    return ModelVersion.objects.create(
        project=trainable.project, number=number, run=run, snapshot=run.snapshot,
        consensus_version=trainable.version, weights=f"models/x/{number}.pt", weights_sha256="0" * 64,
        onnx=f"models/x/{number}.onnx", onnx_sha256="1" * 64, architecture="yolo26n.yaml", imgsz=160,
        latency_ms=latency_ms, stage=stage, evaluation={"coco": {"ap50": ap50, "ap": ap50 / 2}, "mr2": 1 - ap50},
    )  # fmt: skip
