"""The source backlog: what a source holds after the cursor, exported so users know when driftd caught up."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.metrics import Metrics
from plugins.connectors.sql import SqlConnector
from tests.helpers import make_runner, monitor_config


def gauges(metrics: Metrics, monitor: str) -> dict[str, float]:
    return {sample.name: sample.value
            for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
            for sample in family.samples
            if sample.name.startswith("driftd_source_backlog") and sample.labels.get("monitor") == monitor}


def test_a_finite_source_counts_down_to_caught_up_and_the_metric_follows(sqlite_url: str) -> None:
    metrics = Metrics()
    config = monitor_config(source={"type": "synthetic", "options": {"total_rows": 2500}}, max_rows=1000,
                            features={"numeric": ["temperature"]}, window={"rows": 500},
                            reference={"first_rows": 500})
    runner = make_runner(config, sqlite_url, metrics)
    seen = []
    for _ in range(4):
        runner.tick()
        seen.append(gauges(metrics, "m"))
    assert seen == [{"driftd_source_backlog_rows": 1500.0}, {"driftd_source_backlog_rows": 500.0},
                    {"driftd_source_backlog_rows": 0.0}, {"driftd_source_backlog_rows": 0.0}]


def test_an_endless_source_exports_no_backlog(sqlite_url: str) -> None:
    metrics = Metrics()
    config = monitor_config(source={"type": "synthetic"}, features={"numeric": ["temperature"]},
                            reference={"first_rows": 500})
    runner = make_runner(config, sqlite_url, metrics)
    runner.tick()
    assert gauges(metrics, "m") == {}, "a connector that cannot tell exports nothing (not a made-up 0)"


def test_the_sql_backlog_counts_rows_and_time_after_the_cursor(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    engine = sa.create_engine(url)
    start = datetime(2026, 1, 1)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMP, a FLOAT)"))
        connection.execute(sa.text("INSERT INTO events VALUES (:id, :at, :a)"),
                           [{"id": i, "at": start + timedelta(minutes=i), "a": i / 10} for i in range(1000)])
    engine.dispose()
    connector = SqlConnector({"url": url, "table": "events", "cursor_column": "at", "tiebreaker_column": "id"})
    first = connector.fetch(None, 300)
    assert first.backlog is not None and first.backlog.rows == 700 and first.backlog.seconds == 700 * 60
    second = connector.fetch(first.cursor, 650)
    assert second.backlog.rows == 50 and second.backlog.seconds == 50 * 60
    last = connector.fetch(second.cursor, 650)
    assert last.num_rows == 50 and (last.backlog.rows, last.backlog.seconds) == (0, 0.0)
    by_id = SqlConnector({"url": url, "table": "events", "cursor_column": "id"}).fetch(None, 999)
    assert (by_id.backlog.rows, by_id.backlog.seconds) == (1, None), "an integer cursor has no time"
    connector.close()
