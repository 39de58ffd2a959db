"""The demo accounts `make run` prints: made once, stable across runs, able to sign in."""

import json

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from demo.services import DEMO_PROJECT_NAME, demo_accounts_ensure
from projects.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_demo_accounts_are_created_once_and_sign_in(tmp_path):
    secrets_file = tmp_path / "demo-accounts.json"
    # when they are ensured twice (two `make run`s)
    first = demo_accounts_ensure(secrets_file=secrets_file)
    second = demo_accounts_ensure(secrets_file=secrets_file)
    # then the same passwords come back, are stored privately, and work
    assert [(a.username, a.password) for a in first] == [(a.username, a.password) for a in second]
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    stored = json.loads(secrets_file.read_text())
    for account in first:
        assert stored[account.username] == account.password
        assert authenticate(username=account.username, password=account.password) is not None
    assert [(a.username, a.role) for a in first] == [
        ("admin", "admin"),
        ("reviewer", "reviewer"),
        ("annotator1", "annotator"),
        ("annotator2", "annotator"),
        ("annotator3", "annotator"),
    ]
    # and the roles are real: staff admin, and members of the demo project
    User = get_user_model()
    assert User.objects.get(username="admin").is_staff
    project = Project.objects.get(name=DEMO_PROJECT_NAME)
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {
        "reviewer": "reviewer",
        "annotator1": "annotator",
        "annotator2": "annotator",
        "annotator3": "annotator",
    }


def test_a_password_changed_by_hand_is_replaced_and_recorded(tmp_path):
    secrets_file = tmp_path / "demo-accounts.json"
    demo_accounts_ensure(secrets_file=secrets_file)
    user = get_user_model().objects.get(username="reviewer")
    user.set_password("changed-by-hand-123")
    user.save()
    accounts = {a.username: a.password for a in demo_accounts_ensure(secrets_file=secrets_file)}
    assert authenticate(username="reviewer", password=accounts["reviewer"]) is not None
    assert json.loads(secrets_file.read_text())["reviewer"] == accounts["reviewer"]


def test_command_prints_every_login(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo_accounts")
    out = capsys.readouterr().out
    stored = json.loads((tmp_path / "demo-accounts.json").read_text())
    for username, password in stored.items():
        assert username in out and password in out


def test_the_demo_starts_with_gold_tasks_from_its_known_truth_on_fully_annotated_images(tmp_path):
    from demo.models import SyntheticTruth
    from demo.services import demo_gold_ensure
    from demo.simulation import panel_simulate
    from demo.synthetic_data import synthetic_images_add
    from groundtruth.models import AnnotationKind, Box
    from groundtruth.selectors import gold_references, panels

    demo_accounts_ensure(secrets_file=tmp_path / "demo-accounts.json")
    project = Project.objects.get(name=DEMO_PROJECT_NAME)
    synthetic_images_add(project=project, count=24, seed=0, size=(160, 128))
    panel_simulate(project=project, annotators=3, fraction=0.6)
    complete = set(panels(project=project))
    assert demo_gold_ensure(project=project, count=5) == 5
    gold = set(project.images.filter(is_gold=True).values_list("pk", flat=True))
    assert len(gold) == 5 and gold <= complete  # every annotator of the panel is anchored by some
    references = gold_references(project=project)
    for image_id in gold:
        truth = SyntheticTruth.objects.get(image_id=image_id)
        boxes, ignored = references[image_id]
        assert boxes[~ignored].tolist() == [[float(v) for v in box] for box in truth.boxes]
        assert boxes[ignored].tolist() == [[float(v) for v in box] for box in truth.ignore]
    # once: a second `make run` keeps the gold it has
    assert demo_gold_ensure(project=project, count=9) == 5
    assert Box.objects.filter(annotation__kind=AnnotationKind.GOLD).values("annotation").distinct().count() == 5
