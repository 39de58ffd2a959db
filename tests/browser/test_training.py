"""Training in a real browser, against a real worker: an admin starts a run from the form,
watches the progress bar and the curves move without reloading, reads the evaluation
against the humans, and promotes the model."""

import re
import time
import uuid

import numpy as np
import pytest

from tests.conftest import errors_collected, screenshot, sign_in
from tests.training.conftest import trainable_project
from tests.workers import start_worker, stop_worker
from training.data_curves import data_curve_create, figure_fits
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
            "QUORUM_TRAINING_DIR": str(settings.QUORUM_TRAINING_DIR),
            "QUORUM_TRAINING_HEARTBEAT_SECONDS": "1",
        },
    )
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        errors = errors_collected(page)
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


def test_the_data_curve_page_draws_points_and_fits_with_the_values_under_the_pointer(browser, live_server):
    trainable = trainable_project(images=24, name="Curve")
    curve, _ = data_curve_create(project=trainable.project, user=trainable.admin, imgsz=160, epochs=1)
    sizes = [20, 40, 80, 160]
    rng = np.random.default_rng(0)
    recall = [0.9 - 2.5 * n**-0.5 for n in sizes]
    ap50 = [0.85 - 2.0 * n**-0.5 for n in sizes]
    points = [
        {"fraction": f, "images": n, "recall": r, "recall_interval": [r - 0.05, r + 0.05], "ap50": a,
         "ap50_interval": [a - 0.05, a + 0.05]}
        for f, n, r, a in zip((0.125, 0.25, 0.5, 1.0), sizes, recall, ap50, strict=True)
    ]  # fmt: skip
    figures = {
        name: figure_fits(sizes, values, np.array(values) + rng.normal(0, 0.01, (50, 4)), 0.95, name)
        for name, values in (("recall", recall), ("ap50", ap50))
    }
    curve.result = {"val_images": 30, "points": points, "human": {"recall": 0.95, "precision": 0.9},
                    "figures": figures, "conditions": [], "traffic": {"images": 0, "per_week": None, "dimensions": {},
                    "note": "0 images served in the last 28 days."}}  # fmt: skip
    curve.state = "done"
    curve.save()
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    errors = errors_collected(page)
    sign_in(page, live_server.url, trainable.admin.username)
    page.goto(f"{live_server.url}/data-curves/{curve.pk}/")
    page.wait_for_selector("#chart-recall .u-over")
    legend = page.locator("#chart-recall .u-legend .u-series .u-label").all_inner_texts()
    assert [text.strip() for text in legend] == [
        "training images", "measured recall", "power fit", "logarithmic fit", "panel recall",
    ]  # fmt: skip
    # the values under the pointer: at the right edge the fits are drawn out to 4x the images
    page.locator("#chart-recall").scroll_into_view_if_needed()
    plot = page.locator("#chart-recall .u-over").bounding_box()
    page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2)
    page.mouse.move(plot["x"] + plot["width"] - 2, plot["y"] + plot["height"] / 2)
    values = page.locator("#chart-recall .u-legend .u-series .u-value").all_inner_texts()
    assert float(values[0]) == 640 and float(values[2]) == pytest.approx(0.9 - 2.5 * 640**-0.5, abs=2e-3), values
    assert page.locator("#chart-ap50 .u-legend .u-series").count() == 4  # no panel line for AP50
    assert "0 images served" in page.inner_text("#traffic")
    screenshot(page, "data-curve")
    assert errors == []
