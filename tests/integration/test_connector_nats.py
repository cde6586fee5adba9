"""The nats connector against the real NATS JetStream server: contract, types, limits, outages."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pytest

from monitor.connector import ConnectorError
from monitor.testing import check_bad_options, check_connector, drain
from plugins.connectors.nats_jetstream import NatsConnector, subject_within
from tests.conftest import require_module, under_ci
from tests.helpers import monitor_config, restart_and_outage, sample_table, write_csv

nats = require_module("nats")

#: The NATS server (with JetStream) these tests use; override with DRIFTD_TEST_NATS_URL.
NATS_URL = os.environ.get("DRIFTD_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _quiet(error: Exception) -> None:
    """Leave connection errors to the exception ``connect`` raises."""


class Stream:
    """A uniquely named JetStream stream on ``driftd.test.<id>.>``, written ``id, a, b, c`` rows."""

    def __init__(self, **limits: Any) -> None:
        token = uuid.uuid4().hex[:12]
        self.name = f"DRIFTD_TEST_{token}"
        self.prefix = f"driftd.test.{token}"
        self.rows = 0
        self._run(lambda js: js.add_stream(name=self.name, subjects=[f"{self.prefix}.>"], **limits))

    def _run(self, action: Any) -> Any:
        async def main() -> Any:
            nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=1, reconnect_time_wait=0.1,
                                    error_cb=_quiet)
            try:
                return await action(nc.jetstream())
            finally:
                await nc.close()
        return asyncio.run(main())

    def publish(self, payloads: list[bytes], subject: str = "a") -> None:
        """Publish raw payloads on ``<prefix>.<subject>``."""
        async def send(js: Any) -> None:
            for payload in payloads:
                await js.publish(f"{self.prefix}.{subject}", payload)
        self._run(send)

    def write(self, rows: int, subject: str = "a") -> None:
        """Publish ``rows`` JSON rows with the next ids."""
        table = sample_table(rows, seed=self.rows, start_id=self.rows)
        self.publish([json.dumps(row).encode() for row in table.to_pylist()], subject)
        self.rows += rows

    def info(self) -> Any:
        """The stream's info (state, consumer count)."""
        return self._run(lambda js: js.stream_info(self.name))

    def delete(self) -> None:
        """Delete the stream."""
        self._run(lambda js: js.delete_stream(self.name))

    def connector(self, **options: Any) -> NatsConnector:
        """A connector over the stream, with any option overridden."""
        return NatsConnector({"servers": NATS_URL, "stream": self.name, **options})


def _stream(**limits: Any) -> Stream:
    try:
        return Stream(**limits)
    except Exception as error:  # noqa: BLE001
        if under_ci():
            pytest.fail(f"NATS JetStream at {NATS_URL} is required under CI: {error!r}")
        pytest.skip(f"NATS JetStream at {NATS_URL} is not reachable: {type(error).__name__}")


@pytest.fixture
def stream() -> Iterator[Stream]:
    created = _stream()
    yield created
    created.delete()


def test_passes_the_conformance_suite(stream: Stream) -> None:
    check_connector(stream.connector, stream.write, total_rows=43)
    assert stream.info().state.consumer_count == 0, "fetches left consumers behind"


def test_subject_filter_passes_the_conformance_suite(stream: Stream) -> None:
    def write(rows: int) -> None:
        stream.write(rows, subject="a")
        stream.publish([b'{"noise": 1}'] * 3, subject="b")

    check_connector(lambda: stream.connector(subject=f"{stream.prefix}.a"), write, total_rows=31)


def test_columns_types_and_cursor(stream: Stream) -> None:
    stream.write(3)
    stream.publish([json.dumps({"id": 3, "a": 1, "b": None, "c": 7, "extra": [1, 2]}).encode()])
    connector = stream.connector()
    table, cursor = drain(connector, None, 2)
    assert table.column_names == ["id", "a", "b", "c", "_seq", "_ts", "extra"]
    assert [str(table.schema.field(n).type) for n in table.column_names] == [
        "int64", "double", "double", "string", "int64", "timestamp[us, tz=UTC]", "list<item: int64>"]
    assert table.column("c").to_pylist()[3] == "7" and table.column("b").to_pylist()[3] is None
    assert table.column("_seq").to_pylist() == [1, 2, 3, 4]
    assert cursor == 4 == json.loads(json.dumps(cursor))
    only = stream.connector(fields=["a", "missing"]).fetch(2, 10).table
    assert only.column_names == ["a", "missing", "_seq", "_ts"] and only.column("_seq").to_pylist() == [3, 4]
    connector.close()


def test_unreadable_messages_stop_or_are_skipped(stream: Stream, caplog: pytest.LogCaptureFixture) -> None:
    stream.publish([b'{"a": 1}', b"not json", b"[1, 2]", b'{"a": 2, "_seq": 9}', b'{"a": 3}'])
    with pytest.raises(ConnectorError, match="message 2: not valid JSON"):
        stream.connector().fetch(None, 10)
    with pytest.raises(ConnectorError, match="message 3: a JSON list, expected an object"):
        stream.connector().fetch(2, 10)
    with pytest.raises(ConnectorError, match="message 4: field '_seq' clashes"):
        stream.connector().fetch(3, 10)
    with caplog.at_level(logging.WARNING, logger="plugins.connectors.nats_jetstream"):
        table, cursor = drain(stream.connector(on_invalid="skip"), None, 10)
    assert table.column("a").to_pylist() == [1, 3] and cursor == 5
    assert len([r for r in caplog.records if "skipping message" in r.getMessage()]) == 3


def test_messages_removed_by_limits_are_counted_once(caplog: pytest.LogCaptureFixture) -> None:
    stream = _stream(max_msgs=5)
    try:
        stream.write(3)
        connector = stream.connector()
        first = connector.fetch(None, 2)
        stream.write(10)  # sequences 1..13; the stream keeps 9..13
        with caplog.at_level(logging.WARNING, logger="plugins.connectors.nats_jetstream"):
            gap = connector.fetch(first.cursor, 3)
            table, cursor = drain(connector, gap.cursor, 3)
            retried = connector.fetch(first.cursor, 3)  # a tick that failed fetches from the same cursor again
        connector.close()
        assert gap.lost == 6 and retried.lost == 0, "the loss is reported in one batch"
        table = pa.concat_tables([gap.table, table])
    finally:
        stream.delete()
    assert table.column("id").to_pylist() == [8, 9, 10, 11, 12] and cursor == 13
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "6 messages after the cursor 2 were removed" in warnings[0]


def test_bad_options_are_rejected(stream: Stream, tmp_path: Path) -> None:
    base = {"servers": NATS_URL, "stream": stream.name}
    check_bad_options(NatsConnector, [
        ("stream", {"servers": NATS_URL}),
        ("stream", {**base, "stream": "a.b"}),
        ("stream", {**base, "stream": "NO_SUCH_STREAM"}),
        ("servers", {**base, "servers": "http://127.0.0.1:4222"}),
        ("servers", {**base, "servers": []}),
        ("subject", {**base, "subject": ""}),
        ("subject", {**base, "subject": "a.>.b"}),
        ("subject", {**base, "subject": "elsewhere.a"}),
        ("creds", {**base, "creds": str(tmp_path / "missing.creds")}),
        ("on_invalid", {**base, "on_invalid": "ignore"}),
        ("bogus", {**base, "bogus": 1}),
    ])


def test_subject_within() -> None:
    assert subject_within("a.b", "a.*") and subject_within("a.b.c", "a.>") and subject_within("a.*", "a.>")
    assert not subject_within("a.>", "a.*") and not subject_within("a", "a.>") and not subject_within("b.c", "a.*")


def test_an_invalid_cursor_is_a_clear_error(stream: Stream) -> None:
    for cursor in (-1, "3", True, 2.5):
        with pytest.raises(ConnectorError, match="invalid cursor"):
            stream.connector().fetch(cursor, 10)


def test_a_dropped_connection_is_replaced(stream: Stream) -> None:
    stream.write(5)
    connector = stream.connector()
    first = connector.fetch(None, 2)
    connector._loop.run(connector._nc.close(), 5)  # as when the server goes away
    stream.write(5)
    batch = connector.fetch(first.cursor, 100)
    connector.close()
    assert batch.table.column("id").to_pylist() == list(range(2, 10))


def test_a_down_server_is_a_masked_error_and_close_stops_the_thread() -> None:
    before = threading.active_count()
    for options in ({"servers": "nats://driftd:s3cret-pw@127.0.0.1:1"},
                    {"servers": ["127.0.0.1:1"], "token": "s3cret-pw"},
                    {"servers": "nats://s3cret-pw@127.0.0.1:1"}):
        connector = NatsConnector({**options, "stream": "EVENTS"})
        started = time.monotonic()
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(None, 10)
        connector.close()
        message = str(caught.value)
        assert time.monotonic() - started < 3
        assert "s3cret-pw" not in message and "'EVENTS'" in message and "127.0.0.1:1" in message
        assert "refused" in message.lower()
    assert threading.active_count() == before


def test_monitor_counts_every_row_once_across_a_restart_and_an_outage(
        stream: Stream, sqlite_url: str, tmp_path: Path) -> None:
    """Rows written between ticks, a restart and an unreachable source: windows + pending rows == N."""
    options = {"servers": NATS_URL, "stream": stream.name}
    config = monitor_config(
        source={"type": "nats", "options": options},
        reference={"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
        window={"rows": 100}, max_rows=130,
    )
    windows, pending = restart_and_outage(config, sqlite_url, stream.write,
                                          lambda: NatsConnector({**options, "servers": "nats://driftd:s3cret-pw@127.0.0.1:1"}), secret="s3cret-pw")
    assert windows + pending == stream.rows == 1000
    assert windows == 1000 and pending == 0
    assert stream.info().state.consumer_count == 0




def test_the_backlog_counts_the_messages_after_the_cursor(stream: Stream) -> None:
    stream.write(25)
    stream.publish([b'{"noise": 1}'] * 5, subject="b")
    connector = stream.connector(subject=f"{stream.prefix}.a")
    first = connector.fetch(None, 10)
    assert first.num_rows == 10 and first.backlog is not None and first.backlog.rows == 15
    rest = connector.fetch(first.cursor, 100)
    assert rest.num_rows == 15 and rest.backlog.rows == 0
    assert connector.fetch(rest.cursor, 100).backlog.rows == 0
    connector.close()
