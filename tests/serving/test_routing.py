"""Routing rules: order, conditions, a canary's share, shadow runs; and bad input refused with
a clear 4xx, logged as refused, never as an answer."""

import io
import queue
import uuid

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from serving import logbook
from serving.models import PredictionLog, RoutingRule
from serving.routing import route
from tests import images
from tests.serving.conftest import register_model
from tests.serving.test_predict import post_image, scene_jpeg
from tests.training.conftest import trainable_project

pytestmark = pytest.mark.django_db


def rule(pk: int, order: int, **fields) -> RoutingRule:
    return RoutingRule(pk=pk, project_id=1, order=order, name=f"rule {pk}", **fields)


def test_the_first_matching_active_rule_in_order_wins():
    rules = [
        rule(1, 1, is_active=False, model_id=11),
        rule(2, 2, client_id=7, model_id=12),
        rule(3, 3, max_width=640, max_height=480, model_id=13),
        rule(4, 4, model_id=None),
    ]
    assert route(rules, client_id=7, width=1920, height=1080, request_id="a").model_id == 12
    low = route(rules, client_id=8, width=320, height=240, request_id="a")
    assert (low.rule.pk, low.model_id) == (3, 13)
    hd = route(rules, client_id=8, width=1920, height=1080, request_id="a")
    assert (hd.rule.pk, hd.model_id) == (4, None)  # None: the champion
    assert route([], client_id=None, width=1, height=1, request_id="a").rule is None


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
def test_a_canary_answers_its_share_of_1000_seeded_requests(share):
    rng = np.random.default_rng(7)
    rules = [rule(1, 1, model_id=None, canary_id=99, canary_share=share)]
    ids = [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(1000)]
    canary = sum(route(rules, client_id=None, width=10, height=10, request_id=i).is_canary for i in ids)
    sigma = (share * (1 - share) / 1000) ** 0.5
    assert abs(canary / 1000 - share) < 3 * sigma  # binomial: within three standard deviations
    # the same request always routes the same way
    assert [route(rules, client_id=None, width=10, height=10, request_id=i).is_canary for i in ids[:50]] == [
        route(rules, client_id=None, width=10, height=10, request_id=i).is_canary for i in ids[:50]
    ]


def test_a_low_resolution_rule_pins_a_model_and_the_answer_names_it(api_client, served):
    trainable, champion, candidate = served
    RoutingRule.objects.create(
        project=trainable.project, order=1, name="low-res camera", max_width=200, model=candidate
    )
    api_client.force_authenticate(trainable.reviewer)
    small = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk).json()  # 160 x 128
    assert small["model"]["id"] == candidate.pk and small["chosen_by"] == "rule"
    assert small["rule"]["name"] == "low-res camera"
    big = images.image_bytes("JPEG", size=(640, 480), seed=3)
    answer = post_image(api_client, big, project=trainable.project.pk).json()
    assert answer["model"]["id"] == champion.pk and answer["rule"] is None and answer["chosen_by"] == "champion"


def test_a_shadow_model_runs_and_is_logged_but_never_answers(api_client, served):
    trainable, champion, candidate = served
    RoutingRule.objects.create(project=trainable.project, order=1, name="try model 2", shadow=candidate)
    api_client.force_authenticate(trainable.reviewer)
    body = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk).json()
    assert body["model"]["id"] == champion.pk
    rows = PredictionLog.objects.filter(request_id=body["request_id"]).order_by("is_shadow")
    assert [(row.model_id, row.is_shadow) for row in rows] == [(champion.pk, False), (candidate.pk, True)]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"this is not an image at all", 415, "not_an_image"),
        (images.image_bytes("JPEG", size=(64, 48))[:200], 400, "corrupt"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415, "not_an_image"),
        (images.image_bytes("GIF", size=(64, 48)), 415, "unsupported_format"),
        (b"", 400, "invalid"),
    ],
)
def test_a_bad_image_is_refused_and_logged_as_refused(api_client, served, data, status, code):
    trainable, _, _ = served
    api_client.force_authenticate(trainable.reviewer)
    response = post_image(api_client, data, project=trainable.project.pk)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert not PredictionLog.objects.filter(status=200).exists()
    assert PredictionLog.objects.get().status == status


def test_a_decompression_bomb_is_refused_before_decoding(api_client, served, settings):
    trainable, _, _ = served
    settings.QUORUM_MAX_IMAGE_PIXELS = 100_000
    api_client.force_authenticate(trainable.reviewer)
    bomb = images.image_bytes("PNG", size=(1000, 1000))  # 1 megapixel of almost nothing
    response = post_image(api_client, bomb, project=trainable.project.pk)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_pixels"


def test_an_image_over_the_size_limit_is_413(api_client, served, settings):
    trainable, _, _ = served
    settings.QUORUM_PREDICT_MAX_BYTES = 1000
    api_client.force_authenticate(trainable.reviewer)
    response = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("image=yes", "text/plain", 415),
        ("{}", "application/json", 400),
        ('{"image_id": 1, "model": "latest"}', "application/json", 400),
        ('{"image_id": 999999}', "application/json", 404),
        ('{"image_id": 1, "conf": 7}', "application/json", 400),
    ],
)
def test_malformed_requests_are_clear_4xx(api_client, served, body, content_type, status):
    trainable, _, _ = served
    api_client.force_authenticate(trainable.reviewer)
    body = body.replace('"image_id": 1', f'"image_id": {trainable.project.images.first().pk}')
    response = api_client.generic("POST", "/api/v1/predict/", body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]["message"]
    assert not PredictionLog.objects.filter(status=200).exists()


def test_unknown_and_foreign_models_are_404(api_client, served, tiny_onnx):
    trainable, _, _ = served
    elsewhere = trainable_project(images=4, name="Far")
    foreign = register_model(elsewhere, tiny_onnx)
    api_client.force_authenticate(trainable.reviewer)
    for model in (999999, foreign.pk):
        response = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk, model=model)
        assert response.status_code == 404, model
    assert not PredictionLog.objects.filter(status=200).exists()


def test_deferred_log_rows_are_written_in_batches_off_the_answer(api_client, served, settings, log_written_here):
    trainable, _, _ = served
    settings.QUORUM_PREDICTION_LOG_DEFERRED = True
    # (no writer thread: it would use its own connection, outside this test's transaction)
    api_client.force_authenticate(trainable.reviewer)
    image = trainable.project.images.first()
    with CaptureQueriesContext(connection) as queries:
        response = api_client.post("/api/v1/predict/", {"image_id": image.pk}, format="json")
    assert response.status_code == 200
    assert not any("serving_predictionlog" in q["sql"] and "INSERT" in q["sql"] for q in queries.captured_queries)
    assert logbook.flush() == 1  # queued for the writer; written here
    assert PredictionLog.objects.filter(request_id=response.json()["request_id"]).exists()


def test_no_log_row_for_an_io_failure_is_a_success(api_client, served):
    trainable, _, _ = served
    api_client.force_authenticate(trainable.reviewer)
    response = api_client.post("/api/v1/predict/", {"image": io.BytesIO(b"")}, format="multipart")
    assert response.status_code == 400
    assert not PredictionLog.objects.filter(status=200).exists()


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_writes_queued_rows_within_a_second_then_lets_its_connection_go(settings, monkeypatch):
    import threading
    import time

    from django.utils import timezone

    settings.QUORUM_PREDICTION_LOG_DEFERRED = True
    monkeypatch.setattr(logbook, "IDLE_SECONDS", 0.3)
    # a queue and a writer of this test's own (a writer an earlier test started keeps its queue)
    monkeypatch.setattr(logbook, "_rows", queue.Queue())
    monkeypatch.setattr(logbook, "_writer", None)
    closed = threading.Event()

    class ConnectionSpy:
        def close(self) -> None:
            connection.close()  # the writer thread's own connection
            closed.set()

    monkeypatch.setattr(logbook, "connection", ConnectionSpy())
    for _ in range(3):
        logbook.log_prediction(PredictionLog(status=415, error="not_an_image", created_at=timezone.now()))
    deadline = time.monotonic() + 5
    while PredictionLog.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert PredictionLog.objects.count() == 3
    assert closed.wait(5)  # idle: the writer holds no connection (the test database can be dropped)


def test_a_writer_keeps_the_queue_it_was_started_on(monkeypatch):
    """What `log_written_here` relies on: a writer thread that an earlier test started (it
    lives as long as the process) never takes the rows of a queue put in place after it."""
    import time

    monkeypatch.setattr(logbook, "IDLE_SECONDS", 0.05)  # the writer looks again every 0.05 s
    monkeypatch.setattr(logbook, "_rows", queue.Queue())
    monkeypatch.setattr(logbook, "_writer", None)
    logbook._ensure_writer()
    assert logbook._writer.is_alive()
    later = queue.Queue()
    monkeypatch.setattr(logbook, "_rows", later)
    later.put((PredictionLog(status=415, error="not_an_image"), None))
    time.sleep(0.5)
    assert later.qsize() == 1


def test_a_rule_may_only_name_models_of_its_project(served, tiny_onnx):
    from django.core.exceptions import ValidationError

    trainable, champion, _ = served
    elsewhere = trainable_project(images=4, name="Yonder")
    foreign = register_model(elsewhere, tiny_onnx)
    rule = RoutingRule(project=trainable.project, name="bad", model=foreign, canary_share=0.3)
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert set(refused.value.message_dict) == {"model", "canary_share"}
    RoutingRule(project=trainable.project, name="good", model=champion).full_clean()


def test_the_answer_does_not_wait_for_its_shadow(api_client, served, settings, monkeypatch, log_written_here):
    """With the log deferred (production), the shadow runs after its answer has left: here
    it is held until the answer is back, then its row is logged beside the answer's."""
    import threading

    from serving import services, shadows

    trainable, champion, candidate = served
    settings.QUORUM_PREDICTION_LOG_DEFERRED = True  # rows stay queued; written here
    RoutingRule.objects.create(project=trainable.project, order=1, name="try model 2", shadow=candidate)
    held, began = threading.Event(), threading.Event()
    real = services._detector
    services._detector(candidate)  # loaded here, so the shadow's thread needs no database

    class Held:
        def __init__(self, detector):
            self.detector = detector

        def predict(self, rgb, **options):
            began.set()
            assert held.wait(30)
            return self.detector.predict(rgb, **options)

    monkeypatch.setattr(services, "_detector", lambda m: Held(real(m)) if m.pk == candidate.pk else real(m))
    api_client.force_authenticate(trainable.reviewer)
    body = post_image(api_client, scene_jpeg(trainable), project=trainable.project.pk).json()
    assert body["model"]["id"] == champion.pk  # answered while the shadow is held
    assert began.wait(30)
    assert logbook.flush() == 1  # the answer's row only
    held.set()
    shadows.drain()
    assert logbook.flush() == 1  # then the shadow's
    rows = PredictionLog.objects.filter(request_id=body["request_id"]).order_by("is_shadow")
    assert [(row.model_id, row.is_shadow) for row in rows] == [(champion.pk, False), (candidate.pk, True)]
