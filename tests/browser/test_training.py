"""Training in a real browser, against a real worker: an admin starts a run from the form,
watches the progress bar and the curves move without reloading, reads the evaluation
against the humans, and promotes the model."""

import re
import time
import uuid

import pytest

from tests.conftest import screenshot, sign_in
from tests.training.conftest import trainable_project
from tests.workers import start_worker, stop_worker
from training.models import ModelStage, ModelVersion, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(page, expression: str, *, seconds: float) -> None:
    """Poll `expression` in the page (wait_for_function would eval a string, which the CSP forbids)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"{expression} stayed false for {seconds} s"
        page.wait_for_timeout(250)


def test_an_admin_trains_watches_reads_and_promotes(browser, live_server, settings, tmp_path):
    trainable = trainable_project()
    settings.QUORUM_TRAINING_DIR = tmp_path / "training"
    worker = start_worker(
        "training",
        f"pytest-browser-training-{uuid.uuid4().hex[:8]}",
        env={
            "QUORUM_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "QUORUM_TRAINING_DIR": str(settings.QUORUM_TRAINING_DIR),
            "QUORUM_TRAINING_HEARTBEAT_SECONDS": "1",
        },
    )
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, live_server.url, trainable.admin.username)

        # the admin fills the form on the project's training page
        page.goto(f"{live_server.url}/projects/{trainable.project.pk}/training/")
        page.select_option("select[name=architecture]", "yolo26n.yaml")
        page.fill("input[name=imgsz]", "160")
        page.fill("input[name=epochs]", "3")
        page.fill("input[name=batch]", "8")
        page.fill("input[name=device]", "cpu")
        page.click("#new-run button[type=submit]")
        page.wait_for_url("**/training-runs/*/")
        run = TrainingRun.objects.get(project=trainable.project)
        assert "Run 1 is queued" in page.inner_text(".messages")

        # the bar and the curves move while the page stays put
        page.evaluate("window.quorumNoReload = true")
        wait_until(page, "document.getElementById('run-progress').value >= 1", seconds=180)
        assert page.evaluate("window.quorumNoReload") is True  # same document: updated by polling
        assert page.locator("#chart-map .u-legend .u-series").count() == 3  # epoch, mAP50, mAP50-95
        assert page.locator("#chart-loss .u-legend .u-series").count() >= 3
        # the values under the pointer: the legend follows the cursor over the plot
        plot = page.locator("#chart-map .u-over").bounding_box()
        page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2)
        values = page.locator("#chart-map .u-legend .u-series .u-value").all_inner_texts()
        assert all(re.fullmatch(r"-?[0-9.e-]+", value) for value in values[:2]), values
        assert "epoch" in page.inner_text("#run-epochs")
        screenshot(page, "run")

        # when it is done, the page shows the evaluation against the humans
        page.wait_for_selector("#evaluation", timeout=240_000)
        run.refresh_from_db()
        assert run.state == "succeeded", run.error
        text = page.inner_text("#evaluation")
        assert "Against the humans" in text and "Recall at the humans' precision" in text
        assert page.inner_text("#evaluation td.ap50") == f"{run.evaluation['coco']['ap50']:.4f}"
        assert page.inner_text("#run-state") == "Succeeded"
        screenshot(page, "run-done")

        # and the model is promoted from its page
        page.click("text=Model 1: promote or inspect")
        page.click("#promote-form button")
        assert "is the champion" in page.inner_text(".messages")
        assert page.inner_text("#model-stage") == "Champion"
        assert ModelVersion.objects.get(run=run).stage == ModelStage.CHAMPION
        screenshot(page, "model")
        assert errors == []
    finally:
        stop_worker(worker)
