"""The agreement report in a real browser: a simulated panel of 3 on 24 street scenes, its
charts drawn (inline SVG, no script) and every section shown, under the CSP."""

import pytest

from tests.conftest import screenshot, sign_in
from tests.training.conftest import trainable_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_reads_the_agreement_report(browser, live_server):
    world = trainable_project(images=24, name="Report")
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server.url, world.reviewer.username)
    page.goto(f"{live_server.url}/consensus/{world.version.pk}/report/")
    for section in ("dataset", "baseline", "annotators", "charts", "conditions", "heights"):
        assert page.locator(f"#{section}").is_visible(), section
    assert page.locator("#charts svg").count() >= 2  # who agrees with whom, and the IoU histogram
    assert page.locator("#annotators tbody tr").count() == 3
    assert "Human-level baseline" in page.inner_text("#baseline")
    heights = [row.split("\t")[0] for row in page.locator("#heights tbody tr").all_inner_texts()]
    assert heights == ["<50 px", "50-100 px", ">=100 px"]  # smallest first, whatever the JSON column kept
    screenshot(page, "agreement-report")
    assert errors == []


def test_the_consensus_page_shows_a_version_once_it_is_computed(browser, live_server):
    from groundtruth.models import ConsensusVersion
    from groundtruth.services import consensus_version_compute

    world = trainable_project(images=8, name="Waiting")
    pending = ConsensusVersion.objects.create(project=world.project, number=2, created_by=world.reviewer)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server.url, world.reviewer.username)
    page.goto(f"{live_server.url}/projects/{world.project.pk}/consensus/")
    row = page.locator("tr.version", has_text="v2")
    assert "Pending" in row.inner_text() and row.locator("a", has_text="Report").count() == 0

    consensus_version_compute(version_id=pending.pk)  # as the worker would, while the page is open

    for _ in range(40):  # the page asks every 3 s and reloads when the state changed
        if "Done" in page.locator("tr.version", has_text="v2").inner_text():
            break
        page.wait_for_timeout(250)
    row = page.locator("tr.version", has_text="v2")
    assert "Done" in row.inner_text() and row.locator("a", has_text="Report").count() == 1
    assert errors == []
