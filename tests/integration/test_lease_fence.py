"""The lease fence: a replica that lost its lease mid-tick (paused past the lease, e.g. a long GC or a
frozen VM) must not commit, even a tick without windows.

Replica A reads the first rows (not yet a window) and stalls before its commit; its lease runs out,
more rows arrive, and replica B takes the monitor over and commits two windows. When A wakes up its
commit must be refused: without the fence its stale cursor and pending rows would overwrite B's,
and the next start would count B's rows a second time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from monitor.connector import Batch, Connector
from monitor.daemon.engine import MonitorRunner
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.store.schema import Lease, SourceCursor, Window, utcnow
from tests.helpers import monitor_config, sample_table, write_csv

pytestmark = pytest.mark.postgres

FIRST_ROWS, LATER_ROWS, WINDOW_ROWS = 30, 90, 50


class Stalling(Connector):
    """Wraps a connector: after its first fetch, runs ``meanwhile`` (the world moving on) before returning."""

    def __init__(self, inner: Connector, meanwhile: Any) -> None:
        super().__init__({})
        self.inner, self.meanwhile, self.stalled = inner, meanwhile, False

    def fetch(self, cursor: Any, max_rows: int) -> Batch:
        batch = self.inner.fetch(cursor, max_rows)
        if not self.stalled:
            self.stalled = True
            self.meanwhile()
        return batch

    def close(self) -> None:
        self.inner.close()


def test_a_replica_that_lost_its_lease_mid_tick_commits_nothing(tmp_path: Path, postgres_url: str) -> None:
    write_csv(tmp_path / "data" / "part-0.csv", sample_table(FIRST_ROWS, seed=1))
    config = monitor_config(source={"type": "files", "options": {"path": str(tmp_path / "data")}},
                            reference={"path": str(write_csv(tmp_path / "ref.csv", sample_table(300, seed=9)))},
                            window={"rows": WINDOW_ROWS}, measures=["ks"])
    upgrade(Store(postgres_url).engine)

    def replica(owner: str) -> MonitorRunner:
        return MonitorRunner(config, Store(postgres_url), PluginManager(load_entry_points=False), Metrics(),
                             lease=(owner, 5.0))

    a, b = replica("replica-a"), replica("replica-b")

    def meanwhile() -> None:
        """A stalls: its lease runs out, more rows arrive, B takes over and commits two windows."""
        with a.store.engine.begin() as connection:
            connection.execute(update(Lease).values(expires_at=utcnow()))
        write_csv(tmp_path / "data" / "part-1.csv", sample_table(LATER_ROWS, seed=2, start_id=FIRST_ROWS))
        report = b.tick()
        assert report.owned and [w.seq for w in report.windows] == [1, 2], report

    a.connector = Stalling(a.connector, meanwhile)
    stale = a.tick()

    # B restarts (a new process of the same replica) and goes on from what is committed.
    b.close()
    restarted = replica("replica-b")
    for _ in range(3):
        restarted.tick()
    store = Store(postgres_url)
    with store.engine.connect() as connection:
        seqs = connection.scalars(select(Window.seq).order_by(Window.seq)).all()
        in_windows = connection.scalar(select(func.coalesce(func.sum(Window.rows), 0)))
        pending = connection.scalar(select(SourceCursor.pending_rows))
    assert seqs == [1, 2], "a window evaluated twice"
    assert in_windows + pending == FIRST_ROWS + LATER_ROWS, f"{in_windows} rows in windows + {pending} pending"
    assert not stale.owned and stale.windows == [], "A's stale tick was committed"
    for runner in (a, restarted):
        runner.close()


def test_a_lease_that_moved_away_and_back_between_ticks_is_taken_afresh(tmp_path: Path, postgres_url: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A evaluates, its lease runs out, B takes over, commits a window and hands the monitor back, then A takes
    it again without ever noticing it was gone: A must reload what B committed (sequence, cursor, pending
    rows) instead of committing from its stale state (a duplicate window seq, or rows counted twice)."""
    write_csv(tmp_path / "data" / "part-0.csv", sample_table(WINDOW_ROWS + FIRST_ROWS, seed=1))
    config = monitor_config(source={"type": "files", "options": {"path": str(tmp_path / "data")}},
                            reference={"path": str(write_csv(tmp_path / "ref.csv", sample_table(300, seed=9)))},
                            window={"rows": WINDOW_ROWS}, measures=["ks"])
    upgrade(Store(postgres_url).engine)

    def replica(owner: str) -> MonitorRunner:
        return MonitorRunner(config, Store(postgres_url), PluginManager(load_entry_points=False), Metrics(),
                             lease=(owner, 30.0))

    a, b = replica("replica-a"), replica("replica-b")
    assert [w.seq for w in a.tick().windows] == [1]

    def expire() -> None:
        with a.store.engine.begin() as connection:
            connection.execute(update(Lease).values(expires_at=utcnow()))

    expire()
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(WINDOW_ROWS, seed=2, start_id=WINDOW_ROWS + FIRST_ROWS))
    report = b.tick()
    assert report.owned and [w.seq for w in report.windows] == [2], report
    with a.store.engine.begin() as connection:  # B hands it back (as balancing does)
        connection.execute(update(Lease).values(owner="", expires_at=utcnow()))

    write_csv(tmp_path / "data" / "part-2.csv", sample_table(WINDOW_ROWS, seed=3, start_id=2 * WINDOW_ROWS + FIRST_ROWS))
    with caplog.at_level("ERROR"):
        report = a.tick()
    assert report.owned and [w.seq for w in report.windows] == [3], report
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    with a.store.engine.connect() as connection:
        seqs = connection.scalars(select(Window.seq).order_by(Window.seq)).all()
        in_windows = connection.scalar(select(func.coalesce(func.sum(Window.rows), 0)))
        pending = connection.scalar(select(SourceCursor.pending_rows))
    assert seqs == [1, 2, 3]
    assert in_windows + pending == 3 * WINDOW_ROWS + FIRST_ROWS, f"{in_windows} rows in windows + {pending} pending"
    for runner in (a, b):
        runner.close()
