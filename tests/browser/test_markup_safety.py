"""Markup that people type (project and user names, labels, file names, skip reasons, rule
and client names, promotion reasons) is shown as text on every page: escaped in the HTML
the server sends, and never turned into elements by the pages' scripts. The pages still
work under the Content-Security-Policy, which forbids inline script."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Assignment
from projects.models import Role
from serving.models import PredictionLog, RoutingRule
from serving.services import api_client_create
from tests.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory
from tests.training.conftest import make_model, make_run, trainable_project
from training.models import PromotionDecision

MARK = '<b data-xss="1">x</b><script>window.__xss=1</script>'
PAGES = [
    "home", "account", "project-create", "project-detail", "annotate", "project-splits", "project-images",
    "project-image-upload", "project-consensus", "consensus-report", "project-my-figures", "project-review",
    "project-training", "training-run", "model", "serving-try", "serving-monitoring", "project-annotators",
    "project-serving", "project-settings",
]  # fmt: skip


def marked_world():
    """A project where everything a person names carries MARK, seen by a staff user who is
    also one of its annotators (so the canvas and 'my figures' have something to show; the
    project lets members with review rights annotate, not blind)."""
    world = trainable_project(images=6, name="Mark")
    project = world.project
    project.name = f"Street {MARK}"
    project.labels = [f"pedestrian {MARK}"]
    project.reviewers_annotate = True
    project.save()
    for user in (world.annotator, world.reviewer):
        user.first_name = MARK
        user.username = f"{user.username}{MARK}"
        user.save()
    project.images.update(original_name=f"{MARK}.jpg")
    staff = UserFactory(username="staff-mark", is_staff=True, is_superuser=True)
    MembershipFactory(project=project, user=staff, role=Role.ANNOTATOR)
    image = project.images.order_by("pk").first()
    Assignment.objects.create(
        image=image, annotator=world.annotator, leased_at="2026-01-01T00:00Z", lease_expires_at="2999-01-01T00:00Z",
        state="skipped", skip_reason=MARK,
    )  # fmt: skip
    run = make_run(world, state="failed", error=f"Training failed: {MARK}")
    model = make_model(world, ap50=0.4)
    PromotionDecision.objects.create(model=model, is_accepted=False, reason=MARK)
    client, _ = api_client_create(name=f"camera {MARK}", projects=[project], user=None)
    RoutingRule.objects.create(project=project, order=1, name=f"rule {MARK}", client=client)
    PredictionLog.objects.create(
        project=project, client=client, model=model, status=200, latency_ms=20.0, created_at=timezone.now()
    )  # the monitoring page lists the client by name
    ids = {"project_id": project.pk, "version_id": world.version.pk, "run_id": run.pk, "model_id": model.pk}
    return world, staff, ids


def url_of(name: str, ids: dict) -> str:
    from tests.test_permission_matrix import url_for

    return url_for(name, ids)


@pytest.mark.django_db
def test_the_server_sends_every_name_escaped(client, settings):
    _, staff, ids = marked_world()
    client.force_login(staff)
    for name in PAGES:
        response = client.get(url_of(name, ids))
        assert response.status_code == 200, name
        html = response.content.decode()
        assert MARK not in html and 'data-xss="1"' not in html, f"{name} sends the markup as markup"
    # and the escaped text is there where names are shown
    detail = client.get(reverse("project-detail", args=[ids["project_id"]])).content.decode()
    assert "Street &lt;b data-xss=&quot;1&quot;&gt;x&lt;/b&gt;" in detail


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_turns_a_name_into_elements_and_all_work_under_the_csp(browser, live_server):
    _, staff, ids = marked_world()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors, dialogs = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server.url, staff.username)
    page.wait_for_url(f"{live_server.url}/")
    for name in PAGES:
        response = page.goto(live_server.url + url_of(name, ids))
        assert response.status == 200, name
        assert "script-src 'self'" in response.headers["content-security-policy"]
        time.sleep(1.0)  # the scripts fetch and draw
        injected = page.evaluate("document.querySelectorAll('[data-xss]').length")
        assert injected == 0, f"{name}: a script turned a name into an element"
        assert page.evaluate("window.__xss === undefined"), name
    assert dialogs == []
    assert errors == [], errors  # a page whose script the CSP blocked would log it here
    # the canvas works under the policy: the image loads and the label is offered as text
    page.goto(f"{live_server.url}/projects/{ids['project_id']}/annotate/")
    deadline = time.monotonic() + 15
    while not page.evaluate("!!document.querySelector('canvas')") and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert page.evaluate("!!document.querySelector('canvas')")
