"""The embedded default's broker (`make run`: the filesystem transport under var/broker/)
under a crowd: messages sent from several threads while consumers drain the folder arrive
whole and exactly once. kombu's own transport let a consumer read a message file its writer
had created and not yet written, and `make run`'s worker died of the JSONDecodeError: the
probes below stop a sender (or the first binder of an exchange) the moment it opens its file
and let a consumer (a producer) look: kombu's transport shows the fault every time, Quorum's
never."""

import builtins
import contextlib
import io
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
KOMBU = "kombu.transport.filesystem:Transport"
QUORUM = "config.broker:Transport"


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
        with Connection("filesystem://", transport=QUORUM, transport_options=options) as conn:
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

    # the queue declared and bound once, as a Celery worker does at its start
    with Connection("filesystem://", transport=QUORUM, transport_options=options) as conn:
        conn.SimpleQueue(queue).close()
    consumers = [threading.Thread(target=consumer) for _ in range(2)]
    for thread in consumers:
        thread.start()
    local = threading.local()

    def send(text: str) -> None:
        if not hasattr(local, "producer"):
            local.conn = Connection("filesystem://", transport=QUORUM, transport_options=options)
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


@contextlib.contextmanager
def stopped_once_opened(monkeypatch, look):
    """Inside: the first file this thread opens for writing (by open() or Path.open), right
    after it is opened and before anything else is done with it, calls `look()` here; the list
    yielded holds what it returned."""
    seen: list = []
    looked = threading.Event()  # once: files `look` itself writes are not stopped
    writer = threading.get_ident()  # threads left running by earlier tests are not stopped
    real_open = io.open

    def opening(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        if ("w" in mode or "+" in mode) and threading.get_ident() == writer and not looked.is_set():
            looked.set()
            seen.append(look())
        return opened

    with monkeypatch.context() as patched:
        patched.setattr(builtins, "open", opening)
        patched.setattr(io, "open", opening)
        yield seen


def attempt(call) -> object:
    """What `call()` returns, or the exception it raises."""
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - Empty, or what a half-written file gives
        return error


def channels(transport: str, options: dict):
    sending = Connection("filesystem://", transport=transport, transport_options=options)
    receiving = Connection("filesystem://", transport=transport, transport_options=options)
    return sending, receiving


def what_a_consumer_reads_mid_write(transport: str, tmp_path, monkeypatch) -> tuple[list, object]:
    """A sender puts one message; the moment its transport opens a file to write, a consumer
    on the same folder takes what the queue holds. Returns what the consumer got then (Empty, a
    payload, or the error) and what it gets once the sender is done."""
    queue = "mid-write"
    sending, receiving = channels(transport, folders(tmp_path))
    with sending, receiving:
        sender, consumer = sending.channel(), receiving.channel()
        with stopped_once_opened(monkeypatch, lambda: attempt(lambda: consumer._get(queue))) as seen:
            sender._put(queue, {"body": "whole"})
        return seen, attempt(lambda: consumer._get(queue))


def what_a_producer_routes_by_mid_bind(transport: str, tmp_path, monkeypatch) -> tuple[list, object]:
    """A first binder creates an exchange's table; the moment its transport opens a file to
    write, a producer reads the table. Returns what it read then and once the bind is done."""
    sending, receiving = channels(transport, folders(tmp_path))
    with sending, receiving:
        binder, producer = sending.channel(), receiving.channel()
        with stopped_once_opened(monkeypatch, lambda: attempt(lambda: producer.get_table("crowd"))) as seen:
            binder._queue_bind("crowd", "crowd", "", "crowd")
        return seen, attempt(lambda: producer.get_table("crowd"))


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


def test_a_producer_never_reads_an_exchange_table_its_first_binder_is_still_writing(tmp_path, monkeypatch):
    seen, after = what_a_producer_routes_by_mid_bind(QUORUM, tmp_path, monkeypatch)
    assert seen == [[]]  # mid-bind there is no table yet
    assert [entry.queue for entry in after] == ["crowd"]
    assert [path.name for path in (tmp_path / "control").iterdir()] == ["crowd.exchange"]  # no partial left


def test_kombus_own_transport_hands_a_producer_the_empty_table(tmp_path, monkeypatch):
    seen, after = what_a_producer_routes_by_mid_bind(KOMBU, tmp_path, monkeypatch)
    assert len(seen) == 1 and isinstance(seen[0], ValueError), seen  # JSONDecodeError: b""
    assert [entry.queue for entry in after] == ["crowd"]


def test_two_first_binders_of_an_exchange_both_keep_their_queue(tmp_path, monkeypatch):
    # the second creates the table while the first is writing its own: the first's link fails,
    # and it adds its queue to the table the second made
    options = folders(tmp_path)
    first, second = channels(QUORUM, options)
    with first, second:
        one, other = first.channel(), second.channel()

        def bind_the_other() -> bool:
            binding = threading.Thread(target=other._queue_bind, args=("crowd", "b", "", "queue-b"))
            binding.start()
            binding.join(timeout=10)
            return binding.is_alive()

        with stopped_once_opened(monkeypatch, bind_the_other) as seen:
            one._queue_bind("crowd", "a", "", "queue-a")
        assert seen == [False]  # the other bind finished while the first was mid-bind
        assert sorted(entry.queue for entry in one.get_table("crowd")) == ["queue-a", "queue-b"]
    assert [path.name for path in (tmp_path / "control").iterdir()] == ["crowd.exchange"]


def test_on_a_file_system_without_hard_links_a_bind_is_made_kombus_way(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")  # what a file system without links answers

    monkeypatch.setattr(os, "link", refused)
    binding, _ = channels(QUORUM, folders(tmp_path))
    with binding:
        channel = binding.channel()
        channel._queue_bind("crowd", "crowd", "", "crowd")
        channel._queue_bind("crowd", "other", "", "other")
        assert [entry.queue for entry in channel.get_table("crowd")] == ["other", "crowd"]
    assert [path.name for path in (tmp_path / "control").iterdir()] == ["crowd.exchange"]


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
            local.conn = app.connection_for_write("filesystem://", transport=QUORUM, transport_options=options)
        app.send_task("celery.accumulate", args=[text[:40]], queue=queue, connection=local.conn)

    try:
        # once it is ready
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
