"""The daemon end to end over a files backlog, against a single-process floor that reads and sorts the same files.

    nice -n 10 .venv/bin/python benchmarks/daemon_e2e.py                 # 5M rows in 50 Parquet files
    nice -n 10 .venv/bin/python benchmarks/daemon_e2e.py --rows 200000 --files 4 --window-rows 50000   # a smoke run
    nice -n 10 .venv/bin/py-spy record -r 50 --format raw -o /tmp/e2e.txt -- \\
        .venv/bin/python benchmarks/daemon_e2e.py --driftd-only           # then --top /tmp/e2e.txt

Data (seeded, written once under ``benchmarks/.data/e2e-*``): ``--files`` Parquet files of
``--numeric`` float64 and ``--categorical`` text columns (a reference file of one window's rows
beside them, outside the watched folder).

* **floor** — one process: ``pyarrow.parquet.read_table`` of every file, ``np.sort`` of each numeric
  column and ``value_counts`` of each categorical one: what any exact KS over these rows must do.
* **driftd** — one ``files`` monitor (KS + PSI, ``--window-rows``-row windows, SQLite) driven through
  ``MonitorRunner.tick`` until the backlog is drained: the daemon's own read → window → evaluate →
  commit path (each window, its results and the cursor committed to SQLite), without the scheduler's
  waits between ticks. The reference summary is built before the clock starts.

Prints one JSON line per side (rows/s, wall and CPU seconds) and driftd's share of the floor's rows/s;
writes both to ``benchmarks/results/daemon_e2e.json``.
``--top FILE`` reads a py-spy ``--format raw`` profile and prints the five functions with the most
samples of their own (the frame on top of the stack).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
from benchmarks.common import py_spy_top  # noqa: E402


def _columns(rng: np.random.Generator, rows: int, numeric: int, categorical: int) -> dict[str, pa.Array]:
    columns: dict[str, pa.Array] = {f"num_{i:02d}": pa.array(rng.normal(i * 0.1, 1 + i * 0.05, rows))
                                    for i in range(numeric)}
    for i in range(categorical):
        codes = rng.integers(0, 4 + 3 * i, rows)
        columns[f"cat_{i}"] = pa.array(np.char.add("v", codes.astype(str)))
    return columns


def write_data(rows: int, files: int, numeric: int, categorical: int, window_rows: int) -> tuple[Path, Path]:
    """The data folder and the reference file (written once per shape)."""
    root = BENCH_DIR / ".data" / f"e2e-{rows}-{files}-{numeric}-{categorical}"
    data, reference = root / "data", root / "reference.parquet"
    if not (root / "done").exists():
        data.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(20261204)
        pq.write_table(pa.table(_columns(rng, window_rows, numeric, categorical)), reference)
        per_file = rows // files
        for k in range(files):
            pq.write_table(pa.table(_columns(rng, per_file, numeric, categorical)), data / f"part-{k:03d}.parquet")
        (root / "done").write_text("")
    return data, reference


def floor(data: Path, numeric: list[str], categorical: list[str]) -> dict[str, float]:
    """Read every file with pyarrow, sort each numeric column, count each categorical one."""
    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for path in sorted(data.glob("*.parquet")):
        table = pq.read_table(path)
        rows += table.num_rows
        for name in numeric:
            np.sort(table.column(name).to_numpy())
        for name in categorical:
            pc.value_counts(table.column(name))
    wall = time.perf_counter() - started
    return {"side": "floor", "rows": rows, "seconds": round(wall, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3), "rows_per_second": round(rows / wall)}


def driftd(data: Path, reference: Path, numeric: list[str], categorical: list[str], window_rows: int,
           max_rows: int) -> dict[str, float]:
    """Drain the backlog through one monitor's ticks on SQLite."""
    from monitor.config import build_config
    from monitor.daemon.engine import MonitorRunner
    from monitor.metrics import Metrics
    from monitor.plugins import PluginManager
    from monitor.store import Store
    from monitor.store.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="driftd-e2e-"))
    config = build_config({"monitors": [{
        "name": "e2e", "source": {"type": "files", "options": {"path": str(data), "format": "parquet"}},
        "features": {"numeric": numeric, "categorical": categorical},
        "window": {"rows": window_rows}, "max_rows": max_rows,
        "reference": {"path": str(reference)}, "measures": ["ks", "psi"],
    }]}, "bench", environ={}).monitors[0]
    store = Store(f"sqlite:///{work / 'driftd.db'}")
    upgrade(store.engine)
    runner = MonitorRunner(config, store, PluginManager(load_entry_points=False), Metrics())
    runner._load()  # noqa: SLF001 - reference summary and state before the clock starts
    runner._refresh_reference()  # noqa: SLF001
    started, cpu = time.perf_counter(), time.process_time()
    rows = windows = 0
    while True:
        report = runner.tick()
        rows += sum(window.rows for window in report.windows)
        windows += len(report.windows)
        if report.rows_fetched == 0:
            break
    wall = time.perf_counter() - started
    return {"side": "driftd", "rows": rows, "windows": windows, "seconds": round(wall, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3), "rows_per_second": round(rows / wall)}


def top(path: Path, count: int = 5) -> list[tuple[str, float]]:
    """The functions with the most samples on top of the stack in a py-spy raw profile, as shares.

    Only the ticks count: stacks under ``MonitorRunner.tick`` and those of the measure pool's threads
    at work (imports, the untimed reference summary, and pool threads waiting for work are left out).
    """
    def counted(frames: list[str]) -> bool:
        ticking = any(frame.startswith("MonitorRunner.tick (") for frame in frames)
        return ticking or (frames[0].startswith("Thread._bootstrap (") and not frames[-1].startswith("_worker ("))

    return py_spy_top(path, counted, lambda frames: re.sub(r":\d+\)$", ")", frames[-1]), count)


def main() -> None:
    """Run the floor and driftd over the same backlog and print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--numeric", type=int, default=20)
    parser.add_argument("--categorical", type=int, default=5)
    parser.add_argument("--window-rows", type=int, default=100_000)
    parser.add_argument("--max-rows", type=int, default=500_000, help="rows fetched per tick at most")
    parser.add_argument("--driftd-only", action="store_true", help="skip the floor (for a profile of driftd)")
    parser.add_argument("--top", type=Path, help="print the top five of a py-spy raw profile and exit")
    args = parser.parse_args()
    if args.top:
        for frame, share in top(args.top):
            print(f"{share:6.1%}  {frame}")
        return
    logging.basicConfig(level=logging.WARNING)
    numeric = [f"num_{i:02d}" for i in range(args.numeric)]
    categorical = [f"cat_{i}" for i in range(args.categorical)]
    data, reference = write_data(args.rows, args.files, args.numeric, args.categorical, args.window_rows)
    results = []
    if not args.driftd_only:
        results.append(floor(data, numeric, categorical))
        print(json.dumps(results[-1]), flush=True)
    results.append(driftd(data, reference, numeric, categorical, args.window_rows, args.max_rows))
    print(json.dumps(results[-1]), flush=True)
    if len(results) == 2:
        (BENCH_DIR / "results").mkdir(exist_ok=True)
        (BENCH_DIR / "results" / "daemon_e2e.json").write_text(json.dumps(
            {"taken": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_avg": os.getloadavg()[0],
             "arguments": vars(args) | {"top": None}, "records": results}, indent=1, default=str) + "\n")
        share = results[1]["rows_per_second"] / results[0]["rows_per_second"]
        print(f"driftd {results[1]['rows_per_second']:,} rows/s = {share:.0%} of the floor's "
              f"{results[0]['rows_per_second']:,} rows/s (target >= 50%)")


if __name__ == "__main__":
    main()
