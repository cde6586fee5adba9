"""The rabbitmq connector against the real RabbitMQ on 127.0.0.1:5672: streams by offset, classic queues by ack.

Each test declares its own queues (unique names) and deletes them afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from prometheus_client import generate_latest

from monitor.cli import history
from monitor.config import build_config
from monitor.connector import ConnectorError, ConnectorOptionsError
from monitor.daemon.engine import MonitorError
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.testing import check_bad_options, check_connector, drain
from tests.conftest import require_module, under_ci
from tests.e2e.conftest import run_cli, write_config
from tests.helpers import make_runner, monitor_config, sample_table, write_csv

pika = require_module("pika")
from plugins.connectors._amqp import AmqpLink  # noqa: E402 - after the optional client is known
from plugins.connectors.rabbitmq import RabbitMqConnector  # noqa: E402

#: The broker these tests use; override with DRIFTD_TEST_AMQP_URL.
URL = os.environ.get("DRIFTD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


class Broker:
    """Declares unique queues, publishes JSON rows with ids 0, 1, 2, ... to them, deletes them at the end."""

    def __init__(self, url: str = URL) -> None:
        self.url = url
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.queues: list[str] = []
        self.sent: dict[str, int] = {}

    def declare(self, stream: bool = False, **arguments: Any) -> str:
        """A new durable queue (a stream with ``stream``), with extra ``x-`` arguments."""
        name = f"driftd-test-{uuid.uuid4().hex[:12]}"
        if stream:
            arguments["x-queue-type"] = "stream"
        self.channel.queue_declare(name, durable=True, arguments=arguments)
        self.queues.append(name)
        self.sent[name] = 0
        return name

    def publish(self, queue: str, rows: int, pad: int = 0, **properties: Any) -> None:
        """Publish ``rows`` rows (each confirmed by the broker) with the next ids of this queue."""
        first = self.sent[queue]
        for row in sample_table(rows, seed=first, start_id=first).to_pylist():
            if pad:
                row["pad"] = "x" * pad
            self.channel.basic_publish("", queue, json.dumps(row).encode(),
                                       pika.BasicProperties(delivery_mode=2, **properties))
        self.sent[queue] += rows

    def writer(self, queue: str):  # noqa: ANN201 - the suite's write_rows
        return lambda rows: self.publish(queue, rows)

    def close(self) -> None:
        """Delete the queues and disconnect."""
        if not self.connection.is_open:
            self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
            self.channel = self.connection.channel()
        for queue in self.queues:
            self.channel.queue_delete(queue)
        self.connection.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    """The shared broker, or a skip (a failure under CI) when it is down."""
    parts = pika.URLParameters(URL)
    try:
        socket.create_connection((parts.host, parts.port), timeout=2).close()
    except OSError as error:
        if under_ci():
            pytest.fail(f"RabbitMQ at {parts.host}:{parts.port} is required under CI: {error}")
        pytest.skip(f"RabbitMQ at {parts.host}:{parts.port} is not reachable: {error}")
    created = Broker()
    yield created
    created.close()


def connector(queue: str, **options: Any) -> RabbitMqConnector:
    return RabbitMqConnector({"url": URL, "queue": queue, "wait": 0.5, **options})


# ---- the conformance suite, both ways ----------------------------------------------------------


def test_a_stream_passes_the_replay_suite(broker: Broker) -> None:
    queue = broker.declare(stream=True)
    check_connector(lambda: connector(queue, stream=True), broker.writer(queue), total_rows=43)


def test_a_classic_queue_passes_the_ack_suite(broker: Broker) -> None:
    queue = broker.declare()
    check_connector(lambda: connector(queue), broker.writer(queue), total_rows=60, mode="ack")
    assert broker.channel.queue_declare(queue, passive=True).method.message_count == 0, "all acknowledged"


def test_a_quorum_queue_passes_the_ack_suite(broker: Broker) -> None:
    queue = broker.declare(**{"x-queue-type": "quorum"})
    check_connector(lambda: connector(queue), broker.writer(queue), total_rows=15, mode="ack",
                    max_rows_values=(4, 9))


# ---- classic queues: at least once, committed redeliveries dropped ---------------------------


def test_a_redelivery_of_committed_messages_is_dropped_and_logged(broker: Broker,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """driftd committed 10 messages and stopped before acknowledging them: the broker sends them again."""
    queue = broker.declare()
    broker.publish(queue, 30)
    first = connector(queue)
    batch = first.fetch(None, 10)
    assert batch.table.column("id").to_pylist() == list(range(10))
    first.close()  # no commit: the broker takes the 30 back, 10 of them committed by driftd

    caplog.set_level(logging.INFO)
    second = connector(queue)
    try:
        second.commit(batch.cursor)  # start-up: the last committed cursor
        rest, cursor = drain(second, batch.cursor, 7)
        assert rest.column("id").to_pylist() == list(range(10, 30)), "nothing lost, nothing read twice"
        assert second.redeliveries_dropped == 10
        assert any("dropped 10 redelivered messages driftd had already counted" in r.getMessage()
                   for r in caplog.records)
        second.commit(cursor)
    finally:
        second.close()
    assert broker.channel.queue_declare(queue, passive=True).method.message_count == 0


def test_identical_messages_are_told_apart_by_count(broker: Broker) -> None:
    """Two byte-identical messages, one committed before a crash: the other one is still counted."""
    queue = broker.declare()
    for _ in range(2):
        broker.channel.basic_publish("", queue, b'{"id": 7}')
    broker.sent[queue] = 2
    first = connector(queue)
    batch = first.fetch(None, 1)
    first.close()
    second = connector(queue)
    try:
        second.commit(batch.cursor)
        rest, _ = drain(second, batch.cursor, 5)
        assert rest.column("id").to_pylist() == [7] and second.redeliveries_dropped == 1
    finally:
        second.close()


# ---- streams: offsets, retention, consumers dropped cleanly ----------------------------------


def test_a_retention_gap_is_logged_and_counted(broker: Broker, tmp_path: Path, sqlite_url: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """The stream dropped segments driftd had not read: the loss is logged and ``driftd_source_lost_total`` counts it."""
    queue = broker.declare(stream=True, **{"x-max-length-bytes": 20_000, "x-stream-max-segment-size-bytes": 4_000})
    config = monitor_config(source={"type": "rabbitmq", "options": {"url": URL, "queue": queue, "stream": True,
                                                                     "wait": 0.5}},
                            reference={"path": str(write_csv(tmp_path / "ref.csv", sample_table(300, seed=9)))},
                            window={"rows": 20}, measures=["ks"], max_rows=40)
    runner = make_runner(config, sqlite_url)
    broker.publish(queue, 40, pad=100)
    assert runner.tick().rows_fetched == 40
    committed = runner.store.load_progress(runner.monitor_id, recent=0).position
    runner.close()

    broker.publish(queue, 600, pad=100)  # ~160 kB through a 20 kB stream: the first segments go
    first_kept = _first_offset(broker, queue)
    assert first_kept > committed + 2, "the retention did not remove the committed offset"
    caplog.set_level(logging.INFO)
    restarted = make_runner(config, sqlite_url)
    commit_tick = restarted.store.commit_tick

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database refused the commit")

    restarted.store.commit_tick = refused  # type: ignore[method-assign] # the tick fails after its fetch
    with pytest.raises(MonitorError, match="refused the commit"):
        restarted.tick()
    expected = first_kept - committed - 2
    assert _counter(restarted, "driftd_source_lost_total") == expected
    restarted.store.commit_tick = commit_tick  # type: ignore[method-assign]
    report = restarted.tick(retry_now=True)  # the same fetch again, from the committed cursor
    assert report.rows_fetched == 40
    assert _counter(restarted, "driftd_source_lost_total") == expected, "a retried fetch counts the loss again"
    lost = [r.getMessage() for r in caplog.records if "before driftd read them" in r.getMessage()]
    assert len(lost) == 1 and f"up to {expected} messages" in lost[0], lost
    restarted.tick()
    assert _counter(restarted, "driftd_source_lost_total") == expected
    restarted.close()


def _first_offset(broker: Broker, queue: str) -> int:
    channel = broker.connection.channel()
    channel.basic_qos(prefetch_count=1)
    offsets: list[int] = []
    channel.basic_consume(queue, lambda ch, method, properties, body: offsets.append(
        properties.headers["x-stream-offset"]), arguments={"x-stream-offset": "first"})
    while not offsets:
        broker.connection.process_data_events(0.1)
    channel.close()  # a blocking channel rejects what it holds: do not let it hold anything
    return offsets[0]


def _counter(runner: Any, name: str) -> float:
    found = re.search(rf'^{name}\{{monitor="m"\}} (\S+)$', generate_latest(runner.metrics.registry).decode(), re.M)
    assert found, f"{name} is not exported"
    return float(found[1])


def test_a_stream_consumer_is_replaced_without_nack_errors(broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """A fetch from an older cursor drops the consumer with its channel: the connection survives (no 540)."""
    queue = broker.declare(stream=True)
    broker.publish(queue, 50)
    caplog.set_level(logging.INFO)
    reader = connector(queue, stream=True, prefetch=20)
    try:
        first = reader.fetch(None, 10)
        second = reader.fetch(first.cursor, 10)
        link = reader._link  # noqa: SLF001
        again = reader.fetch(first.cursor, 10)  # a tick that failed: read from the committed cursor again
        assert again.table.column("id").to_pylist() == second.table.column("id").to_pylist() == list(range(10, 20))
        assert reader._link is link and link is not None and link.alive, "the connection was lost"  # noqa: SLF001
        rest, _ = drain(reader, again.cursor, 100)
        assert rest.column("id").to_pylist() == list(range(20, 50))
    finally:
        reader.close()
    assert not [r for r in caplog.records if "retention" in r.getMessage()], "no message was removed"


def _ids(table: Any) -> list[int]:
    return table.column("id").to_pylist() if table.num_rows else []


def test_a_stalled_stream_consumer_is_found_and_attached_again(broker: Broker, caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer that stops receiving while the stream holds more (its credit lost): attached again, nothing lost.

    The stall is made real by dropping one acknowledgement, which for a stream is the credit for
    the next messages: the broker sends nothing more to that consumer, and it is not cancelled.
    """
    queue = broker.declare(stream=True)
    broker.publish(queue, 60)
    caplog.set_level(logging.INFO)
    reader = connector(queue, stream=True, prefetch=10, wait=0.1, stall_check=0.5)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(AmqpLink, "ack", lambda *_args: None)  # the credit never reaches the broker
            first = reader.fetch(None, 10)
        ids, cursor = first.table.column("id").to_pylist(), first.cursor
        assert ids == list(range(10))
        deadline = time.monotonic() + 15
        while len(ids) < 60:
            assert time.monotonic() < deadline, f"the stalled consumer read {len(ids)} of 60 messages"
            batch = reader.fetch(cursor, 25)
            ids += _ids(batch.table)
            cursor = batch.cursor
        assert ids == list(range(60)), "each message exactly once"
        assert reader.stalls == 1
        warnings = [r.getMessage() for r in caplog.records if "received nothing" in r.getMessage()]
        assert len(warnings) == 1 and "attaching again at offset 9" in warnings[0], warnings

        idle_until = time.monotonic() + 2  # an idle stream is checked, backing off, and never "stalled"
        while time.monotonic() < idle_until:
            assert reader.fetch(cursor, 25).table.num_rows == 0
        assert reader.stalls == 1
        broker.publish(queue, 3)
        deadline = time.monotonic() + 10
        late: list[int] = []
        while len(late) < 3:
            assert time.monotonic() < deadline, "the live consumer missed new messages"
            batch = reader.fetch(cursor, 25)
            late, cursor = late + _ids(batch.table), batch.cursor
        assert late == [60, 61, 62] and reader.stalls == 1
    finally:
        reader.close()


def test_a_consumer_the_broker_cancels_is_reported(broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    queue = broker.declare(stream=True)
    broker.publish(queue, 5)
    reader = connector(queue, stream=True)
    try:
        batch = reader.fetch(None, 10)
        broker.channel.queue_delete(queue)  # the broker cancels the consumer
        deadline = time.monotonic() + 10
        while not reader._link.cancelled:  # noqa: SLF001 - the cancel arrives on the I/O thread
            assert time.monotonic() < deadline, "the broker did not cancel the consumer"
            time.sleep(0.02)
        caplog.set_level(logging.WARNING)
        with pytest.raises(ConnectorOptionsError, match=f"queue '{queue}'.*option 'queue': no such queue"):
            reader.fetch(batch.cursor, 10)
        assert any("the broker cancelled the consumer" in r.getMessage() for r in caplog.records)
    finally:
        reader.close()
        broker.queues.remove(queue)


# ---- options, errors, secrets ------------------------------------------------------------------


def test_bad_options_are_named(broker: Broker) -> None:
    stream, queue = broker.declare(stream=True), broker.declare()
    check_bad_options(RabbitMqConnector, [
        ("queue", {}),
        ("url", {"queue": "q", "url": "http://127.0.0.1/"}),
        ("prefetch", {"queue": "q", "prefetch": 0}),
        ("stream", {"queue": "q", "stream": "sometimes"}),
        ("queue", {"url": URL, "queue": f"driftd-missing-{uuid.uuid4().hex[:8]}"}),
        ("stream", {"url": URL, "queue": stream}),  # a stream read as a queue
        ("stream", {"url": URL, "queue": queue, "stream": True}),
    ])


def test_an_unreachable_broker_is_a_clear_error_without_the_password() -> None:
    port = _free_port()
    reader = RabbitMqConnector({"url": f"amqp://guest:s3cret-pw@127.0.0.1:{port}/%2F", "queue": "q", "timeout": 2})
    with pytest.raises(ConnectorError) as raised:
        reader.fetch(None, 10)
    message = str(raised.value)
    assert "Connection refused" in message and "s3cret-pw" not in message and "guest:***@" in message, message
    reader.close()


def test_a_wrong_password_is_refused_without_showing_it(broker: Broker) -> None:
    queue = broker.declare()
    reader = RabbitMqConnector({"url": "amqp://guest:not-the-password@127.0.0.1:5672/%2F", "queue": queue})
    with pytest.raises(ConnectorError, match="ACCESS_REFUSED") as raised:
        reader.fetch(None, 10)
    assert "not-the-password" not in str(raised.value)
    reader.close()


def test_a_message_that_is_not_json_stops_or_is_skipped(broker: Broker) -> None:
    queue = broker.declare()
    broker.publish(queue, 2)
    broker.channel.basic_publish("", queue, b"not json")
    broker.publish(queue, 2)
    strict = connector(queue)
    with pytest.raises(ConnectorError, match=r"message 3: not valid JSON.*on_invalid: skip"):
        drain(strict, None, 10)
    strict.close()
    lenient = connector(queue, on_invalid="skip")
    batch = lenient.fetch(None, 10)
    assert batch.table.column("id").to_pylist() == [0, 1, 2, 3] and batch.cursor["seq"] == 5
    lenient.commit(batch.cursor)
    lenient.close()
    assert broker.channel.queue_declare(queue, passive=True).method.message_count == 0, "the bad one is acked too"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- reference capture -------------------------------------------------------------------------


def test_capture_refuses_a_classic_queue_and_reads_a_stream(broker: Broker, tmp_path: Path, sqlite_url: str) -> None:
    queue, stream = broker.declare(), broker.declare(stream=True)
    broker.publish(queue, 50)
    broker.publish(stream, 50)
    monitors = [{"name": name, "source": {"type": "rabbitmq", "options": {"url": URL, "queue": q, "stream": s}},
                 "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 20},
                 "reference": {"first_rows": 30}}
                for name, q, s in (("queue", queue, False), ("stream", stream, True))]
    write_config(tmp_path / "driftd.yaml", port=_free_port(), monitors=monitors)
    refused = run_cli(["reference", "capture", "queue", "--rows", "30", "-c", "driftd.yaml"], cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "monitor 'queue': source 'rabbitmq' hands each message out once" in refused.stderr
    assert broker.channel.queue_declare(queue, passive=True).method.message_count == 50, "nothing was taken"

    store = Store(sqlite_url)
    upgrade(store.engine)
    config = build_config({"monitors": monitors}, "test", environ={}).monitor("stream")
    table = history._capture_from_source(store, config, 30)  # noqa: SLF001 - what the command reads
    assert table.column("id").to_pylist() == list(range(30))
