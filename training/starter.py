"""The starter checkpoint: yolo26n trained by `manage.py starter_weights_build` on synthetic
street scenes whose seeds are disjoint from the demo's, shipped as half-precision
safetensors (under 10 MB) with its sha256 here. `make run` registers it as shared base
weights and the demo's first run starts from it. Synthetic scenes only: a real project
starts from real pretrained weights."""

from pathlib import Path

from django.db import transaction

from training.base_weights import base_weights_upload_checked
from training.models import BaseWeights
from training.runtime import file_sha256

STARTER_PATH = Path(__file__).resolve().parent / "starter" / "yolo26n-synthetic-pedestrians.safetensors"
STARTER_NAME = "starter: yolo26n, synthetic pedestrians"
STARTER_ARCHITECTURE = "yolo26n.yaml"
STARTER_CLASSES = ("pedestrian",)
# The demo renders seed 0 (scene seeds 0, 1, 2, ...); the starter's scenes are 7 * 1_000_003 + i.
STARTER_SEED = 7
STARTER_SHA256 = "bde2cd5762f445fb53c7f7b10aff18a8fac5f20bf584fb33e54f91f325f438f9"


def starter_register() -> BaseWeights | None:
    """The starter as shared base weights (registered once, checked like any upload); None
    when the file is not in this checkout or is not the one whose sha256 is recorded here."""
    if not STARTER_PATH.exists() or file_sha256(STARTER_PATH) != STARTER_SHA256:
        return None
    existing = BaseWeights.objects.filter(sha256=STARTER_SHA256, name=STARTER_NAME).first()
    if existing is not None:
        return existing
    with STARTER_PATH.open("rb") as file, transaction.atomic():
        return base_weights_upload_checked(
            file=file,
            size=STARTER_PATH.stat().st_size,
            name=STARTER_NAME,
            architecture=STARTER_ARCHITECTURE,
            classes=list(STARTER_CLASSES),
            source="Quorum's starter (manage.py starter_weights_build): synthetic scenes only",
            user=None,
            is_shared=True,
        )
