"""Scale: one driftd process with many monitors, then several replicas on one PostgreSQL.

    nice -n 19 .venv/bin/python benchmarks/scale.py --monitors 1000 --features 20 --window-rows 10000 --minutes 10
    nice -n 19 .venv/bin/python benchmarks/scale.py --replicas 3 --monitors 1000 ... --minutes 10

Each driftd runs as its own process (``scale.py serve CONFIG``: the daemon as ``driftd run`` builds
it, plus the ``paced`` connector below registered as a plugin) with the HTTP port on; this script
only watches it from outside: resident memory and CPU from ``/proc/PID``, and ``GET /metrics``
every ``--sample`` seconds (the scrape is timed; windows, rows, scheduler lag, tick and evaluation
times are read from it). One process uses SQLite (``--storage sqlite``, the default with one
replica); several replicas share a scratch PostgreSQL database (created on ``--postgres-admin``
and dropped afterwards). Results go to ``benchmarks/results/scale.json`` under ``--label`` and to
a Markdown table on stdout.

The source is the ``paced`` connector: an in-memory stream that makes ``--window-rows`` new rows
of ``--features`` standard-normal float64 columns available to every monitor once per
``--period`` (60 s: "a window every minute"), sliced from one pre-generated pool per process, so
reading it costs next to nothing and the source is never the bottleneck. A monitor that falls
behind finds more than one window waiting (``max_rows`` is two windows, so it can catch up one
extra window per tick); how far behind the monitors are is reported as the backlog.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

from monitor.connector import Batch, Connector, Cursor  # noqa: E402
from monitor.hookspecs import hookimpl  # noqa: E402

RESULTS = BENCH_DIR / "results" / "scale.json"
POOL_WINDOWS = 5  # distinct windows in the pool each process slices its rows from

# ---- the paced in-memory source ----------------------------------------------------------------

_POOLS: dict[tuple[int, int], pa.Table] = {}
_POOLS_LOCK = threading.Lock()


def _pool(features: int, window_rows: int) -> pa.Table:
    """``POOL_WINDOWS`` windows of standard-normal columns f00, f01, …, made once per process."""
    key = (features, window_rows)
    with _POOLS_LOCK:
        if key not in _POOLS:
            rng = np.random.default_rng(0)
            rows = POOL_WINDOWS * window_rows
            _POOLS[key] = pa.table({f"f{i:02d}": rng.standard_normal(rows) for i in range(features)})
        return _POOLS[key]


class PacedConnector(Connector):
    """``window_rows`` new rows every ``period`` seconds since ``start`` (epoch seconds); cursor = rows read."""

    type_name = "paced"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.features = int(options["features"])
        self.window_rows = int(options["window_rows"])
        self.period = float(options["period"])
        self.start = float(options["start"])
        self.offset = int(options.get("seed", 0)) % POOL_WINDOWS * self.window_rows
        self.pool = _pool(self.features, self.window_rows)

    def available(self, now: float | None = None) -> int:
        """Rows the source has made so far: one window at ``start``, one more every period."""
        elapsed = (time.time() if now is None else now) - self.start
        return self.window_rows * (int(elapsed // self.period) + 1) if elapsed >= 0 else 0

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        read = int(cursor or 0)
        count = max(0, min(self.available() - read, max_rows))
        if count == 0:
            return Batch(self.pool.slice(0, 0), read)
        size = self.pool.num_rows
        first = (self.offset + read) % size
        parts = [self.pool.slice(first, min(count, size - first))]
        while sum(part.num_rows for part in parts) < count:
            parts.append(self.pool.slice(0, min(size, count - sum(part.num_rows for part in parts))))
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        return Batch(table, read + count)


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``paced`` connector."""
    return {"paced": PacedConnector}


# ---- the daemon process ----------------------------------------------------------------------


def serve(config_path: str, workers: int = 1) -> None:
    """Run one driftd as a worker of ``driftd run -c CONFIG --workers WORKERS`` does (its share of
    ``storage.reference_cache_mib``), with the ``paced`` connector registered."""
    from monitor.cli.workers import worker_config
    from monitor.config import load_config
    from monitor.daemon import Daemon
    from monitor.http.face import HttpFace
    from monitor.logs import setup_logging
    from monitor.plugins import PluginManager

    config = worker_config(load_config(config_path), 0, workers)  # each replica's config has its own port
    setup_logging(config.logging.level)
    plugins = PluginManager(load_entry_points=False)
    plugins.register(sys.modules[__name__], "scale-paced")
    daemon = Daemon(config, plugins)
    HttpFace.attach(daemon)  # the HTTP port, as ``driftd run`` attaches it (without it /readyz never answers)
    daemon.run_forever()


# ---- the harness -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(args: argparse.Namespace, url: str, start: float, port: int) -> dict[str, Any]:
    features = [f"f{i:02d}" for i in range(args.features)]
    monitors = [{
        "name": f"m{index:04d}",
        "source": {"type": "paced", "options": {"features": args.features, "window_rows": args.window_rows,
                                                 "period": args.period, "start": start, "seed": index}},
        "features": {"numeric": features},
        "window": {"rows": args.window_rows},
        "reference": {"first_rows": args.window_rows},
        "schedule": {"interval": args.period},
        "max_rows": 2 * args.window_rows,
        "measures": args.measures.split(","),
    } for index in range(args.monitors)]
    storage: dict[str, Any] = {"url": url}
    if args.lease:
        storage["lease"] = args.lease
    if args.reference_cache_mib is not None:
        storage["reference_cache_mib"] = args.reference_cache_mib
    return {"storage": storage, "server": {"host": "127.0.0.1", "port": port},
            "logging": {"level": "WARNING"}, "metrics": {"max_features": max(100, args.features)},
            "monitors": monitors}


def _proc_stats(pid: int) -> tuple[float, float, float]:
    """(resident MiB, peak resident MiB, CPU seconds) of a process."""
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = float(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = float(line.split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, hwm, (int(fields[11]) + int(fields[12])) / ticks


_WANTED = ("driftd_windows_total", "driftd_rows_total", "driftd_scheduler_lag_seconds_bucket",
           "driftd_tick_duration_seconds_bucket", "driftd_tick_duration_seconds_sum",
           "driftd_tick_duration_seconds_count", "driftd_evaluation_duration_seconds_sum",
           "driftd_evaluation_duration_seconds_count", "driftd_lease_held", "driftd_last_window_timestamp_seconds",
           "driftd_reference_version")


def _parse(text: str) -> dict[str, Any]:
    """The few series the report needs, summed over monitors where that makes sense."""
    out: dict[str, Any] = {"windows": 0.0, "rows": {}, "lag": {}, "tick": {}, "tick_sum": 0.0, "tick_count": 0.0,
                           "eval_sum": 0.0, "eval_count": 0.0, "held": 0, "last_window": {}, "referenced": set()}
    for line in text.splitlines():
        if not line.startswith(_WANTED):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        number = float(value)
        monitor = labels.split('monitor="', 1)[1].split('"', 1)[0] if 'monitor="' in labels else ""
        if name == "driftd_windows_total":
            out["windows"] += number
        elif name == "driftd_rows_total":
            out["rows"][monitor] = number
        elif name.endswith("_bucket"):
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            key = "lag" if name.startswith("driftd_scheduler_lag") else "tick"
            out[key][le] = out[key].get(le, 0.0) + number
        elif name == "driftd_tick_duration_seconds_sum":
            out["tick_sum"] += number
        elif name == "driftd_tick_duration_seconds_count":
            out["tick_count"] += number
        elif name == "driftd_evaluation_duration_seconds_sum":
            out["eval_sum"] += number
        elif name == "driftd_evaluation_duration_seconds_count":
            out["eval_count"] += number
        elif name == "driftd_lease_held":
            out["held"] += int(number)
        elif name == "driftd_last_window_timestamp_seconds":
            out["last_window"][monitor] = number
        elif name == "driftd_reference_version":
            out["referenced"].add(monitor)
    return out


def _quantile(buckets: dict[str, float], q: float) -> float | None:
    """histogram_quantile over cumulative buckets {le: count}, linear within a bucket."""
    edges = sorted(((math.inf if le == "+Inf" else float(le)), count) for le, count in buckets.items())
    if not edges or edges[-1][1] <= 0:
        return None
    rank, previous_edge, previous_count = q * edges[-1][1], 0.0, 0.0
    for edge, count in edges:
        if count >= rank:
            if math.isinf(edge):
                return previous_edge  # beyond the largest finite bucket: report its bound (a lower bound)
            width = count - previous_count
            return previous_edge + (edge - previous_edge) * ((rank - previous_count) / width if width else 1.0)
        previous_edge, previous_count = edge, count
    return previous_edge


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def _percentiles(values: list[float], *qs: float) -> list[float | None]:
    if not values:
        return [None for _ in qs]
    ordered = np.sort(np.asarray(values))
    return [float(np.quantile(ordered, q)) for q in qs]


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points."""
    if len(points) < 3:
        return None
    x, y = np.asarray(points).T
    return float(np.polyfit(x, y, 1)[0])


class Replica:
    """One driftd process under watch."""

    def __init__(self, index: int, config: Path, port: int, workdir: Path, count: int = 1) -> None:
        self.index, self.port = index, port
        self.log_path = workdir / f"replica-{index}.log"
        log = open(self.log_path, "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve", str(config), str(count)],
                                     cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                                     "PYTHONUNBUFFERED": "1"})
        log.close()

    def get(self, path: str, timeout: float = 120) -> tuple[float, str]:
        import httpx

        started = time.perf_counter()
        response = httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=timeout)
        return time.perf_counter() - started, response.text

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if json.loads(self.get("/readyz", timeout=5)[1]).get("ready"):
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(1)
        raise RuntimeError(f"replica {self.index} not ready after {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def skipped_runs(self) -> int:
        return self.log_path.read_text(errors="replace").count("maximum number of running instances reached")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the replicas, watch them for the run's length, stop them and summarise."""
    postgres = args.storage == "postgres"
    workdir = Path(tempfile.mkdtemp(prefix="driftd-scale-"))
    admin = None
    if postgres:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from monitor.store.migrate import upgrade
        from monitor.store import Store

        database = f"driftd_scale_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.postgres_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        url = make_url(args.postgres_admin).set(database=database).render_as_string(hide_password=False)
        store = Store(url)
        upgrade(store.engine)
        store.close()
    else:
        url = f"sqlite:///{workdir / 'driftd.db'}"
    replicas: list[Replica] = []
    samples: list[dict[str, Any]] = []
    start = time.time()
    try:
        for index in range(args.replicas):
            path = workdir / f"driftd-{index}.yaml"
            import yaml

            port = _free_port()
            path.write_text(yaml.safe_dump(_config(args, url, start, port)), encoding="utf-8")
            replicas.append(Replica(index, path, port, workdir, args.replicas))
        for replica in replicas:
            replica.wait_ready(timeout=600)
        ready = time.time()
        print(f"ready after {ready - start:.1f}s; running {args.duration:.0f}s", file=sys.stderr, flush=True)
        deadline = ready + args.duration
        while True:
            now = time.time()
            samples.append(_sample(replicas, now - ready))
            last = samples[-1]
            last["backlog_p99"] = _round(_percentiles(_backlog(last, args, start), 0.99)[0], 2)
            print(f"  t={last['t']:6.0f}s windows={last['windows']:8.0f} rss={last['rss_mib']} "
                  f"scrape={last['scrape_s']} backlog p99={last['backlog_p99']}", file=sys.stderr, flush=True)
            if now >= deadline:
                break
            time.sleep(max(0.0, min(args.sample, deadline - time.time())))
    finally:
        for replica in replicas:
            replica.stop()
    stopped = time.time()
    verification = _verify(url, args, start, stopped) if replicas else {}
    skipped = [replica.skipped_runs() for replica in replicas]
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if admin is not None:
        from sqlalchemy import text

        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
    return _summary(args, samples, skipped, verification, start, ready)


def _sample(replicas: list[Replica], t: float) -> dict[str, Any]:
    """Memory, CPU and the scrape of every replica at one moment."""
    record: dict[str, Any] = {"t": round(t, 1), "rss_mib": [], "hwm_mib": [], "cpu_s": [], "scrape_s": [],
                              "scrape_bytes": [], "held": []}
    windows, lag, tick = 0.0, {}, {}
    tick_sum = tick_count = eval_sum = eval_count = 0.0
    rows: dict[str, float] = {}
    last_window: dict[str, float] = {}
    referenced: set[str] = set()
    for replica in replicas:
        rss, hwm, cpu = _proc_stats(replica.proc.pid)
        seconds, text = replica.get("/metrics")
        parsed = _parse(text)
        record["rss_mib"].append(round(rss, 1))
        record["hwm_mib"].append(round(hwm, 1))
        record["cpu_s"].append(round(cpu, 1))
        record["scrape_s"].append(round(seconds, 3))
        record["scrape_bytes"].append(len(text))
        record["held"].append(parsed["held"])
        windows += parsed["windows"]
        for le, count in parsed["lag"].items():
            lag[le] = lag.get(le, 0.0) + count
        for le, count in parsed["tick"].items():
            tick[le] = tick.get(le, 0.0) + count
        tick_sum += parsed["tick_sum"]
        tick_count += parsed["tick_count"]
        eval_sum += parsed["eval_sum"]
        eval_count += parsed["eval_count"]
        for monitor, count in parsed["rows"].items():
            rows[monitor] = rows.get(monitor, 0.0) + count
        referenced |= parsed["referenced"]
        for monitor, stamp in parsed["last_window"].items():
            last_window[monitor] = max(stamp, last_window.get(monitor, 0.0))
    record.update(windows=windows, rows=sum(rows.values()), lag=lag, tick=tick, tick_sum=tick_sum,
                  tick_count=tick_count, eval_sum=eval_sum, eval_count=eval_count)
    record["referenced"] = len(referenced)
    record["_rows"] = rows
    record["_last_window"] = last_window
    record["wall"] = time.time()
    return record


def _verify(url: str, args: argparse.Namespace, start: float, stopped: float) -> dict[str, Any]:
    """Windows and rows in the database against what the source released.

    Windows: how many, and none evaluated twice or skipped (seqs 1..n per monitor). Rows, per
    monitor: those read (the committed cursor) must equal the reference's rows + the rows in
    windows + the pending rows (nothing counted twice or dropped), and the source's backlog is
    what it had released when the daemons stopped minus what was read.
    """
    from sqlalchemy import func, select

    from monitor.store import Store
    from monitor.store.schema import Monitor, ReferenceVersion, SourceCursor, Window

    store = Store(url)
    try:
        with store.engine.connect() as connection:
            windows = connection.execute(select(Window.monitor_id, func.count(), func.max(Window.seq),
                                                func.min(Window.seq), func.sum(Window.rows))
                                         .group_by(Window.monitor_id)).all()
            references = dict(connection.execute(select(ReferenceVersion.monitor_id, func.sum(ReferenceVersion.rows))
                                                 .group_by(ReferenceVersion.monitor_id)).all())
            cursors = {monitor_id: (int(position or 0), pending) for monitor_id, position, pending in
                       connection.execute(select(SourceCursor.monitor_id, SourceCursor.position,
                                                 SourceCursor.pending_rows)).all()}
            monitors = [monitor_id for (monitor_id,) in connection.execute(select(Monitor.id)).all()]
    finally:
        store.close()
    gaps = sum(1 for _, count, high, low, _ in windows if not (low == 1 and high == count))
    in_windows = {monitor_id: int(rows or 0) for monitor_id, _, _, _, rows in windows}
    released_each = args.window_rows * (int((stopped - start) // args.period) + 1)
    mismatched = [monitor_id for monitor_id in monitors
                  if cursors.get(monitor_id, (0, 0))[0] != int(references.get(monitor_id) or 0)
                  + in_windows.get(monitor_id, 0) + int(cursors.get(monitor_id, (0, 0))[1] or 0)]
    read = sum(position for position, _ in cursors.values())
    return {"windows_in_db": int(sum(count for _, count, _, _, _ in windows)), "monitors_with_windows": len(windows),
            "monitors_with_gaps_or_duplicates": gaps,
            "rows_released": released_each * args.monitors, "rows_read": read,
            "rows_in_windows": sum(in_windows.values()), "rows_in_references": int(sum(references.values())),
            "rows_pending": int(sum(pending or 0 for _, pending in cursors.values())),
            "monitors_whose_rows_do_not_add_up": len(mismatched),
            "source_backlog_rows_at_stop": released_each * args.monitors - read,
            "source_backlog_windows_per_monitor_at_stop": round((released_each * args.monitors - read)
                                                                / args.window_rows / max(args.monitors, 1), 3)}


def _backlog(sample: dict[str, Any], args: argparse.Namespace, start: float) -> list[float]:
    """Windows each monitor is behind its source at the sample's time."""
    made = args.window_rows * (int((sample["wall"] - start) // args.period) + 1)
    return [(made - args.window_rows - sample["_rows"].get(f"m{index:04d}", 0.0)) / args.window_rows
            for index in range(args.monitors)]


def _summary(args: argparse.Namespace, samples: list[dict[str, Any]], skipped: list[int],
             verification: dict[str, Any], start: float, ready: float) -> dict[str, Any]:
    # Warm-up: at least --warmup seconds, and until every monitor has its reference (the first tick
    # of each monitor only stores it, and that is where the memory goes).
    warm = next((s for s in samples if s["t"] >= args.warmup and s["referenced"] >= args.monitors),
                samples[len(samples) // 2])
    end = samples[-1]
    middle = min(samples, key=lambda s: abs(s["t"] - (warm["t"] + end["t"]) / 2))
    span = max(end["t"] - warm["t"], 1e-9)
    windows_per_s = (end["windows"] - warm["windows"]) / span
    rows_per_s = (end["rows"] - warm["rows"]) / span
    lag = _diff(end["lag"], warm["lag"])
    tick = _diff(end["tick"], warm["tick"])
    ticks = end["tick_count"] - warm["tick_count"]
    evaluations = end["eval_count"] - warm["eval_count"]
    backlog = _backlog(end, args, start)
    stale = [end["wall"] - stamp for stamp in end["_last_window"].values()]
    rss_total = [(s["t"], sum(s["rss_mib"])) for s in samples if s["t"] >= warm["t"]]
    half = [(t, rss) for t, rss in rss_total if t >= (warm["t"] + end["t"]) / 2]
    slope = _slope(rss_total)
    slope_half = _slope(half)
    window_rate = (end["windows"] - warm["windows"]) / span
    cpu = [(e - w) / span for e, w in zip(end["cpu_s"], warm["cpu_s"])]
    scrapes = [s for sample in samples for s in sample["scrape_s"]]
    result = {
        "label": args.label,
        "taken": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": _machine(),
        "command": " ".join(["nice -n", str(os.nice(0)), ".venv/bin/python", "benchmarks/scale.py", *sys.argv[1:]]),
        "load": {"monitors": args.monitors, "features": args.features, "window_rows": args.window_rows,
                 "period_s": args.period, "measures": args.measures, "replicas": args.replicas,
                 "storage": args.storage, "lease_s": args.lease, "reference_cache_mib": args.reference_cache_mib, "source": "paced (in-memory, plugin)",
                 "run_s": round(end["t"], 1), "warmup_s": warm["t"]},
        "demanded": {"windows_per_s": round(args.monitors / args.period, 3),
                     "rows_per_s": round(args.monitors * args.window_rows / args.period, 1)},
        "throughput": {"windows_per_s": round(windows_per_s, 3), "rows_per_s": round(rows_per_s, 1),
                       "kept_up": bool(max(backlog) <= 2)},
        "windows_total": end["windows"],
        "ticks_after_warmup": ticks,
        "tick_seconds_mean": round((end["tick_sum"] - warm["tick_sum"]) / ticks, 4) if ticks else None,
        "tick_seconds_p50_p99": [_round(_quantile(tick, 0.5)), _round(_quantile(tick, 0.99))],
        "evaluation_seconds_mean": round((end["eval_sum"] - warm["eval_sum"]) / evaluations, 4) if evaluations
        else None,
        "scheduler_lag_seconds": {"p50": _round(_quantile(lag, 0.5)), "p99": _round(_quantile(lag, 0.99)),
                                  "observations": sum(v for le, v in lag.items() if le == "+Inf")},
        "skipped_runs": {"total": sum(skipped), "per_replica": skipped,
                         "note": "APScheduler skips a run while the monitor's previous one is still queued or "
                                 "running; those never reach driftd_scheduler_lag_seconds"},
        "backlog_windows_at_end": dict(zip(("p50", "p99", "max"), _percentiles(backlog, 0.5, 0.99, 1.0))),
        "staleness_seconds_at_end": dict(zip(("p50", "p99", "max"), _percentiles(stale, 0.5, 0.99, 1.0))),
        "backlog_p99_over_time": [[s["t"], s["backlog_p99"]] for s in samples],
        "metrics_scrape": {"seconds_p50": _round(float(np.median(scrapes))), "seconds_max": _round(max(scrapes)),
                           "mib": round(max(b for s in samples for b in s["scrape_bytes"]) / 2**20, 2)},
        "cpu_cores_used": [round(c, 2) for c in cpu],
        "rss_mib": {"start": warm["rss_mib"], "middle": middle["rss_mib"], "end": end["rss_mib"],
                    "peak": end["hwm_mib"], "at": [warm["t"], middle["t"], end["t"]],
                    "slope_mib_per_hour": _round(slope * 3600 if slope is not None else None),
                    "slope_second_half_mib_per_hour": _round(slope_half * 3600 if slope_half is not None else None),
                    "slope_mib_per_1000_windows": _round(slope * 1000 / window_rate
                                                         if slope is not None and window_rate else None),
                    "samples": [[s["t"], s["rss_mib"]] for s in samples]},
        "over_time": [{"t": s["t"], "windows": s["windows"], "rows": s["rows"], "rss_mib": s["rss_mib"],
                       "cpu_s": s["cpu_s"], "scrape_s": s["scrape_s"], "backlog_p99": s["backlog_p99"]}
                      for s in samples],
        "leases_held_at_end": end["held"] if args.replicas > 1 else None,
        "leases_held_over_time": [[s["t"], s["held"]] for s in samples] if args.replicas > 1 else None,
        "verification": verification,
    }
    return result


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _machine() -> str:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{platform.machine()}, {os.cpu_count()} cpu ({model}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table of stored runs."""
    lines = ["| run | load | demanded windows/s | windows/s | rows/s | kept up | scheduler lag p50 / p99 | "
             "skipped runs | backlog p99 at end | /metrics scrape | RSS start / mid / end (MiB) | RSS slope |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "rss_mib" not in r:  # a record kept in short form
            continue
        load = r["load"]
        rss = r["rss_mib"]
        lag = r["scheduler_lag_seconds"]
        scrape = r["metrics_scrape"]
        lines.append(
            f"| {r['label']} | {load['monitors']} monitors × {load['features']} features × {load['window_rows']:,} rows "
            f"every {load['period_s']:g}s, {load['replicas']} × {load['storage']} | {r['demanded']['windows_per_s']:g} "
            f"| {r['throughput']['windows_per_s']:.2f} | {r['throughput']['rows_per_s']:,.0f} "
            f"| {'yes' if r['throughput']['kept_up'] else 'no'} | {_s(lag['p50'])} / {_s(lag['p99'])} "
            f"| {r['skipped_runs']['total']} | {_n(r['backlog_windows_at_end']['p99'])} windows "
            f"| {_s(scrape['seconds_p50'])} ({scrape['mib']} MiB) "
            f"| {_mib(rss['start'])} / {_mib(rss['middle'])} / {_mib(rss['end'])} "
            f"| {_n(rss['slope_mib_per_hour'])} MiB/h |")
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else (f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s")


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mib(values: list[float]) -> str:
    return f"{sum(values):.0f}" if len(values) == 1 else "+".join(f"{v:.0f}" for v in values)


def main() -> None:
    if len(sys.argv) in (3, 4) and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 1)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--window-rows", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=60.0, help="seconds between windows (the tick interval)")
    parser.add_argument("--minutes", type=float, default=10.0, help="run length after the daemons are ready")
    parser.add_argument("--ticks", type=int, help="run length as scheduled ticks (monitors × periods); overrides --minutes")
    parser.add_argument("--measures", default="ks,psi", help="the measures the published figures used")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--storage", choices=("sqlite", "postgres"), help="default: sqlite for 1 replica, postgres for more")
    parser.add_argument("--postgres-admin", default=os.environ.get("DRIFTD_TEST_POSTGRES_URL",
                                                                   "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--lease", type=float, help="storage.lease in seconds (default with replicas: 2.5 periods)")
    parser.add_argument("--reference-cache-mib", type=int,
                        help="storage.reference_cache_mib (default: driftd's, 512); as with "
                             "`driftd run --workers N`, each of N replicas gets 1/N of it")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples (and /metrics scrapes)")
    parser.add_argument("--warmup", type=float, help="seconds left out of rates and slopes (default: 2 periods)")
    parser.add_argument("--label", help="the run's name in results/scale.json")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (configs, logs, SQLite file)")
    parser.add_argument("--table", action="store_true", help="print the table of stored runs and exit")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.output.read_text())["runs"]))
        return
    args.storage = args.storage or ("sqlite" if args.replicas == 1 else "postgres")
    if args.storage == "sqlite" and args.replicas > 1:
        parser.error("SQLite serves a single replica: use --storage postgres")
    if args.replicas > 1 and args.lease is None:
        args.lease = 2.5 * args.period  # a lease must outlive the gap between two ticks
    args.duration = (args.ticks / args.monitors * args.period) if args.ticks else args.minutes * 60
    args.warmup = 2 * args.period if args.warmup is None else args.warmup
    args.label = args.label or f"{args.replicas}x{args.storage}-{args.monitors}m"
    result = run(args)
    stored = json.loads(args.output.read_text())["runs"] if args.output.exists() else []
    stored = [r for r in stored if r["label"] != args.label] + [result]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"runs": stored}, indent=1) + "\n")
    tmp.replace(args.output)
    print(json.dumps({k: v for k, v in result.items() if k not in ("rss_mib", "backlog_p99_over_time")}, indent=1))
    print(table(stored))


if __name__ == "__main__":
    main()
