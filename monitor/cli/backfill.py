"""``driftd backfill``: a file of past rows evaluated window by window into a monitor's history.

The file is split into a reference and a history (by row or by time); every window of the history
is evaluated by the monitor's own runner (windows, measures, correction, drift policy) and stored
with its own times, in one transaction, without touching the monitor's cursor on its live source.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa

from monitor.cli.base import config_option, fail, load, main, open_store
from monitor.config import ConfigError, MonitorConfig
from monitor.config.schema import MAX_ROWS
from monitor.daemon import lock_sqlite
from monitor.daemon.backfill import history_runner
from monitor.daemon.engine import Backfill, MonitorError, MonitorRunner
from monitor.domain.reference import ReferenceDataError, read_table, summarize_table
from monitor.domain.windows import WindowError, epoch_seconds
from monitor.logs import setup_logging
from monitor.plugins import PluginManager
from monitor.store import Store


@main.command()
@config_option
@click.argument("monitor")
@click.option("--from", "from_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The past rows: CSV, Parquet or JSON lines.")
@click.option("--reference-rows", type=click.IntRange(2, MAX_ROWS),
              help="The first N rows (in time order) are the reference; the rest is the history.")
@click.option("--reference-until", metavar="TIME",
              help="Rows before TIME (ISO 8601; UTC unless it has an offset) are the reference.")
@click.option("--timestamp", metavar="COLUMN",
              help="The column that orders the rows in time (default: the monitor's window.timestamp).")
def backfill(config_path: Path | None, monitor: str, from_file: Path, reference_rows: int | None,
             reference_until: str | None, timestamp: str | None) -> None:
    """Evaluate a file of past rows into MONITOR's history, window by window, before the daemon runs it.

    Without --reference-rows or --reference-until the monitor's own reference is used (its active
    version, reference.path, or its first reference.first_rows rows of the file).
    """
    config, _ = load(config_path)
    setup_logging("ERROR")  # per-window warnings (a feature not measured) are in the summary instead
    try:
        monitor_config = _with_timestamp(config.monitor(monitor), timestamp)
    except ConfigError as error:
        fail(str(error))
    if reference_rows is not None and reference_until is not None:
        fail("pass one of --reference-rows or --reference-until")
    column = monitor_config.window.timestamp
    try:
        table = _in_time_order(read_table(from_file), column)
    except (ReferenceDataError, WindowError) as error:
        fail(f"{from_file}: {error}")
    store = open_store(config)
    lock = _single_writer(store)
    try:
        windows = store.overview(monitor).windows
        if windows:
            fail(f"monitor {monitor!r} already has {windows} window(s): a backfill fills an empty history "
                 "(use a new monitor name or a new database)")
        reference, history, origin = _split(table, monitor_config, store, from_file, reference_rows,
                                            reference_until)
        runner = _runner(config.storage.lease, store, monitor_config)
        new = None if reference is None else summarize_table(
            reference, monitor_config.features, monitor_config.reference.bins, monitor_config.reference.max_rows,
            origin, multivariate_sample=monitor_config.reference.multivariate_sample)
        result = runner.evaluate_history(history, _Progress(monitor), new)
    except (MonitorError, ReferenceDataError, WindowError) as error:
        fail(str(error) if str(error).startswith("monitor ") else f"monitor {monitor!r}: {error}")
    finally:
        if lock is not None:
            lock.close()
        if not store.is_sqlite:
            store.release_leases(_BACKFILL_REPLICA)
    for line in summary(monitor, from_file, table.num_rows, history.num_rows, result):
        click.echo(line)


_BACKFILL_REPLICA = f"backfill:{socket.gethostname()}:{os.getpid()}"


def _with_timestamp(monitor: MonitorConfig, timestamp: str | None) -> MonitorConfig:
    """The monitor, its windows' timestamp column set from ``--timestamp`` where it has none."""
    window = monitor.window
    if timestamp is None or timestamp == window.timestamp:
        return monitor
    if window.timestamp is not None:
        raise ConfigError(f"monitor {monitor.name!r} cuts its windows on {window.timestamp!r}: "
                          f"--timestamp {timestamp!r} cannot change that")
    return monitor.model_copy(update={"window": window.model_copy(update={"timestamp": timestamp})})


def _in_time_order(table: pa.Table, column: str | None) -> pa.Table:
    """The rows sorted by ``column`` (stable), or as they are without one."""
    if column is None:
        return table
    if column not in table.column_names:
        raise WindowError(f"the timestamp column {column!r} is not in the file (it has {table.column_names[:20]})")
    seconds = epoch_seconds(table.column(column), column)
    return table.take(pa.array(np.argsort(seconds, kind="stable")))


def _split(table: pa.Table, monitor: MonitorConfig, store: Store, source: Path, rows: int | None,
           until: str | None) -> tuple[pa.Table | None, pa.Table, str]:
    """(reference rows or None to use the monitor's own, history rows, the reference's origin)."""
    if until is not None:
        column = monitor.window.timestamp
        if column is None:
            raise WindowError("--reference-until needs a timestamp column (--timestamp or window.timestamp)")
        cutoff = _instant(until)
        seconds = epoch_seconds(table.column(column), column)
        count = int(np.searchsorted(seconds, cutoff, side="left"))  # sorted: rows before the cutoff
        origin = f"backfill:{source.name} before {datetime.fromtimestamp(cutoff, timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
    elif rows is not None:
        count, origin = rows, f"backfill:{source.name} first {rows} rows"
    else:
        has_reference = store.active_reference(store.monitor_id(monitor.name)) is not None
        wanted = monitor.reference.first_rows
        if has_reference or monitor.reference.path or not wanted:
            return None, table, ""
        count, origin = wanted, f"backfill:{source.name} first {wanted} rows"
    if count < 2:
        raise ReferenceDataError(f"the reference would hold {count} row(s) of {table.num_rows}: move the split later")
    if count >= table.num_rows:
        raise ReferenceDataError(f"the reference would take all {table.num_rows} rows: nothing is left to backfill")
    return table.slice(0, count), table.slice(count), origin


def _instant(text: str) -> float:
    """Epoch seconds of an ISO 8601 time (UTC when it has no offset)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WindowError(f"--reference-until {text[:40]!r} is not an ISO 8601 time (e.g. 2026-01-31T00:00)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _single_writer(store: Store) -> Any:
    """SQLite: the daemon's lock (a running daemon refuses the backfill and vice versa); None on PostgreSQL."""
    if not store.is_sqlite:
        return None
    try:
        return lock_sqlite(store)
    except RuntimeError as error:
        fail(f"{error}; stop it before a backfill")


def _runner(lease_seconds: float, store: Store, monitor: MonitorConfig) -> MonitorRunner:
    lease = None if store.is_sqlite else (_BACKFILL_REPLICA, lease_seconds)
    return history_runner(monitor, store, PluginManager(), lease)


class _Progress:
    """``backfill M: 120/340 windows (35%)`` on stderr, at most once a second, and at the end."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.shown = monitor, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.shown >= 1.0:
            self.shown = now
            click.echo(f"backfill {self.monitor}: {done}/{total} windows ({done / total:.0%})", err=True)
            sys.stderr.flush()


def summary(monitor: str, source: Path, file_rows: int, history_rows: int, result: Backfill) -> list[str]:
    """What a backfill stored, in a few lines: every row of the file is accounted for."""
    windows = result.windows
    evaluated = sum(window.rows for window in windows)
    lines = [f"{monitor}: backfilled {len(windows)} window(s) ({evaluated} rows) from {source} "
             f"against reference version {result.reference_version}"
             + (f" (stored from the first {file_rows - history_rows} rows)" if file_rows > history_rows else "")]
    times = [window.ended_at for window in windows if window.ended_at is not None]
    if times:
        lines.append(f"  windows ending {min(times):%Y-%m-%d %H:%M:%S} to {max(times):%Y-%m-%d %H:%M:%S} (UTC)")
    states = Counter(window.state for window in windows)
    lines.append(f"  states: {states['ok']} ok, {states['warning']} warning, {states['drift']} drift; "
                 f"{result.events} drift event(s)")
    missing = Counter(feature for window in windows for feature in window.missing_features)
    if missing:
        lines.append("  not measured: " + ", ".join(f"{feature} (in {count} window(s))"
                                                    for feature, count in sorted(missing.items())))
    lines.append(f"  rows: {file_rows} in the file = {file_rows - history_rows} reference + {evaluated} in windows "
                 f"+ {result.rows_left} after the last complete window (not evaluated)")
    return lines
