"""The try-it page in a real browser: a reviewer picks ultralytics' bus.jpg, the page sends
it to the prediction API and draws the boxes of the answer."""

import pytest

from serving.cache import cache_clear
from serving.models import PredictionLog
from tests.conftest import errors_collected, screenshot, sign_in
from tests.serving.conftest import register_model
from tests.training.conftest import trainable_project
from training.models import ModelStage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_try_page_draws_the_boxes_for_bus_jpg(browser, live_server, tiny_onnx, settings, tmp_path):
    settings.QUORUM_MODEL_CACHE_DIR = tmp_path / "model-cache"
    settings.QUORUM_PREDICTION_LOG_DEFERRED = False
    cache_clear()
    trainable = trainable_project(images=8, name="Try")
    champion = register_model(trainable, tiny_onnx, stage=ModelStage.CHAMPION)
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    errors = errors_collected(page)
    sign_in(page, live_server.url, trainable.reviewer.username)

    page.goto(f"{live_server.url}/projects/{trainable.project.pk}/try/")
    page.fill("#try-conf", "0.01")  # a one-epoch model is unsure of everything
    page.click("button.sample[data-name='bus.jpg']")
    page.wait_for_selector("#try-answer:not([hidden])", timeout=60_000)

    row = PredictionLog.objects.get(status=200)
    assert row.model == champion and (row.width, row.height) == (810, 1080)  # bus.jpg, upright
    drawn = int(page.get_attribute("#try-canvas", "data-boxes"))
    assert drawn == row.boxes > 0
    assert page.inner_text("#try-answer-model").startswith(f"model {champion.number}")
    assert "champion" in page.inner_text("#try-answer-rule")
    assert page.inner_text("#try-answer-boxes") == str(row.boxes)
    # the canvas shows the photograph (not blank) at its aspect ratio
    size = page.evaluate("[document.getElementById('try-canvas').width, document.getElementById('try-canvas').height]")
    assert abs(size[0] / size[1] - 810 / 1080) < 0.01
    screenshot(page, "try")

    # and the monitoring page counts the request
    page.goto(f"{live_server.url}/projects/{trainable.project.pk}/monitoring/")
    page.wait_for_selector("#monitoring[data-requests='1']", timeout=15_000)
    assert page.locator("#totals tbody tr").count() >= 3  # all, model 1, the reviewer's session
    # the chart shows the minute's figure under the pointer (uPlot's live legend)
    plot = page.locator("#chart-requests .u-over").bounding_box()
    page.mouse.move(plot["x"] + plot["width"] - 2, plot["y"] + plot["height"] / 2)
    under = page.locator("#chart-requests .u-legend .u-series .u-value").all_inner_texts()
    assert under[1].isdigit(), under  # that minute's count of requests
    screenshot(page, "monitoring")
    assert errors == []
    cache_clear()
