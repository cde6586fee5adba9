"""The central promise: SIGKILL at any moment loses no row and counts none twice."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import query, wait_for, write_config

pytestmark = pytest.mark.slow

FILES, ROWS_PER_FILE, WINDOW_ROWS, MAX_ROWS = 12, 1000, 500, 700
APPENDED_ROWS = 1250  # not a multiple of the window: some rows stay pending at the end


def write_csv(path: Path, rows: int, seed: int, first_id: int = 0) -> None:
    """``id, a, b, c`` rows, written beside and renamed into place so no reader sees half a file."""
    rng = random.Random(seed)
    lines = ["id,a,b,c"]
    lines += [f"{first_id + i},{rng.gauss(0, 1):.6f},{rng.gauss(5, 2):.6f},{rng.choice('xyz')}"
              for i in range(rows)]
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, path)


def committed(db: Path) -> tuple[int, int, int]:
    """(windows, rows in windows, pending rows in the cursor) of the monitor ``orders``."""
    [(count, rows)] = query(db, "SELECT count(*), coalesce(sum(w.rows), 0) FROM windows w "
                                "JOIN monitors m ON m.id = w.monitor_id WHERE m.name = 'orders'") or [(0, 0)]
    pending = query(db, "SELECT c.pending_rows FROM cursors c JOIN monitors m ON m.id = c.monitor_id "
                        "WHERE m.name = 'orders'")
    return count, rows, pending[0][0] if pending else 0


def test_sigkill_and_restart_count_every_row_exactly_once(tmp_path: Path, driftd_process) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(FILES):
        write_csv(data / f"part-{index:02d}.csv", ROWS_PER_FILE, seed=index, first_id=index * ROWS_PER_FILE)
    write_csv(tmp_path / "ref.csv", 3000, seed=999)
    total = FILES * ROWS_PER_FILE
    daemon = driftd_process(["--config", "driftd.yaml"])
    write_config(tmp_path / "driftd.yaml", port=daemon.port, monitors=[{
        "name": "orders",
        "source": {"type": "files", "options": {"path": "data/*.csv"}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "window": {"rows": WINDOW_ROWS},
        "max_rows": MAX_ROWS,
        "schedule": {"interval": "0.2s"},
        "reference": {"path": "ref.csv"},
        "measures": ["ks", "psi", "chi_square"],
    }])
    db = tmp_path / "driftd.db"

    # Kill at three different points of the backlog (the windows are 24 in all), and at different
    # moments of the 0.2 s tick: right after a commit, and part-way to the next one.
    for kill_at, delay in ((3, 0.0), (9, 0.09), (16, 0.27)):
        daemon.start()
        wait_for(lambda: committed(db)[0] >= kill_at, 30, interval=0.02,
                 message=f"{kill_at} committed windows", process=daemon)
        time.sleep(delay)
        daemon.signal(signal.SIGKILL)
        assert daemon.proc.wait(10) == -signal.SIGKILL
        windows, rows, pending = committed(db)
        assert windows < total // WINDOW_ROWS, "killed too late: every window was already committed"
        assert rows + pending <= total
        print(f"killed after {windows} windows, {pending} pending rows")

    # Restart, and let new data arrive while it runs.
    daemon.start()
    daemon.wait_log("running 1 monitor(s)")
    write_csv(data / f"part-{FILES:02d}.csv", APPENDED_ROWS, seed=FILES, first_id=total)
    total += APPENDED_ROWS
    expected_windows = total // WINDOW_ROWS
    wait_for(lambda: committed(db)[1] == expected_windows * WINDOW_ROWS, 40,
             message=f"{expected_windows} windows", process=daemon)
    assert daemon.terminate() == 0, daemon.log()

    windows, rows, pending = committed(db)
    assert rows == expected_windows * WINDOW_ROWS
    assert rows + pending == total
    seqs = [seq for (seq,) in query(db, "SELECT w.seq FROM windows w JOIN monitors m ON m.id = w.monitor_id "
                                        "WHERE m.name = 'orders' ORDER BY w.seq")]
    assert seqs == list(range(1, expected_windows + 1))
    assert all(count == WINDOW_ROWS for (count,) in query(db, "SELECT rows FROM windows"))
    # every window has its results (committed with it, never without them)
    assert query(db, "SELECT count(*) FROM windows w WHERE NOT EXISTS "
                     "(SELECT 1 FROM results r WHERE r.window_id = w.id)") == [(0,)]
    assert query(db, "SELECT count(*) FROM reference_versions") == [(1,)]
    logs = daemon.all_logs()
    assert "Traceback" not in logs, logs
