"""``driftd backfill``: a file of the past evaluated with the monitor's own rules, the same windows and
results the daemon computes from the same rows, stored with their own times, the live cursor untouched."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.daemon import lock_sqlite
from monitor.store import Store
from tests.helpers import sample_table, write_csv

DAY = 86_400
START = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()


def past(rows: int = 4000, shift_after: int = 3000) -> pa.Table:
    """Rows every 10 minutes from 2026-01-01 (UTC); ``a`` shifts by 2 from row ``shift_after`` on."""
    table = sample_table(rows, seed=5)
    a = table.column("a").to_numpy() + np.where(np.arange(rows) >= shift_after, 2.0, 0.0)
    stamps = pa.array((START + 600 * np.arange(rows)) * 1e6, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return table.set_column(1, "a", pa.array(a)).append_column("ts", stamps)


def monitor(name: str, source: Path, **changes: Any) -> dict[str, Any]:
    return {"name": name, "source": {"type": "files", "options": {"path": str(source)}},
            "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"span": "1d", "timestamp": "ts"},
            "measures": ["ks", "psi", "chi_square"], "drift": {"consecutive": 2}, **changes}


def write_config(tmp_path: Path, *monitors: dict[str, Any]) -> Path:
    (tmp_path / "empty").mkdir(exist_ok=True)
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"},
                                    "monitors": list(monitors)}))
    return path


def windows(store: Store, name: str) -> list[tuple[Any, ...]]:
    found = []
    for window in sorted(store.windows(name, 10_000), key=lambda w: w.seq):
        results = sorted((r.feature, r.measure, r.value, r.p_value, r.drifted) for r in store.results(window.id))
        found.append((window.seq, window.started_at, window.ended_at, window.rows, window.state,
                      window.drift_share, list(window.drifted_features), results))
    return found


def test_backfill_stores_what_the_daemon_computes_from_the_same_rows(tmp_path: Path) -> None:
    table = past()
    cut = 9 * 144  # the first nine days are the reference
    write_csv(tmp_path / "past.csv", table)
    write_csv(tmp_path / "reference.csv", table.slice(0, cut))
    write_csv(tmp_path / "live" / "part.csv", table.slice(cut))
    config = write_config(tmp_path, monitor("past", tmp_path / "empty"),
                          monitor("live", tmp_path / "live", reference={"path": str(tmp_path / "reference.csv")}))
    runner = CliRunner()
    result = runner.invoke(main, ["backfill", "-c", str(config), "past", "--from", str(tmp_path / "past.csv"),
                                  "--reference-until", "2026-01-10"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(main, ["check", "-c", str(config)]).exit_code in (0, 1)

    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    backfilled, live = windows(store, "past"), windows(store, "live")
    assert len(backfilled) == 18 and backfilled == live
    first_end = backfilled[0][2]  # the window's own time: the end of the first day after the reference
    assert first_end.replace(tzinfo=first_end.tzinfo or timezone.utc) == datetime(2026, 1, 11, tzinfo=timezone.utc)
    states = [window[4] for window in backfilled]
    assert "drift" in states and states[:11] == ["ok"] * 11, states  # the shift starts on day 21 (row 3000)
    assert "against reference version 1 (stored from the first 1296 rows)" in result.stdout
    assert "18/18 windows (100%)" in result.stderr


def test_every_row_of_the_file_is_accounted_for(tmp_path: Path) -> None:
    write_csv(tmp_path / "past.csv", past(3000))
    config = write_config(tmp_path, monitor("m", tmp_path / "empty", window={"rows": 400}))
    result = CliRunner().invoke(main, ["backfill", "-c", str(config), "m", "--from", str(tmp_path / "past.csv"),
                                       "--reference-rows", "1000"])
    assert result.exit_code == 0, result.output
    line = re.search(r"rows: (\d+) in the file = (\d+) reference \+ (\d+) in windows \+ (\d+) after", result.stdout)
    assert line is not None, result.stdout
    assert [int(x) for x in line.groups()] == [3000, 1000, 2000, 0]
    assert "backfilled 5 window(s) (2000 rows)" in result.stdout


def test_the_live_cursor_is_untouched_and_the_daemon_continues_the_numbering(tmp_path: Path) -> None:
    write_csv(tmp_path / "past.csv", past(2000))
    write_csv(tmp_path / "live" / "part.csv", sample_table(1000, seed=9))
    config = write_config(tmp_path, monitor("m", tmp_path / "live", window={"rows": 500}))
    runner = CliRunner()
    assert runner.invoke(main, ["backfill", "-c", str(config), "m", "--from", str(tmp_path / "past.csv"),
                                "--reference-rows", "1000"]).exit_code == 0
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    progress = store.load_progress(store.monitor_id("m"), recent=0)
    assert progress.position is None and progress.pending is None, "the source's cursor is the daemon's alone"
    assert [w.seq for w in store.windows("m")] == [2, 1]
    assert runner.invoke(main, ["check", "-c", str(config)]).exit_code in (0, 1)
    assert sorted(w.seq for w in store.windows("m")) == [1, 2, 3, 4]
    assert store.count_rows("m") == 2000


def test_no_adaptation_is_queued_for_the_past(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from monitor.store.schema import Adaptation, DriftEvent

    write_csv(tmp_path / "past.csv", past(4000, shift_after=2000))
    config = write_config(tmp_path, monitor("m", tmp_path / "empty", window={"rows": 250},
                                            adaptation={"adapters": ["rebaseline"]}))
    result = CliRunner().invoke(main, ["backfill", "-c", str(config), "m", "--from", str(tmp_path / "past.csv"),
                                       "--reference-rows", "1000"])
    assert result.exit_code == 0, result.output
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(DriftEvent)) >= 1
        assert connection.scalar(select(func.count()).select_from(Adaptation)) == 0


@pytest.mark.parametrize(("args", "fragment"), [
    (["--reference-rows", "100", "--reference-until", "2026-01-02"],
     "pass one of --reference-rows or --reference-until"),
    (["--reference-rows", "5000"], "the reference would take all 3000 rows"),
    (["--reference-until", "yesterday"], "is not an ISO 8601 time"),
    (["--reference-until", "2025-01-01"], "the reference would hold 0 row(s)"),
    ([], "has no reference for the backfill"),
    (["--reference-rows", "1000", "--timestamp", "nope"], "cuts its windows on 'ts'"),
])
def test_a_bad_split_is_one_clear_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    write_csv(tmp_path / "past.csv", past(3000))
    config = write_config(tmp_path, monitor("m", tmp_path / "empty"))
    result = CliRunner().invoke(main, ["backfill", "-c", str(config), "m", "--from", str(tmp_path / "past.csv"),
                                       *args])
    assert result.exit_code == 2 and fragment in result.stderr, result.output
    assert "Traceback" not in result.output


def test_a_monitor_with_history_or_a_running_daemon_is_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "past.csv", past(3000))
    config = write_config(tmp_path, monitor("m", tmp_path / "empty", window={"rows": 500}))
    args = ["backfill", "-c", str(config), "m", "--from", str(tmp_path / "past.csv"), "--reference-rows", "1000"]
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    store.prepare()
    held = lock_sqlite(store)  # what a running daemon holds
    try:
        running = CliRunner().invoke(main, args)
        assert running.exit_code == 2 and "another driftd process is using" in running.stderr
    finally:
        assert held is not None
        held.close()
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "already has 4 window(s)" in again.stderr
    assert [r.version for r in store.references("m")] == [1], "a refused backfill stores no reference"


@pytest.mark.postgres
def test_on_postgresql_the_backfill_takes_the_monitors_lease_and_hands_it_back(tmp_path: Path,
                                                                                 postgres_url: str) -> None:
    from monitor.store.migrate import upgrade

    write_csv(tmp_path / "past.csv", past(3000))
    (tmp_path / "empty").mkdir()
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": postgres_url}, "monitors": [
        monitor("m", tmp_path / "empty", window={"rows": 500})]}))
    store = Store(postgres_url)
    upgrade(store.engine)
    args = ["backfill", "-c", str(path), "m", "--from", str(tmp_path / "past.csv"), "--reference-rows", "1000"]
    monitor_id = store.monitor_id("m")
    assert store.acquire_lease(monitor_id, "replica-a", 60), "a running replica evaluates it"
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "is evaluated by a running replica now" in refused.stderr
    store.release_leases("replica-a")
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert [w.seq for w in store.windows("m")] == [4, 3, 2, 1]
    assert store.lease_owners().get("m") is None, "the backfill handed the lease back"
    assert [r.version for r in store.references("m")] == [1], "the refused backfill stored no reference"
