"""The move of eight models out of `annotation` (into projects, datasets, groundtruth and
demo) changes Django's state only: a database filled before the move migrates without
copying a row, and finds every row, link and content type where the models now are."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# Each app as it was before the move (the apps made by it did not exist yet).
BEFORE = [
    ("annotation", "0011_image_exif_orientation"),
    ("groundtruth", "0002_blind_panels_hashed_tokens"),
    ("training", "0003_base_weights_and_devices"),
    ("serving", "0001_clients_rules_log_drift"),
    ("projects", None),
    ("datasets", None),
    ("demo", None),
]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _leaves() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _fill(apps) -> dict:
    """Rows of every moved model (and of models that point at them), written through the
    models as they were before the move."""
    user = apps.get_model("auth", "User").objects.create(username="before-the-move")
    project = apps.get_model("annotation", "Project").objects.create(name="Made before the move", overlap_k=2)
    apps.get_model("annotation", "Membership").objects.create(project=project, user=user, role="reviewer")
    apps.get_model("annotation", "ApiToken").objects.create(user=user, prefix="abcd", key_sha256="f" * 64)
    image = apps.get_model("annotation", "Image").objects.create(
        project=project, file="images/1/aa/a.jpg", original_name="a.jpg", sha256="a" * 64, format="jpeg",
        width=640, height=480, bytes=1000, split="train", submitted_count=1,
    )  # fmt: skip
    apps.get_model("annotation", "SplitTally").objects.create(project=project, group="all", split="train", count=1)
    apps.get_model("annotation", "SyntheticTruth").objects.create(
        image=image, generator="g", seed=1, boxes=[[1, 2, 30, 90]], visible=[1.0], ignore=[]
    )
    annotation = apps.get_model("annotation", "Annotation").objects.create(image=image, annotator=user)
    apps.get_model("annotation", "Box").objects.create(annotation=annotation, x1=1, y1=2, x2=30, y2=90)
    now = timezone.now()
    assignment = apps.get_model("annotation", "Assignment").objects.create(
        image=image, annotator=user, state="submitted", leased_at=now, lease_expires_at=now, annotation=annotation
    )
    apps.get_model("annotation", "Suggestion").objects.create(image=image, boxes=[], source="model 1")
    version = apps.get_model("groundtruth", "ConsensusVersion").objects.create(
        project=project, number=1, code_version="test"
    )
    apps.get_model("groundtruth", "ImageConsensus").objects.create(version=version, image=image, annotators=1)
    # the content types Django keeps for admin's permissions and log entries, as they were named then
    types = {}
    for model in ("project", "image", "annotation", "synthetictruth"):
        ContentType.objects.filter(model=model).exclude(app_label="annotation").delete()
        types[model] = ContentType.objects.get_or_create(app_label="annotation", model=model)[0].pk
    return {
        "user": user.pk, "project": project.pk, "image": image.pk, "annotation": annotation.pk,
        "assignment": assignment.pk, "version": version.pk, "types": types,
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_database_filled_before_the_move_keeps_every_row():
    from annotation.models import Assignment, Suggestion
    from datasets.models import Image, SplitTally
    from demo.models import SyntheticTruth
    from groundtruth.models import Annotation, Box, ConsensusVersion, ImageConsensus
    from projects.models import ApiToken, Membership, Project

    executor = _migrate(BEFORE)
    try:
        old = executor.loader.project_state([node for node in BEFORE if node[1]]).apps
        assert old.get_model("annotation", "Project")._meta.db_table == "annotation_project"
        ids = _fill(old)
    finally:
        _migrate(_leaves())

    project = Project.objects.get(pk=ids["project"])
    assert project.name == "Made before the move" and project.overlap_k == 2
    assert Membership.objects.get(project=project).role == "reviewer"
    assert ApiToken.objects.get(user_id=ids["user"]).prefix == "abcd"
    image = Image.objects.get(pk=ids["image"])
    assert (image.project, image.submitted_count, image.original_name) == (project, 1, "a.jpg")
    assert SplitTally.objects.get(project=project).count == 1
    assert SyntheticTruth.objects.get(image=image).boxes == [[1, 2, 30, 90]]
    annotation = Annotation.objects.get(pk=ids["annotation"])
    assert annotation.image == image and annotation.annotator_id == ids["user"]
    assert list(Box.objects.filter(annotation=annotation).values_list("x1", "y1", "x2", "y2")) == [(1, 2, 30, 90)]
    assignment = Assignment.objects.get(pk=ids["assignment"])
    assert (assignment.image, assignment.annotation) == (image, annotation)
    assert Suggestion.objects.get(image=image).source == "model 1"
    assert ImageConsensus.objects.get(version_id=ids["version"]).image == image
    assert ConsensusVersion.objects.get(pk=ids["version"]).project == project
    # reverse relations reach across the apps
    assert project.images.get() == image and image.annotations.get() == annotation
    # the content types followed their models, keeping their ids (and so admin's permissions)
    follows = {"project": "projects", "image": "datasets", "annotation": "groundtruth", "synthetictruth": "demo"}
    for model, app in follows.items():
        assert ContentType.objects.get(app_label=app, model=model).pk == ids["types"][model]
        assert not ContentType.objects.filter(app_label="annotation", model=model).exists()


def test_production_can_leave_the_demo_app_out(tmp_path):
    """demo/ (the synthetic world, SyntheticTruth) is not needed to run Quorum: without it
    in INSTALLED_APPS the migrations still apply and the checks pass."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import config.settings as s; s.INSTALLED_APPS.remove('demo')\n"
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0); call_command('check'); print('migrated without demo')\n"
    )
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "x" * 50,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'no-demo.sqlite3'}", "QUORUM_VAR_DIR": str(tmp_path / "var"),
    }  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "migrated without demo" in result.stdout
