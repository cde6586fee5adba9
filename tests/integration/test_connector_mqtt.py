"""The mqtt connector against the real Mosquitto broker: what MQTT can promise, and what it cannot."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pytest
import sqlalchemy as sa
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.connector import ConnectorError, ConnectorOptionsError
from monitor.store.schema import SourceCursor
from monitor.testing import check_bad_options, drain
from plugins.connectors.mqtt import MqttConnector
from tests.conftest import under_ci
from tests.helpers import make_runner, monitor_config, sample_table, write_csv

#: The broker these tests use; override with DRIFTD_TEST_MQTT (host:port).
HOST, _, PORT = os.environ.get("DRIFTD_TEST_MQTT", "127.0.0.1:1883").partition(":")
PORT_NUMBER = int(PORT or 1883)


class Publisher:
    """A QoS 1 publisher on a unique topic prefix."""

    def __init__(self) -> None:
        self.prefix = f"driftd-test/{uuid.uuid4().hex[:12]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:12]}")
        self.client.connect(HOST, PORT_NUMBER)
        self.client.loop_start()
        self.sent = 0

    def send(self, rows: int, topic: str = "readings", make: Callable[[int], Any] | None = None) -> None:
        """Publish ``rows`` messages with the next ids and wait until the broker has each one."""
        infos = []
        for i in range(self.sent, self.sent + rows):
            payload = make(i) if make else {"id": i, "a": i / 10, "c": "xyz"[i % 3]}
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            infos.append(self.client.publish(f"{self.prefix}/{topic}", data, qos=1))
        for info in infos:
            info.wait_for_publish(5)
        self.sent += rows

    def options(self, **overrides: Any) -> dict[str, Any]:
        """Connector options subscribed to this publisher's topics."""
        return {"host": HOST, "port": PORT_NUMBER, "topics": [f"{self.prefix}/#"], **overrides}

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    """A publisher, or a skip (a failure under CI) when the broker is down."""
    try:
        socket.create_connection((HOST, PORT_NUMBER), timeout=2).close()
    except OSError as error:
        if under_ci():
            pytest.fail(f"Mosquitto at {HOST}:{PORT_NUMBER} is required under CI: {error}")
        pytest.skip(f"Mosquitto at {HOST}:{PORT_NUMBER} is not reachable: {error}")
    created = Publisher()
    yield created
    created.close()


def wait_buffered(connector: MqttConnector, rows: int, timeout: float = 5.0) -> None:
    """Wait until the connector holds ``rows`` messages (at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while connector.buffered < rows and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connector.buffered == rows, f"buffered {connector.buffered} messages, expected {rows}"


def ids(table: pa.Table) -> list[int]:
    """The id column, or nothing for an empty table."""
    return table.column("id").to_pylist() if table.num_rows else []


def test_messages_published_while_subscribed_are_read_once_in_order(publisher: Publisher) -> None:
    """The conformance suite's promises, as far as MQTT keeps them (within one process)."""
    connector = MqttConnector(publisher.options())
    empty = connector.fetch(None, 100)  # subscribes
    assert empty.num_rows == 0 and empty.cursor is None
    publisher.send(40)
    wait_buffered(connector, 40)
    for size in (1, 7, 100):
        again = connector.fetch(None, size)  # nothing is consumed until a later cursor passes it
        assert ids(again.table) == list(range(min(size, 40)))
    table, end = drain(connector, None, 7)
    assert ids(table) == list(range(40)) and end == {"seq": 40, "unacked": []}
    assert table.schema.field("_received_at").type == pa.timestamp("us", tz="UTC")
    assert set(table.column("_topic").to_pylist()) == {f"{publisher.prefix}/readings"}
    after, cursor = drain(connector, json.loads(json.dumps(end)), 7)
    assert after.num_rows == 0 and cursor == end
    publisher.send(5)
    wait_buffered(connector, 5)
    added, cursor = drain(connector, end, 3)
    connector.close()
    assert ids(added) == list(range(40, 45)) and cursor["seq"] == 45


def test_a_retried_fetch_from_a_stored_cursor_gets_the_same_rows(publisher: Publisher) -> None:
    """A tick that failed before its commit fetches again from the committed cursor."""
    connector = MqttConnector(publisher.options())
    connector.fetch(None, 10)
    publisher.send(12)
    wait_buffered(connector, 12)
    first = connector.fetch(None, 5)
    second = connector.fetch(first.cursor, 5)
    retried = connector.fetch(json.loads(json.dumps(first.cursor)), 5)
    assert ids(second.table) == ids(retried.table) == [5, 6, 7, 8, 9]
    assert retried.cursor == second.cursor == {"seq": 10, "unacked": []} and connector.buffered == 7
    connector.close()


def test_a_cursor_from_an_earlier_run_is_continued(publisher: Publisher) -> None:
    connector = MqttConnector(publisher.options())
    stored = {"seq": 1234, "unacked": []}
    assert connector.fetch(stored, 10).cursor == stored
    publisher.send(3)
    wait_buffered(connector, 3)
    batch = connector.fetch(stored, 10)
    connector.close()
    assert ids(batch.table) == [0, 1, 2] and batch.cursor == {"seq": 1237, "unacked": []}


def test_wildcards_topics_and_bad_payloads(publisher: Publisher, caplog: pytest.LogCaptureFixture) -> None:
    connector = MqttConnector(publisher.options(topics=[f"{publisher.prefix}/+/temp"]))
    connector.fetch(None, 10)
    publisher.send(2, "s1/temp")
    publisher.send(1, "s1/humidity")
    publisher.send(2, "s2/temp", make=lambda i: b"not json" if i == 3 else {"id": i, "t": "warm"})
    wait_buffered(connector, 3)
    with caplog.at_level(logging.WARNING, "plugins.connectors.mqtt"):
        batch = connector.fetch(None, 10)
    connector.close()
    assert ids(batch.table) == [0, 1, 4]
    assert batch.table.column("_topic").to_pylist() == [f"{publisher.prefix}/{t}" for t in ("s1/temp",) * 2 + ("s2/temp",)]
    assert batch.table.column("t").to_pylist() == [None, None, "warm"]
    assert connector.malformed == 1 and "skipped 1 messages whose payload is not a JSON object" in caplog.text


def test_a_full_buffer_drops_the_oldest_and_says_so(publisher: Publisher, caplog: pytest.LogCaptureFixture) -> None:
    connector = MqttConnector(publisher.options(max_buffer=5))
    connector.fetch(None, 10)
    publisher.send(12)
    wait_buffered(connector, 5)
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, "plugins.connectors.mqtt"):
        batch = connector.fetch(None, 10)
    connector.close()
    assert ids(batch.table) == list(range(7, 12)) and connector.dropped == 7
    assert "dropped the 7 oldest unread messages" in caplog.text


def test_a_persistent_session_keeps_messages_published_while_closed(publisher: Publisher) -> None:
    options = publisher.options(persistent_session=True, session_expiry=60,
                                client_id=f"driftd-{uuid.uuid4().hex[:12]}")
    first = MqttConnector(options)
    first.fetch(None, 10)
    first.close()
    publisher.send(15)  # driftd is down
    second = MqttConnector(options)
    second.fetch(None, 10)
    wait_buffered(second, 15)
    table, cursor = drain(second, None, 4)
    second.close()
    assert ids(table) == list(range(15)) and cursor["seq"] == 15 and len(cursor["unacked"]) == 3


def test_without_a_persistent_session_messages_published_while_closed_are_lost(publisher: Publisher) -> None:
    """Documents the limit: MQTT cannot replay what was published to nobody."""
    options = publisher.options(client_id=f"driftd-{uuid.uuid4().hex[:12]}")
    first = MqttConnector(options)
    first.fetch(None, 10)
    first.close()
    publisher.send(10)  # driftd is down: these are gone
    second = MqttConnector(options)
    second.fetch(None, 10)
    publisher.send(3)
    wait_buffered(second, 3)
    time.sleep(0.2)
    table, _ = drain(second, None, 10)
    second.close()
    assert ids(table) == [10, 11, 12]


def test_uncommitted_messages_are_redelivered_after_a_crash(publisher: Publisher) -> None:
    """Manual acknowledgement: only what the engine committed past is acknowledged."""
    options = publisher.options(persistent_session=True, session_expiry=60,
                                client_id=f"driftd-{uuid.uuid4().hex[:12]}")
    first = MqttConnector(options)
    first.fetch(None, 10)
    publisher.send(10)
    wait_buffered(first, 10)
    committed = first.fetch(None, 4)  # the engine commits cursor 4 …
    handed = first.fetch(committed.cursor, 4)  # … then reads 4..7 but dies before committing them
    assert ids(handed.table) == [4, 5, 6, 7]
    time.sleep(0.3)  # let the acknowledgements of 0..3 reach the broker (a crash before that repeats them)
    first._client._sock.close()  # a crash: no DISCONNECT, no further acknowledgement
    first._client.loop_stop()
    first._client = None
    second = MqttConnector(options)
    second.fetch(committed.cursor, 10)
    wait_buffered(second, 6)
    table, cursor = drain(second, committed.cursor, 10)
    second.close()
    assert ids(table) == [4, 5, 6, 7, 8, 9] and cursor["seq"] == 10


def test_building_never_connects_and_a_down_broker_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = MqttConnector({"host": "127.0.0.1", "port": port, "topics": ["a/#"],
                               "username": "driftd", "password": "s3cret-pw"})
    with pytest.raises(ConnectorError) as caught:
        connector.fetch(None, 10)
    connector.close()
    assert f"mqtt source 127.0.0.1:{port}: cannot connect" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(connector.config)


def test_bad_options_are_rejected() -> None:
    base = {"host": "127.0.0.1", "topics": ["a/#"]}
    check_bad_options(MqttConnector, [
        ("host", {"topics": ["a"]}),
        ("topics", {"host": "127.0.0.1"}),
        ("topics", {**base, "topics": []}),
        ("topics", {**base, "topics": ["a/#/b"]}),
        ("topics", {**base, "topics": ["a/b+"]}),
        ("qos", {**base, "qos": 2}),
        ("port", {**base, "port": 0}),
        ("max_buffer", {**base, "max_buffer": 0}),
        ("persistent_session", {**base, "persistent_session": True}),
        ("persistent_session", {**base, "persistent_session": True, "client_id": "x", "qos": 0}),
        ("password", {**base, "password": "pw"}),
        ("bogus", {**base, "bogus": 1}),
    ])
    with pytest.raises(ConnectorOptionsError) as caught:
        MqttConnector({**base, "username": "u", "password": "pw-value", "qos": 5})
    assert "pw-value" not in str(caught.value)


def test_monitor_over_mqtt_counts_every_message_across_a_restart(publisher: Publisher, tmp_path: Path) -> None:
    """Persistent session, QoS 1: messages published while ticking and while the runner is down."""
    url = f"sqlite:///{tmp_path / 'driftd.db'}"
    options = publisher.options(persistent_session=True, session_expiry=60,
                                client_id=f"driftd-{uuid.uuid4().hex[:12]}")
    config = monitor_config(
        source={"type": "mqtt", "options": options},
        reference={"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
        window={"rows": 100}, max_rows=130,
    )
    rows = sample_table(1000, seed=1).to_pylist()
    runner = make_runner(config, url)
    runner.tick()  # subscribes
    for step, count in enumerate([250, 0, 333, 170, 0, 247]):
        if step == 3:  # restart; what is published meanwhile waits at the broker
            runner.close()
            runner.store.close()
        if count:
            publisher.send(count, make=lambda i: rows[i])
        if step == 3:
            runner = make_runner(config, url)
        for _ in range(2):
            runner.tick()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not runner.tick().rows_fetched and runner.connector.buffered == 0:
            with runner.store.engine.connect() as connection:
                pending = connection.scalar(sa.select(SourceCursor.pending_rows))
            if runner.store.count_rows("m") + pending >= 1000:
                break
            time.sleep(0.05)
    windows = runner.store.count_rows("m")
    runner.close()
    runner.store.close()
    assert windows + pending == publisher.sent == 1000
    assert windows == 1000 and pending == 0


def test_committed_messages_redelivered_after_a_crash_are_not_read_again(publisher: Publisher) -> None:
    """The stored cursor names the committed batch the broker still holds unacknowledged."""
    options = publisher.options(persistent_session=True, session_expiry=60,
                                client_id=f"driftd-{uuid.uuid4().hex[:12]}")
    first = MqttConnector(options)
    first.fetch(None, 10)
    publisher.send(8)
    wait_buffered(first, 8)
    committed = json.loads(json.dumps(first.fetch(None, 5).cursor))  # the engine commits 0..4 and dies
    first._client._sock.close()
    first._client.loop_stop()
    first._client = None
    second = MqttConnector(options)
    second.fetch(committed, 10)
    wait_buffered(second, 3)
    table, _ = drain(second, committed, 10)
    second.close()
    assert ids(table) == [5, 6, 7]


def test_the_backlog_counts_the_messages_received_and_not_handed_out(publisher: Publisher) -> None:
    connector = MqttConnector(publisher.options())
    assert connector.fetch(None, 10).backlog.rows == 0  # subscribes
    publisher.send(12)
    wait_buffered(connector, 12)
    first = connector.fetch(None, 5)
    assert first.num_rows == 5 and first.backlog.rows == 7
    rest = connector.fetch(first.cursor, 100)
    assert rest.num_rows == 7 and rest.backlog.rows == 0
    connector.close()
