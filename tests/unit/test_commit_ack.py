"""``Connector.commit``: the source learns a cursor only after driftd's transaction stored it.

Over ``tests/memory_queue.py``, a queue that keeps each message until it is acknowledged and gives
back what a connection left unacknowledged: the engine acknowledges nothing it has not committed,
a failing acknowledgement never undoes or repeats a committed tick, start-up hands the connector
the last committed cursor, and ``driftd reference capture`` refuses a source it would take rows from.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import func, select

import tests.memory_queue as memory_queue
from monitor.cli import history
from monitor.connector import ConnectorError
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.daemon.errors import MonitorError as CaptureError
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.store.schema import SourceCursor, Window
from tests.helpers import monitor_config, sample_table, write_csv
from tests.memory_queue import MemoryBroker

WINDOW = 20


def _plugins() -> PluginManager:
    plugins = PluginManager(load_entry_points=False)
    plugins.register(memory_queue, "memory-queue")
    return plugins


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(f"q-{uuid.uuid4().hex[:8]}")


def _config(broker: MemoryBroker, tmp_path: Path) -> Any:
    reference = write_csv(tmp_path / "reference.csv", sample_table(300, seed=9))
    return monitor_config(source={"type": "memory_queue", "options": {"broker": broker.name}},
                          window={"rows": WINDOW}, reference={"path": str(reference)}, measures=["ks", "psi"],
                          max_rows=50)


def _runner(config: Any, url: str, metrics: Metrics | None = None) -> MonitorRunner:
    store = Store(url)
    upgrade(store.engine)
    return MonitorRunner(config, store, _plugins(), metrics or Metrics())


def _counted(runner: MonitorRunner) -> int:
    """Rows in committed windows plus rows committed as pending."""
    with runner.store.engine.connect() as connection:
        rows = connection.scalar(select(func.coalesce(func.sum(Window.rows), 0)))
        pending = connection.scalar(select(SourceCursor.pending_rows)) or 0
    return rows + pending


def _metric(metrics: Metrics, name: str) -> float:
    found = re.search(rf'^{name}\{{monitor="m"\}} (\S+)$', generate_latest(metrics.registry).decode(), re.M)
    assert found, f"{name} is not exported"
    return float(found[1])


def test_nothing_is_acknowledged_before_the_commit(broker: MemoryBroker, tmp_path: Path, sqlite_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    broker.publish(130)
    runner = _runner(_config(broker, tmp_path), sqlite_url)
    commit_tick = runner.store.commit_tick

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database refused the commit")

    monkeypatch.setattr(runner.store, "commit_tick", refused)
    with pytest.raises(MonitorError, match="refused the commit"):
        runner.tick()
    assert broker.outstanding == 130, "rows were acknowledged although their tick was not committed"
    assert runner.connector.commits == [None], "only the start-up call (nothing committed yet)"

    monkeypatch.setattr(runner.store, "commit_tick", commit_tick)
    first = runner.tick(retry_now=True)
    assert first.rows_fetched == 50
    cursor = runner.store.load_progress(runner.monitor_id, recent=0).position
    assert runner.connector.commits[-1] == cursor, "the connector learns the cursor that was committed"
    assert broker.outstanding == 80
    while runner.tick().rows_fetched:
        pass
    assert broker.outstanding == 0 and _counted(runner) == 130


def test_a_failing_commit_is_counted_logged_once_and_retried(broker: MemoryBroker, tmp_path: Path, sqlite_url: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    broker.publish(150)
    metrics = Metrics()
    runner = _runner(_config(broker, tmp_path), sqlite_url, metrics)
    runner.tick()  # connects; commits 50
    connector = runner.connector
    commit, failures = connector.commit, [2]

    def flaky(cursor: Any) -> None:
        if failures[0]:
            failures[0] -= 1
            raise ConnectorError("memory queue: the channel is closed")
        commit(cursor)

    connector.commit = flaky  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    windows_before = len(runner.store.windows("m", limit=1000))
    second = runner.tick()
    assert second.rows_fetched == 50 and second.windows, "the tick itself is committed"
    assert len(runner.store.windows("m", limit=1000)) == windows_before + len(second.windows)
    assert _metric(metrics, "driftd_source_commit_errors_total") == 1
    assert broker.outstanding == 100, "the failed acknowledgement left the batch with the broker"
    assert runner.tick().rows_fetched == 50, "the next tick goes on after the committed cursor, nothing repeated"
    assert _metric(metrics, "driftd_source_commit_errors_total") == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "did not take the committed cursor: memory queue: the channel is " \
                                "closed" in errors[0] and "monitor m" in errors[0], errors
    runner.tick()  # drained: the same cursor, but the connector still owes the acknowledgement
    assert broker.outstanding == 0, "the retry acknowledged every earlier batch too"
    assert any("takes committed cursors again" in r.getMessage() for r in caplog.records)
    assert _counted(runner) == 150
    assert _metric(metrics, "driftd_source_commit_errors_total") == 2


def test_start_up_hands_over_the_last_committed_cursor(broker: MemoryBroker, tmp_path: Path,
                                                       sqlite_url: str) -> None:
    """A crash between the transaction and the acknowledgement: the redelivered rows are not counted twice."""
    broker.publish(170)
    config = _config(broker, tmp_path)
    crashed = _runner(config, sqlite_url)
    crashed.tick()
    crashed.fetcher.commit = lambda *args, **kwargs: True  # type: ignore[method-assign] # the process dies first
    crashed.tick()
    broker.disconnect(crashed.connector.connection)  # the broker sees the connection go: 50 redelivered, 20 new
    assert broker.outstanding == 120

    restarted = _runner(config, sqlite_url)
    restarted.tick()
    cursor = restarted.store.load_progress(restarted.monitor_id, recent=0).position
    assert restarted.connector.commits[0]["seq"] == 100, "start-up passes the last committed cursor"
    assert restarted.connector.commits[-1] == cursor
    while restarted.tick().rows_fetched:
        pass
    assert broker.outstanding == 0 and _counted(restarted) == 170


def test_capture_refuses_a_source_that_cannot_be_read_again(broker: MemoryBroker, tmp_path: Path, sqlite_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    broker.publish(40)
    store = Store(sqlite_url)
    upgrade(store.engine)
    monkeypatch.setattr(history, "PluginManager", _plugins)
    with pytest.raises(CaptureError, match="hands each message out once and cannot be read again.*--from FILE"):
        history._capture_from_source(store, _config(broker, tmp_path), 10)  # noqa: SLF001
    assert broker.outstanding == 40 and not broker.unacked.get(1), "nothing was read"


def test_a_replica_that_loses_the_lease_gives_back_what_the_source_holds(broker: MemoryBroker, tmp_path: Path,
                                                                         sqlite_url: str) -> None:
    """The messages delivered to this replica but not committed go back to the queue for the lease holder."""
    broker.publish(130)
    runner = _runner(_config(broker, tmp_path), sqlite_url)
    runner.tick()  # 50 committed and acknowledged; the other 80 delivered to this replica's connection
    held = runner.connector
    assert broker.outstanding == 80 and len(broker.queue) == 0
    runner._forget_state()  # noqa: SLF001 - what a tick does once another replica holds the lease
    assert held.connection is None and len(broker.queue) == 80, "the 80 went back to the queue"
    assert runner.connector is not held, "a fresh connector waits in case the lease comes back"
    while runner.tick().rows_fetched:  # the lease came back (on SQLite it always does)
        pass
    assert broker.outstanding == 0 and _counted(runner) == 130
