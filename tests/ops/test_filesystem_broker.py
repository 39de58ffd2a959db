"""The embedded default's broker (`make run`: the filesystem transport under var/broker/)
under a crowd: messages sent from several threads while consumers drain the folder arrive
whole and exactly once. kombu's own transport let a consumer read a message file its writer
had created and not yet written, and `make run`'s worker died of the JSONDecodeError: the
probe below stops a sender at its first write and lets a consumer look, which shows kombu's
fault every time and Quorum's transport never."""

import builtins
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection, Exchange, Producer

from config.celery import app
from tests.workers import ROOT, start_worker, stop_worker

SENDERS = 4


def folders(root: Path) -> dict[str, str]:
    options = {}
    for name in ("queue", "control", "processed"):
        (root / name).mkdir(parents=True, exist_ok=True)
        options[name] = str(root / name)
    return {
        "data_folder_in": options["queue"],
        "data_folder_out": options["queue"],
        "control_folder": options["control"],
        "processed_folder": options["processed"],
        "store_processed": False,
        "polling_interval": 0.01,
    }


def send_from_threads(send, each: int) -> list[str]:
    """`send(text)` called `each` times from each of SENDERS threads at once; the texts sent."""
    start = threading.Barrier(SENDERS)
    sent: list[list[str]] = [[] for _ in range(SENDERS)]

    def sender(index: int) -> None:
        start.wait()
        for number in range(each):
            # long enough that a write is not one instant
            text = f"{index}-{number}-" + uuid.uuid4().hex * 64
            send(text)
            sent[index].append(text)

    threads = [threading.Thread(target=sender, args=(index,)) for index in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [text for texts in sent for text in texts]


def test_messages_sent_from_threads_reach_two_consumers_whole_and_once(tmp_path):
    options = folders(tmp_path)
    queue = "crowd"
    received: list[str] = []
    errors: list[BaseException] = []

    def consumer() -> None:
        with Connection("filesystem://", transport="config.broker:Transport", transport_options=options) as conn:
            inbox = conn.SimpleQueue(queue)
            try:
                deadline = time.monotonic() + 120
                while len(received) < SENDERS * 750 and time.monotonic() < deadline:
                    try:
                        message = inbox.get(timeout=0.05)
                    except inbox.Empty:
                        continue
                    received.append(message.payload)
                    message.ack()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)
            finally:
                inbox.close()

    # the queue declared and bound once, as a Celery worker does at its start (kombu rewrites an
    # exchange's table of queues in place: a producer reading it during a bind finds it empty)
    with Connection("filesystem://", transport="config.broker:Transport", transport_options=options) as conn:
        conn.SimpleQueue(queue).close()
    consumers = [threading.Thread(target=consumer) for _ in range(2)]
    for thread in consumers:
        thread.start()
    local = threading.local()

    def send(text: str) -> None:
        if not hasattr(local, "producer"):
            local.conn = Connection("filesystem://", transport="config.broker:Transport", transport_options=options)
            local.producer = Producer(local.conn.channel(), exchange=Exchange(queue, "direct"))
        local.producer.publish(text, routing_key=queue)

    sent = send_from_threads(send, 750)
    for thread in consumers:
        thread.join(timeout=120)
    assert errors == []
    assert len(received) == len(sent) == SENDERS * 750
    assert sorted(received) == sorted(sent)  # whole and once: no empty body, no message twice
    assert list(Path(options["data_folder_in"]).iterdir()) == []  # no partial file left behind
    assert list(Path(options["processed_folder"]).iterdir()) == []


KOMBU = "kombu.transport.filesystem:Transport"
QUORUM = "config.broker:Transport"


def what_a_consumer_reads_mid_write(transport: str, tmp_path, monkeypatch) -> tuple[list, object]:
    """A sender puts one message; the moment its transport first writes bytes to a file, a
    consumer on the same folder takes what the queue holds. Returns what the consumer got then
    (Empty, a payload, or the error) and what it gets once the sender is done."""
    options = folders(tmp_path)
    queue = "mid-write"
    with (
        Connection("filesystem://", transport=transport, transport_options=options) as sending,
        Connection("filesystem://", transport=transport, transport_options=options) as receiving,
    ):
        sender, consumer = sending.channel(), receiving.channel()
        seen: list = []

        def take() -> object:
            try:
                return consumer._get(queue)
            except Exception as error:  # noqa: BLE001 - Empty, or what a half-written file gives
                return error

        class Writing:
            """A file whose first write lets the consumer look first."""

            def __init__(self, file):
                self._file = file

            def __getattr__(self, name):
                return getattr(self._file, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self._file.__exit__(*exc)

            def write(self, data):
                if not seen:
                    seen.append(take())
                return self._file.write(data)

        real_open = builtins.open

        def opening(file, mode="r", *args, **kwargs):
            opened = real_open(file, mode, *args, **kwargs)
            return Writing(opened) if "w" in mode else opened

        monkeypatch.setattr(builtins, "open", opening)  # for the one put (no other thread opens files)
        sender._put(queue, {"body": "whole"})
        monkeypatch.undo()
        return seen, take()


def test_a_consumer_never_sees_a_message_its_sender_is_still_writing(tmp_path, monkeypatch):
    seen, after = what_a_consumer_reads_mid_write(QUORUM, tmp_path, monkeypatch)
    assert len(seen) == 1 and isinstance(seen[0], Empty)  # mid-write the queue looks empty
    assert after == {"body": "whole"}  # then the message arrives whole
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []  # nothing left behind


def test_kombus_own_transport_hands_a_consumer_the_empty_file(tmp_path, monkeypatch):
    # the fault config/broker.py exists for, shown by the probe above: should kombu fix it, this
    # test fails, and Quorum's transport can go
    seen, after = what_a_consumer_reads_mid_write(KOMBU, tmp_path, monkeypatch)
    assert len(seen) == 1 and isinstance(seen[0], ValueError), seen  # JSONDecodeError: b""
    assert "Expecting value: line 1 column 1 (char 0)" in str(seen[0])
    assert isinstance(after, Empty)  # and the message is lost: the consumer took and dropped it


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_filesystem_broker_drains_tasks_sent_from_threads(tmp_path):
    # given `make run`'s broker (the filesystem under var/), which settings give Quorum's transport
    var = tmp_path / "var"
    embedded = {**os.environ, "CELERY_BROKER_URL": "filesystem://", "QUORUM_VAR_DIR": str(var)}
    transport = subprocess.run(
        [sys.executable, "-c", "from config.celery import app; print(type(app.connection_for_write().transport))"],
        cwd=ROOT, env=embedded, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "config.broker.Transport" in transport
    # and its worker, a prefork pool as `make run` starts it
    queue = f"pytest-{uuid.uuid4().hex[:12]}"
    worker = start_worker(
        queue, queue, pool="prefork", env={"CELERY_BROKER_URL": "filesystem://", "QUORUM_VAR_DIR": str(var)}
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(worker.stdout), daemon=True)
    reader.start()
    options = folders(var / "broker")
    local = threading.local()

    def send(text: str) -> None:
        if not hasattr(local, "conn"):
            local.conn = app.connection_for_write(
                "filesystem://", transport="config.broker:Transport", transport_options=options
            )
        app.send_task("celery.accumulate", args=[text[:40]], queue=queue, connection=local.conn)

    try:
        # (once it has bound its queue: kombu writes an exchange's table in place, and senders
        # binding it first, together, could read it half written)
        ready = time.monotonic() + 120
        while "ready." not in "".join(output) and time.monotonic() < ready and worker.poll() is None:
            time.sleep(0.2)
        # when four threads send 400 tasks while it runs them
        sent = send_from_threads(send, 100)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and worker.poll() is None:
            if len(re.findall(r"Task celery\.accumulate\[[\w-]+\] succeeded", "".join(output))) >= len(sent):
                break
            time.sleep(0.5)
        # then it ran every one of them and is still running
        assert worker.poll() is None, "".join(output)[-4000:]
    finally:
        stop_worker(worker)
        reader.join(timeout=10)
    log = "".join(output)
    assert "JSONDecodeError" not in log and "Unrecoverable error" not in log, log[-4000:]
    succeeded = set(re.findall(r"Task celery\.accumulate\[([\w-]+)\] succeeded", log))
    assert len(succeeded) == len(sent) == SENDERS * 100, log[-4000:]
