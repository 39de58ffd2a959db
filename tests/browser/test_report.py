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
    assert page.locator("#annotators table").first.locator("tbody tr").count() == 3
    assert "Human-level baseline" in page.inner_text("#baseline")
    # recall by height under its own column, "-" where none of their images had that height
    from groundtruth.models import AgreementReport
    from groundtruth.reports import height_labels

    rows = AgreementReport.objects.get(version=world.version).data["baseline"]["annotators"]
    assert any(len(row["recall_by_height"]) < 3 for row in rows)  # someone's images lack a height
    expected = {
        row["name"]: [
            "-" if row["recall_by_height"].get(label) is None else f"{row['recall_by_height'][label]:.2f}"
            for label in height_labels()
        ]
        for row in rows
    }
    for row in page.locator("#baseline tbody tr:not(.total)").all():
        cells = row.locator("td").all_inner_texts()
        assert len(cells) == 9 and cells[-3:] == expected[cells[0]], cells
    heights = [row.split("\t")[0] for row in page.locator("#heights tbody tr").all_inner_texts()]
    assert heights == ["<50 px", "50-100 px", ">=100 px"]  # smallest first, whatever the JSON column kept
    screenshot(page, "agreement-report")
    assert errors == []


def test_the_consensus_page_shows_a_version_once_it_is_computed(browser, live_server):
    from groundtruth.computing import consensus_version_compute
    from groundtruth.models import ConsensusVersion

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


def test_the_consensus_form_weighs_a_panel_of_three_by_default_and_a_quorum_unticks_it(browser, live_server):
    from groundtruth.models import ConsensusVersion

    world = trainable_project(images=8, name="Form")
    assert world.version.reliability_weighted  # k = 3: the default
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server.url, world.reviewer.username)
    page.goto(f"{live_server.url}/projects/{world.project.pk}/consensus/")
    weighted = page.locator("#new-version input[name=reliability_weighted]")
    assert weighted.is_checked()
    page.fill("#new-version input[name=quorum]", "0.6")  # a plain rule: weighting goes with it
    assert not weighted.is_checked()
    page.click("#new-version button[type=submit]")
    page.wait_for_selector("tr.version >> text=v2")
    version = ConsensusVersion.objects.get(project=world.project, number=2)
    assert version.quorum == 0.6 and not version.reliability_weighted
    assert errors == []


def test_a_weighted_report_shows_each_annotator_s_rates_intervals_and_gold_anchors(browser, live_server):
    from demo.models import SyntheticTruth
    from groundtruth.computing import consensus_version_compute
    from groundtruth.services import consensus_version_create, gold_set

    world = trainable_project(images=24, name="Anchored")
    for truth in SyntheticTruth.objects.filter(image__project=world.project).order_by("image_id")[:6]:
        boxes = [{"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": "pedestrian"} for x1, y1, x2, y2 in truth.boxes]
        gold_set(image=truth.image, reviewer=world.reviewer, boxes=boxes)
    version = consensus_version_create(project=world.project, user=world.reviewer)
    version = consensus_version_compute(version_id=version.pk)
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(page, live_server.url, world.reviewer.username)
    page.goto(f"{live_server.url}/consensus/{version.pk}/report/")
    assert "reliability-weighted" in page.inner_text("main")
    assert "Gold images anchor the rates" in page.inner_text("#weighting")
    rows = [row.split("\t") for row in page.locator("#rates tbody tr").all_inner_texts()]
    assert len(rows) == 3
    for row in rows:
        false_positive, miss, anchors = row[2], row[3], row[-1]
        assert "[" in false_positive and "[" in miss  # the rate and its 95% interval
        assert 0 < int(anchors) <= 6
    assert sum(int(row[-1]) for row in rows) == 6 * 3  # each gold image anchors its panel of three
    screenshot(page, "agreement-report-weighted")
