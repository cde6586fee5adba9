"""Scaling curves: ``compare()`` and the per-feature scipy loop as rows and features grow, with peak memory.

    nice -n 10 .venv/bin/python benchmarks/scaling.py                         # the grid below
    nice -n 10 .venv/bin/python benchmarks/scaling.py --rows 10000 --features 10 --side compare   # one point

Grid: rows 10k, 100k, 1M per side at 10 features, then features 10, 100, 1,000 at 10k rows per side.
A tenth of the features (at least one) are categorical (8 categories), the rest numeric (normal,
every other one shifted by 0.05 sd in the window); the five case-1 measures (KS, PSI,
Jensen–Shannon, Wasserstein, chi-square). Each point runs in a fresh process per side: the data are
generated untimed as pyarrow tables (for ``compare``) and numpy arrays (for the loop, which starts
from arrays the way ``benchmarks/runners/scipy_loop.py`` does), then one timed call after a warm-up
on a tenth of the rows. ``peak_mib`` is the process's peak resident memory (``VmHWM``) reset just
before the timed call, so it covers the data plus what the call adds. Results go to
``benchmarks/results/scaling.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

ROW_GRID = [(10_000, 10), (100_000, 10), (1_000_000, 10)]
FEATURE_GRID = [(10_000, 100), (10_000, 1_000)]
MEASURES = ["ks", "psi", "jensen_shannon", "wasserstein", "chi_square"]


def tables(rows: int, features: int, seed: int = 7) -> tuple[pa.Table, pa.Table, list[str], list[str]]:
    """Reference and window tables, and the numeric and categorical names."""
    rng = np.random.default_rng(seed)
    categorical = [f"c{i}" for i in range(max(1, features // 10))]
    numeric = [f"x{i}" for i in range(features - len(categorical))]
    sides = []
    for shift in (0.0, 0.05):
        columns: dict[str, pa.Array] = {name: pa.array(rng.normal(shift * (i % 2), 1.0, rows))
                                        for i, name in enumerate(numeric)}
        for name in categorical:
            columns[name] = pa.array(np.char.add("k", rng.integers(0, 8, rows).astype(str)))
        sides.append(pa.table(columns))
    return sides[0], sides[1], numeric, categorical


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(float(line.split()[1]) / 1024, 1)
    return float("nan")


def one(side: str, rows: int, features: int) -> dict[str, object]:
    """Time one side at one point in this process."""
    reference, window, numeric, categorical = tables(rows, features)
    if side == "compare":
        from monitor.compare import compare

        def run(ref: pa.Table, win: pa.Table) -> object:
            return compare(ref, win, MEASURES, numeric=numeric, categorical=categorical)
    else:
        from benchmarks.runners.scipy_loop import all_measures

        def arrays(table: pa.Table) -> list[tuple[str, np.ndarray]]:
            return ([("numeric", table.column(name).to_numpy()) for name in numeric]
                    + [("categorical", np.asarray(table.column(name).to_pylist(), dtype=object))
                       for name in categorical])

        ref_arrays, win_arrays = arrays(reference), arrays(window)

        def run(ref: object, win: object) -> object:
            return [all_measures(kind, r, w) for (kind, r), (_, w) in zip(ref, win)]  # type: ignore[arg-type]

        reference, window = ref_arrays, win_arrays  # type: ignore[assignment]
    tenth = max(rows // 10, 100)
    warm = ((reference.slice(0, tenth), window.slice(0, tenth)) if side == "compare"  # type: ignore[union-attr]
            else ([(k, v[:tenth]) for k, v in reference], [(k, v[:tenth]) for k, v in window]))
    run(*warm)
    _reset_peak()
    started, cpu = time.perf_counter(), time.process_time()
    run(reference, window)
    return {"side": side, "rows": rows, "features": features, "seconds": round(time.perf_counter() - started, 4),
            "cpu_seconds": round(time.process_time() - cpu, 4), "peak_mib": _peak_mib()}


def main() -> None:
    """Run the grid (each point and side in its own process) or one point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int)
    parser.add_argument("--features", type=int)
    parser.add_argument("--side", choices=("compare", "scipy_loop"))
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(one(args.side, args.rows, args.features)), flush=True)
        return
    records = []
    for rows, features in ROW_GRID + FEATURE_GRID:
        for side in ("compare", "scipy_loop"):
            command = [sys.executable, __file__, "--rows", str(rows), "--features", str(features), "--side", side]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=True)
                records.append(json.loads(done.stdout.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                records.append({"side": side, "rows": rows, "features": features, "seconds": None,
                                "notes": f"stopped after {args.timeout} s"})
            print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    (BENCH_DIR / "results" / "scaling.json").write_text(json.dumps(
        {"taken": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "records": records}, indent=1) + "\n")
    print("| rows per side | features | compare() s | scipy loop s | speed-up | compare() peak MiB | loop peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for rows, features in ROW_GRID + FEATURE_GRID:
        ours, loop = (next(r for r in records if r["side"] == side and r["rows"] == rows
                           and r["features"] == features) for side in ("compare", "scipy_loop"))
        speedup = (f"{loop['seconds'] / ours['seconds']:.1f}x" if ours.get("seconds") and loop.get("seconds")
                   else "-")
        print(f"| {rows:,} | {features:,} | {ours.get('seconds')} | {loop.get('seconds')} | {speedup} | "
              f"{ours.get('peak_mib', '-')} | {loop.get('peak_mib', '-')} |")


if __name__ == "__main__":
    main()
