"""The redis_streams connector against the real Redis server: contract, types, trimming, outages."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from monitor.connector import ConnectorError
from monitor.testing import check_bad_options, check_connector, drain
from plugins.connectors.redis_streams import RedisStreamsConnector
from tests.conftest import require_module, under_ci
from tests.helpers import monitor_config, restart_and_outage, sample_table, write_csv

redis = require_module("redis")

#: The Redis server these tests use; override with DRIFTD_TEST_REDIS_URL.
REDIS_URL = os.environ.get("DRIFTD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Stream:
    """A uniquely named stream on the test server, written ``id, a, b, c`` rows at a time."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.key = f"driftd_test_{uuid.uuid4().hex[:12]}"
        self.rows = 0

    def write(self, rows: int) -> None:
        """Append ``rows`` entries with the next ids."""
        pipe = self.client.pipeline(transaction=False)
        for row in sample_table(rows, seed=self.rows, start_id=self.rows).to_pylist():
            pipe.xadd(self.key, row)
        pipe.execute()
        self.rows += rows

    def write_json(self, rows: int) -> None:
        """Append ``rows`` entries holding their columns as JSON in one field."""
        pipe = self.client.pipeline(transaction=False)
        for row in sample_table(rows, seed=self.rows, start_id=self.rows).to_pylist():
            pipe.xadd(self.key, {"payload": json.dumps(row), "source": "sensor-1"})
        pipe.execute()
        self.rows += rows

    def connector(self, **options: Any) -> RedisStreamsConnector:
        """A connector over the stream, with any option overridden."""
        return RedisStreamsConnector({"url": REDIS_URL, "stream": self.key, **options})


@pytest.fixture
def stream() -> Iterator[Stream]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        if under_ci():
            pytest.fail(f"Redis at {REDIS_URL} is required under CI: {error}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {type(error).__name__}")
    created = Stream(client)
    yield created
    client.delete(created.key)
    client.close()


def test_fields_pass_the_conformance_suite(stream: Stream) -> None:
    check_connector(stream.connector, stream.write, total_rows=43)


def test_json_field_passes_the_conformance_suite(stream: Stream) -> None:
    check_connector(lambda: stream.connector(json_field="payload", fields=["id", "a", "c"]),
                    stream.write_json, total_rows=31)


def test_columns_types_and_cursor(stream: Stream) -> None:
    stream.write(3)
    stream.client.xadd(stream.key, {"id": "3", "a": "", "b": "1e3", "c": "7"})
    connector = stream.connector()
    batch = connector.fetch(None, 10)
    connector.close()
    table = batch.table
    assert table.column_names == ["id", "a", "b", "c", "_id", "_ts"]
    assert [str(table.schema.field(n).type) for n in table.column_names] == [
        "int64", "double", "double", "string", "string", "timestamp[ms, tz=UTC]"]
    assert table.column("a").to_pylist()[3] is None and table.column("c").to_pylist()[3] == "7"
    last_id = table.column("_id").to_pylist()[-1]
    assert batch.cursor == last_id == json.loads(json.dumps(batch.cursor))
    assert int(last_id.split("-")[0]) == table.column("_ts").to_pylist()[-1].timestamp() * 1000
    only = stream.connector(fields=["b", "missing"]).fetch(batch.cursor, 10)
    assert only.num_rows == 0 and only.cursor == batch.cursor
    stream.client.xadd(stream.key, {"b": "2.5", "_other": "x"})
    only = stream.connector(fields=["b", "missing"]).fetch(batch.cursor, 10).table
    assert only.column_names == ["b", "missing", "_id", "_ts"] and only.column("b").to_pylist() == [2.5]


def test_unreadable_entries_stop_or_are_skipped(stream: Stream, caplog: pytest.LogCaptureFixture) -> None:
    stream.client.xadd(stream.key, {"payload": json.dumps({"a": 1})})
    bad = stream.client.xadd(stream.key, {"payload": "[1, 2"}).decode()
    stream.client.xadd(stream.key, {"payload": b"\xff\xfe"})
    clash = stream.client.xadd(stream.key, {"payload": json.dumps({"a": 2, "_id": "mine"})}).decode()
    stream.client.xadd(stream.key, {"payload": json.dumps({"a": 3})})
    with pytest.raises(ConnectorError, match=f"entry {bad}: not valid JSON"):
        stream.connector(json_field="payload").fetch(None, 10)
    with caplog.at_level(logging.WARNING, logger="plugins.connectors.redis_streams"):
        table, _ = drain(stream.connector(json_field="payload", on_invalid="skip"), None, 10)
    assert table.column("a").to_pylist() == [1, 3]
    assert len([r for r in caplog.records if "skipping entry" in r.getMessage()]) == 3
    with pytest.raises(ConnectorError, match=f"entry {clash}: field '_id' clashes"):
        stream.connector(json_field="payload").fetch(_before(clash), 10)


def _before(entry_id: str) -> str:
    """The id just before ``entry_id`` (a cursor that reads it next)."""
    ms, seq = map(int, entry_id.split("-"))
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-18446744073709551615"


def test_trimming_past_the_cursor_warns_once(stream: Stream, caplog: pytest.LogCaptureFixture) -> None:
    stream.write(10)
    connector = stream.connector()
    first = connector.fetch(None, 3)
    stream.client.xtrim(stream.key, maxlen=2, approximate=False)
    with caplog.at_level(logging.WARNING, logger="plugins.connectors.redis_streams"):
        rest = connector.fetch(first.cursor, 100)
        stream.client.xtrim(stream.key, maxlen=0, approximate=False)
        stream.write(2)
        again = connector.fetch(rest.cursor, 100)
    connector.close()
    assert rest.table.column("id").to_pylist() == [8, 9] and again.table.column("id").to_pylist() == [10, 11]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "trimmed past the cursor" in warnings[0] and stream.key in warnings[0]


def test_a_deleted_entry_after_the_cursor_is_reported(stream: Stream, caplog: pytest.LogCaptureFixture) -> None:
    stream.write(4)
    connector = stream.connector()
    first = connector.fetch(None, 1)
    gone = stream.client.xrange(stream.key)[2][0]
    stream.client.xdel(stream.key, gone)
    with caplog.at_level(logging.WARNING, logger="plugins.connectors.redis_streams"):
        table, _ = drain(connector, first.cursor, 100)
    connector.close()
    assert table.column("id").to_pylist() == [1, 3]
    assert any("XDEL" in r.getMessage() for r in caplog.records)


def test_bad_options_are_rejected(stream: Stream) -> None:
    stream.client.set(stream.key, "not a stream")
    base = {"url": REDIS_URL, "stream": stream.key}
    check_bad_options(RedisStreamsConnector, [
        ("url", {"stream": "s"}),
        ("url", {**base, "url": "http://127.0.0.1:6379"}),
        ("stream", {"url": REDIS_URL}),
        ("stream", {**base, "stream": ""}),
        ("stream", base),  # the key holds a string
        ("fields", {**base, "fields": []}),
        ("json_field", {**base, "json_field": ""}),
        ("on_invalid", {**base, "on_invalid": "ignore"}),
        ("timeout", {**base, "timeout": 0}),
        ("bogus", {**base, "bogus": 1}),
    ])


def test_an_invalid_cursor_is_a_clear_error(stream: Stream) -> None:
    for cursor in (12, "12", "abc-1", ["1-0"]):
        with pytest.raises(ConnectorError, match="invalid cursor"):
            stream.connector().fetch(cursor, 10)


def test_building_never_connects_and_a_down_server_is_a_masked_error() -> None:
    connector = RedisStreamsConnector({"url": "redis://driftd:s3cret-pw@127.0.0.1:1/0", "stream": "events"})
    with pytest.raises(ConnectorError) as caught:
        connector.fetch(None, 10)
    connector.close()
    message = str(caught.value)
    assert "s3cret-pw" not in message and "redis://driftd:***@127.0.0.1:1/0" in message
    assert "'events'" in message and "refused" in message.lower()


def test_a_killed_connection_is_replaced(stream: Stream) -> None:
    stream.write(5)
    connector = stream.connector()
    first = connector.fetch(None, 2)
    stream.client.client_kill_filter(_id=connector.client.client_id())
    stream.write(5)
    try:
        batch = connector.fetch(first.cursor, 100)
    except ConnectorError:  # the dead connection may surface once; the next fetch reconnects
        batch = connector.fetch(first.cursor, 100)
    connector.close()
    assert batch.table.column("id").to_pylist() == list(range(2, 10))




def test_monitor_counts_every_row_once_across_a_restart_and_an_outage(
        stream: Stream, sqlite_url: str, tmp_path: Path) -> None:
    """Rows written between ticks, a restart and an unreachable source: windows + pending rows == N."""
    options = {"url": REDIS_URL, "stream": stream.key}
    config = monitor_config(
        source={"type": "redis_streams", "options": options},
        reference={"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
        window={"rows": 100}, max_rows=130,
    )
    windows, pending = restart_and_outage(config, sqlite_url, stream.write,
                                          lambda: RedisStreamsConnector({**options, "url": "redis://:s3cret-pw@127.0.0.1:1/0"}), secret="s3cret-pw")
    assert windows + pending == stream.rows == 1000
    assert windows == 1000 and pending == 0


def test_a_field_that_turns_to_text_mid_stream_never_stalls_the_monitor(
        stream: Stream, sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Numbers while rows wait for a window, then entries whose ``a`` is "oops": no "Unable to merge"
    stall (issue 14); every row counted, the text counted as invalid values of ``a``."""
    from monitor.metrics import Metrics
    from tests.helpers import make_runner

    config = monitor_config(
        source={"type": "redis_streams", "options": {"url": REDIS_URL, "stream": stream.key}},
        reference={"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
        window={"rows": 100}, max_rows=130,
    )
    metrics = Metrics()
    runner = make_runner(config, sqlite_url, metrics)
    stream.write(130)
    assert [w.rows for w in runner.tick().windows] == [100]  # 30 rows wait, ``a`` read as float64
    pipe = stream.client.pipeline(transaction=False)
    for row in sample_table(70, seed=5, start_id=130).to_pylist():
        pipe.xadd(stream.key, {**row, "a": "oops" if row["id"] % 10 == 0 else row["a"]})
    pipe.execute()
    report = runner.tick()
    assert [w.rows for w in report.windows] == [100] and report.windows[0].missing_features == []
    assert runner.store.count_rows(runner.name) == 200
    assert metrics.registry.get_sample_value("driftd_invalid_values_total", {"monitor": "m", "feature": "a"}) == 7
    assert "monitor m: feature 'a': 7 value(s) are not numbers (e.g. 'oops')" in caplog.text
    runner.close()
    runner.store.close()
