"""Where a monitor's memory goes: the daemon with N monitors after their references and a window each.

    nice -n 10 .venv/bin/python benchmarks/memory_per_monitor.py --monitors 100 300 1000 [--tracemalloc]

Each N runs in a fresh process: the daemon as ``driftd run`` builds it (SQLite in a scratch
folder, the ``paced`` source of ``benchmarks/scale.py``: ``--window-rows`` rows of
``--features`` standard-normal columns per window, KS and PSI), prepared, then two rounds of
``Daemon.tick_all()`` on the scheduler's thread pool (the first stores each monitor's reference
and evaluates one window, the second another window). Then it reports the resident memory
(``/proc/self/status``), what glibc's heap holds in use and free (``mallinfo2``), the resident
memory after ``malloc_trim(0)`` (freed memory the allocator had not returned), and with
``--tracemalloc`` the 15 biggest allocation sites still alive. One JSON line per N; the slope
between the Ns is the memory per monitor.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(float(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def _heap() -> dict[str, float]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {"heap_in_use_mib": round((info.uordblks + info.hblkhd) / 2**20, 1),
            "heap_free_mib": round(info.fordblks / 2**20, 1), "mmapped_mib": round(info.hblkhd / 2**20, 1)}


def measure(args: argparse.Namespace, monitors: int) -> dict[str, object]:
    """One N in this process."""
    import tracemalloc

    import yaml

    import scale
    from monitor.config import load_config
    from monitor.daemon import Daemon
    from monitor.daemon.allocator import tune_allocator
    from monitor.plugins import PluginManager

    if args.tracemalloc:
        tracemalloc.start(args.frames)
    workdir = Path(tempfile.mkdtemp(prefix="driftd-mem-"))
    options = SimpleNamespace(features=args.features, window_rows=args.window_rows, period=3600.0, monitors=monitors,
                              measures="ks,psi", lease=None, reference_cache_mib=None)
    start = time.time() - 3600.0 * (args.windows + 0.5)  # the source holds 1 + windows windows: reference, windows
    config = scale._config(options, f"sqlite:///{workdir / 'driftd.db'}", start, 0)
    if args.reference_cache_mib is not None:
        config["storage"]["reference_cache_mib"] = args.reference_cache_mib
    config["monitors"] = [dict(m, max_rows=(args.windows + 1) * args.window_rows) for m in config["monitors"]]
    path = workdir / "driftd.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    if not args.default_allocator:
        tune_allocator()  # as `driftd run` does
    plugins = PluginManager(load_entry_points=False)
    plugins.register(scale, "scale-paced")
    before = _rss_mib()
    daemon = Daemon(load_config(str(path)), plugins)
    daemon.prepare()
    built = _rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=daemon._scheduler_workers) as pool:  # the scheduler's pool size
        for _ in range(2):
            list(pool.map(lambda runner: runner.tick(), daemon.runners.values()))
    ticked, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.collect()
    windows = sum(1 for _ in daemon.store.engine.connect().exec_driver_sql("select 1 from windows"))
    result: dict[str, object] = {
        "monitors": monitors, "features": args.features, "window_rows": args.window_rows, "windows_in_db": windows,
        "rss_before_daemon_mib": round(before, 1), "rss_built_mib": round(built, 1), "rss_mib": round(_rss_mib(), 1),
        **_heap(), "tick_seconds": round(ticked, 1), "tick_cpu_seconds": round(cpu, 1),
        "threads": len(os.listdir("/proc/self/task")), "allocator": "glibc default" if args.default_allocator else
        "tuned (mmap threshold 64 KiB)", "summaries_kept": daemon.summaries.held,
        "summaries_kept_mib": round(daemon.summaries.used / 2**20, 1),
        "reference_cache_mib": daemon.config.storage.reference_cache_mib, "load": round(os.getloadavg()[0], 2)}
    if args.tracemalloc:
        snapshot = tracemalloc.take_snapshot()
        result["traced_mib"] = round(sum(s.size for s in snapshot.statistics("filename")) / 2**20, 1)
        result["top"] = [{"mib": round(s.size / 2**20, 2), "count": s.count,
                          "where": " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in s.traceback)}
                         for s in snapshot.statistics("traceback")[:15]]
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    result["rss_after_malloc_trim_mib"] = round(_rss_mib(), 1)
    daemon.store.close()
    return result


def main() -> None:
    """Each N in a child process; one JSON line each, then the per-monitor slope."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--window-rows", type=int, default=10_000)
    parser.add_argument("--windows", type=int, default=1, help="windows each monitor finds after its reference")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--default-allocator", action="store_true", help="leave glibc's mmap threshold dynamic")
    parser.add_argument("--reference-cache-mib", type=int, help="storage.reference_cache_mib (default: driftd's)")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args, args.child)), flush=True)
        return
    rows = []
    for monitors in args.monitors:
        command = [sys.executable, __file__, "--child", str(monitors), "--features", str(args.features),
                   "--window-rows", str(args.window_rows), "--windows", str(args.windows), "--frames", str(args.frames)]
        command += ["--tracemalloc"] if args.tracemalloc else []
        command += ["--default-allocator"] if args.default_allocator else []
        if args.reference_cache_mib is not None:
            command += ["--reference-cache-mib", str(args.reference_cache_mib)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        span = last["monitors"] - first["monitors"]
        print(json.dumps({"per_monitor_mib": {key: round((last[key] - first[key]) / span, 3) for key in
                                              ("rss_mib", "heap_in_use_mib", "rss_after_malloc_trim_mib")}}))


if __name__ == "__main__":
    main()
