"""Fault injection: 20 seeded SIGKILLs at random moments over a files and an SQL source.

Afterwards every row is in exactly one evaluated window (or still pending in the cursor), no
window is evaluated twice, history and cursors agree, and no adaptation is left pending or
running (the files source drifts half-way and queues a slow `command` adapter the kills land in).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from monitor.store.migrate import upgrade
from monitor.store.schema import SourceCursor, Window
from monitor.store import Store
from tests.e2e.conftest import Driftd, free_port
from tests.helpers import sample_table, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

KILLS, SEED = 20, 20261130
FILES, FILE_ROWS, SQL_ROWS, WINDOW_ROWS = 10, 700, 7000, 300


def _sql_source(url: str) -> None:
    engine = sa.create_engine(url)
    events = sa.Table("events", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("a", sa.Float), sa.Column("b", sa.Float), sa.Column("c", sa.String(8)))
    events.create(engine)
    with engine.begin() as connection:
        connection.execute(events.insert(), sample_table(SQL_ROWS, seed=3).to_pylist())
    engine.dispose()


def _progress(store: Store) -> dict[str, tuple[list[int], int, int]]:
    """Per monitor: window seqs, rows in windows, pending rows."""
    progress = {}
    with store.engine.connect() as connection:
        for name in ("files", "sql"):
            monitor_id = store.monitor_id(name)
            seqs = connection.scalars(sa.select(Window.seq).where(Window.monitor_id == monitor_id)
                                      .order_by(Window.seq)).all()
            rows = connection.scalar(sa.select(sa.func.coalesce(sa.func.sum(Window.rows), 0))
                                     .where(Window.monitor_id == monitor_id))
            pending = connection.scalar(sa.select(SourceCursor.pending_rows)
                                        .where(SourceCursor.monitor_id == monitor_id)) or 0
            progress[name] = (list(seqs), int(rows), int(pending))
    return progress


def test_twenty_random_sigkills_lose_nothing_and_count_nothing_twice(tmp_path: Path, postgres_url: str) -> None:
    for index in range(FILES):
        write_csv(tmp_path / "data" / f"part-{index:02d}.csv",
                  sample_table(FILE_ROWS, seed=index, start_id=index * FILE_ROWS, shift=1.5 * (index >= FILES // 2)))
    _sql_source(postgres_url)
    reference = write_csv(tmp_path / "ref.csv", sample_table(1000, seed=99))
    store = Store(postgres_url)
    upgrade(store.engine)
    common = {"features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": WINDOW_ROWS},
              "reference": {"path": str(reference)}, "schedule": {"interval": "0.3s"}, "max_rows": 120,
              "measures": ["ks", "psi", "chi_square"]}
    config = {"storage": {"url": postgres_url, "lease": "1s"}, "server": {"enabled": False}, "monitors": [
        {"name": "files", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}}, **common,
         "adaptation": {"cooldown": 0, "adapters": [{"type": "command", "name": "retrain", "options": {
             "argv": [sys.executable, "-c", "import time; time.sleep(3)"]}}]}},
        {"name": "sql", "source": {"type": "sql", "options": {"url": postgres_url, "table": "events",
                                                               "cursor_column": "id"}}, **common}]}
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")

    rng = random.Random(SEED)
    daemon = Driftd(tmp_path, ["-c", str(path)], free_port())
    try:
        # The first kill lands right after start-up; its length (about a second on a quiet machine,
        # several on a loaded one) sets the time scale of the others, so that on any machine some
        # kills land before the first tick and most while windows are being committed.
        started = time.monotonic()
        daemon.start()
        daemon.wait_log("running 2 monitor(s)")
        startup = max(1.0, time.monotonic() - started)
        daemon.kill()
        mid_run = 0
        for _ in range(KILLS - 1):
            daemon.start()
            time.sleep(rng.uniform(0.8, 2.5) * startup)
            daemon.kill()
            rows = sum(done for _, done, _ in _progress(store).values())
            mid_run += 0 < rows < FILES * FILE_ROWS + SQL_ROWS - 2 * WINDOW_ROWS
        assert mid_run >= 5, f"only {mid_run} kills landed while work was left: the test lost its teeth"
        daemon.start()
        daemon.wait_log("running 2 monitor(s)")
        deadline = time.monotonic() + 90
        expected = {"files": FILES * FILE_ROWS, "sql": SQL_ROWS}
        while time.monotonic() < deadline:
            progress = _progress(store)
            if all(rows + pending == expected[name] and pending < WINDOW_ROWS
                   for name, (_, rows, pending) in progress.items()) and not _unfinished(store):
                break
            time.sleep(0.5)
        assert daemon.terminate(timeout=15) == 0, daemon.log()
    finally:
        daemon.kill()

    for name, (seqs, rows, pending) in _progress(store).items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{name}: a window evaluated twice or skipped"
        assert rows + pending == expected[name], f"{name}: {rows} in windows + {pending} pending"
        assert rows == (expected[name] // WINDOW_ROWS) * WINDOW_ROWS
    runs = _adaptations(store)
    assert runs, "the drift queued no adaptation"
    assert not _unfinished(store), f"adaptations left unfinished: {runs}"
    assert all(reason for _, reason in runs), runs
    logs = daemon.all_logs()
    assert "Traceback" not in logs, logs[-4000:]
    store.close()


def _adaptations(store: Store) -> list[tuple[str, str | None]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text("SELECT state, reason FROM adaptations"))]


def _unfinished(store: Store) -> list[str]:
    return [state for state, _ in _adaptations(store) if state in ("pending", "running")]
