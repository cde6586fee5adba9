"""The sql connector against real SQLite, PostgreSQL and MariaDB: contract, types, injection, outages."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from monitor.connector import ConnectorError, ConnectorOptionsError
from monitor.store.schema import SourceCursor
from monitor.testing import check_bad_options, check_connector, drain
from plugins.connectors.sql import SqlConnector
from tests.conftest import under_ci
from tests.helpers import make_runner, monitor_config, sample_table, write_csv

#: The MariaDB/MySQL server these tests use; override with DRIFTD_TEST_MYSQL_URL.
MYSQL_ADMIN_URL = os.environ.get("DRIFTD_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
#: Rows per shared timestamp, so ties straddle batch boundaries for every max_rows tried.
TIES = 5


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty database on the local MariaDB server, dropped afterwards."""
    admin = make_url(MYSQL_ADMIN_URL)
    name = f"driftd_test_{uuid.uuid4().hex[:12]}"
    try:
        import pymysql

        connection = pymysql.connect(host=admin.host, port=admin.port or 3306, user=admin.username,
                                     password=admin.password or "", autocommit=True)
    except Exception as error:  # noqa: BLE001
        if under_ci():
            pytest.fail(f"MariaDB at {admin.render_as_string()} is required under CI: {error}")
        pytest.skip(f"MariaDB at {admin.render_as_string()} is not reachable: {type(error).__name__}")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mariadb"])
def url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite, PostgreSQL and MariaDB."""
    return request.getfixturevalue(f"{request.param}_url")


class Events:
    """An ``events`` table with a timestamp cursor shared by ``TIES`` rows at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        metadata = sa.MetaData()
        self.table = sa.Table(
            "events", metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
            sa.Column("a", sa.Float),
            sa.Column("amount", sa.Numeric(10, 2)),
            sa.Column("c", sa.String(20)),
        )
        metadata.create_all(self.engine)
        self.rows = 0

    def write(self, rows: int, ts: datetime | None = None) -> None:
        """Insert ``rows`` rows with the next ids."""
        ids = range(self.rows, self.rows + rows)
        values = [{"id": i, "ts": ts or START + timedelta(seconds=i // TIES), "a": i / 10,
                   "amount": f"{i}.25", "c": "xyz"[i % 3]} for i in ids]
        if values:
            with self.engine.begin() as connection:
                connection.execute(self.table.insert(), values)
        self.rows += rows

    def count(self) -> int:
        """Rows in the table now (fails if the table is gone)."""
        with self.engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.count()).select_from(self.table))

    def connector(self, **options: Any) -> SqlConnector:
        """A connector over the table, keyed by (ts, id), with any option overridden."""
        return SqlConnector({"url": self.url, "table": "events", "cursor_column": "ts",
                             "tiebreaker_column": "id", **options})


@pytest.fixture
def events(url: str) -> Iterator[Events]:
    created = Events(url)
    yield created
    created.engine.dispose()


def test_table_source_passes_the_conformance_suite(events: Events) -> None:
    check_connector(events.connector, events.write, total_rows=43)


def test_query_source_passes_the_conformance_suite(events: Events) -> None:
    query = "SELECT id, ts, a, c FROM events"
    check_connector(lambda: SqlConnector({"url": events.url, "query": query, "cursor_column": "ts",
                                          "tiebreaker_column": "id"}), events.write, total_rows=23)


def test_unique_cursor_column_needs_no_tiebreaker(events: Events) -> None:
    check_connector(lambda: SqlConnector({"url": events.url, "table": "events", "cursor_column": "id"}),
                    events.write, total_rows=23)


def test_many_rows_sharing_one_timestamp_are_read_once(events: Events) -> None:
    events.write(10, ts=START)
    events.write(1, ts=START + timedelta(seconds=1))
    connector = events.connector(columns=["id"])
    batches = [connector.fetch(None, 3)]
    while batches[-1].num_rows:
        batches.append(connector.fetch(json.loads(json.dumps(batches[-1].cursor)), 3))
    connector.close()
    assert [b.table.column("id").to_pylist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10], []]
    assert batches[-2].cursor["tiebreak"] == 10


def test_types_and_time_zones_survive(postgres_url: str) -> None:
    events = Events(postgres_url)
    with events.engine.begin() as connection:
        connection.execute(events.table.insert(), [
            {"id": 1, "ts": datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), "a": 0.5,
             "amount": "12.25", "c": "x"},
            {"id": 2, "ts": datetime(2026, 3, 1, 7, 30, tzinfo=timezone(timedelta(hours=-5))), "a": None,
             "amount": None, "c": None},
        ])
    # a session time zone far from UTC: the connector must still hand back the same instants
    url = make_url(postgres_url).update_query_dict({"options": "-c TimeZone=Asia/Kolkata"})
    connector = SqlConnector({"url": url.render_as_string(hide_password=False), "table": "events",
                              "cursor_column": "ts", "tiebreaker_column": "id"})
    batch = connector.fetch(None, 1)
    table, _ = drain(connector, json.loads(json.dumps(batch.cursor)), 10)
    connector.close()
    assert batch.table.schema == pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")),
                                            ("a", pa.float64()), ("amount", pa.float64()), ("c", pa.string())])
    assert batch.table.to_pylist() == [{"id": 1, "ts": datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc),
                                        "a": 0.5, "amount": 12.25, "c": "x"}]
    assert batch.cursor == {"value": "2026-03-01T17:30:00+05:30", "tiebreak": 1}
    assert table.to_pylist() == [{"id": 2, "ts": datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc),
                                  "a": None, "amount": None, "c": None}]
    events.engine.dispose()


@pytest.mark.parametrize(("option", "value"), [
    ("table", "events; DROP TABLE events"),
    ("table", 'events" ; DROP TABLE events; --'),
    ("schema", "main; DROP TABLE events"),
    ("columns", ["id", "a FROM events; DROP TABLE events; --"]),
    ("cursor_column", "ts) OR 1=1; DROP TABLE events; --"),
    ("tiebreaker_column", "id`; DROP TABLE events; --"),
])
def test_injection_through_identifiers_is_rejected(events: Events, option: str, value: Any) -> None:
    events.write(12)
    connector = events.connector(**{option: value})
    with pytest.raises(ConnectorOptionsError, match=f"option '{option}'"):
        connector.fetch(None, 100)
    connector.close()
    assert events.count() == 12


def test_injection_through_a_stored_cursor_value_is_rejected_or_bound(events: Events) -> None:
    events.write(12)
    evil = "2026-01-01'; DROP TABLE events; --"
    connector = events.connector()
    with pytest.raises(ConnectorError, match="invalid cursor"):
        connector.fetch({"value": evil, "tiebreak": 0}, 100)
    with pytest.raises(ConnectorError, match="invalid cursor"):
        connector.fetch({"value": START.isoformat(), "tiebreak": "0 OR 1=1"}, 100)
    connector.close()
    # on a text cursor column the same value is plain data, compared as a string
    by_text = events.connector(cursor_column="c")
    table, _ = drain(by_text, {"value": "x' OR '1'='1", "tiebreak": 0}, 100)
    by_text.close()
    assert sorted(set(table.column("c").to_pylist())) == ["y", "z"] and table.num_rows == 8
    assert events.count() == 12


def test_bad_options_are_rejected(sqlite_url: str) -> None:
    Events(sqlite_url).engine.dispose()
    base = {"url": sqlite_url, "table": "events", "cursor_column": "ts"}
    check_bad_options(SqlConnector, [
        ("url", {"table": "events", "cursor_column": "ts"}),
        ("url", {**base, "url": "not a url"}),
        ("url", {**base, "url": "nosuchdb://host/db"}),
        ("cursor_column", {"url": sqlite_url, "table": "events"}),
        ("query", {"url": sqlite_url, "cursor_column": "ts"}),
        ("query", {**base, "query": "SELECT * FROM events"}),
        ("bogus", {**base, "bogus": 1}),
        ("table", {**base, "table": "missing"}),
        ("schema", {**base, "schema": "missing"}),
        ("cursor_column", {**base, "cursor_column": "missing"}),
        ("columns", {**base, "columns": ["id", "missing"]}),
    ])


def test_building_never_connects_and_a_down_server_is_a_masked_error() -> None:
    for url in ("postgresql+psycopg://driftd:s3cret-pw@127.0.0.1:1/db",
                "mysql+pymysql://root:s3cret-pw@127.0.0.1:1/test"):
        connector = SqlConnector({"url": url, "table": "events", "cursor_column": "ts"})
        with pytest.raises(ConnectorError) as caught:
            connector.fetch(None, 10)
        connector.close()
        message = str(caught.value)
        assert "s3cret-pw" not in message and "***@127.0.0.1:1" in message
        assert "refused" in message.lower()


def test_monitor_over_postgres_counts_every_row_once_across_a_restart(postgres_url: str, tmp_path: Path) -> None:
    """Rows written between ticks, runner restarted part-way: windows + pending rows == N."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE readings (id integer PRIMARY KEY, ts timestamptz NOT NULL, "
                                   "a double precision, b double precision, c text)"))
    readings = sa.table("readings", *(sa.column(name) for name in ("id", "ts", "a", "b", "c")))

    def insert(rows: int, start: int) -> None:
        values = sample_table(rows, seed=start, start_id=start).to_pylist()
        for row in values:
            row["ts"] = START + timedelta(seconds=row["id"] // 7)
        with engine.begin() as connection:
            connection.execute(readings.insert(), values)

    config = monitor_config(
        source={"type": "sql", "options": {"url": postgres_url, "table": "readings", "cursor_column": "ts",
                                           "tiebreaker_column": "id"}},
        reference={"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
        window={"rows": 100}, max_rows=130,
    )
    runner = make_runner(config, postgres_url)
    written = 0
    for step, rows in enumerate([250, 0, 333, 170, 0, 247]):
        if rows:
            insert(rows, written)
            written += rows
        if step == 3:  # restart: a new runner resumes from the committed cursor
            runner.close()
            runner.store.close()
            runner = make_runner(config, postgres_url)
        for _ in range(2):
            runner.tick()
    while runner.tick().rows_fetched:
        pass
    with runner.store.engine.connect() as connection:
        pending = connection.scalar(sa.select(SourceCursor.pending_rows))
    windows = runner.store.count_rows("m")
    runner.close()
    runner.store.close()
    engine.dispose()
    assert windows + pending == written == 1000
    assert windows == 1000 and pending == 0

