"""Small builders shared by the tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pytest

from monitor.config import MonitorConfig, build_config
from monitor.connector import Connector
from monitor.daemon.engine import MonitorRunner, SourceDown
from monitor.metrics import Metrics
from monitor.store.migrate import upgrade
from monitor.plugins import PluginManager
from monitor.domain.reference import table_from_bytes
from monitor.store import Store


def monitor_config(**overrides: Any) -> MonitorConfig:
    """A files monitor over a, b (numeric) and c (categorical), with any key overridden."""
    raw: dict[str, Any] = {
        "name": "m",
        "source": {"type": "files", "options": {"path": "data"}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "window": {"rows": 500},
        "reference": {"first_rows": 1000},
        "measures": ["ks", "psi", "chi_square"],
    }
    raw.update(overrides)
    return build_config({"monitors": [raw]}, "test", environ={}).monitors[0]


def sample_table(rows: int, seed: int, shift: float = 0.0, start_id: int = 0) -> pa.Table:
    """Rows of a, b ~ N(shift, 1) and N(10, 2), c in {x, y, z}, with an id column."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "id": np.arange(start_id, start_id + rows),
        "a": rng.normal(shift, 1.0, rows),
        "b": rng.normal(10.0, 2.0, rows),
        "c": rng.choice(["x", "y", "z"], rows, p=[0.5, 0.3, 0.2]),
    })


def write_csv(path: Path, table: pa.Table) -> Path:
    """Write a table as CSV, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyarrow.csv.write_csv(table, str(path))
    return path


def make_runner(config: MonitorConfig, url: str, metrics: Metrics | None = None) -> MonitorRunner:
    """A runner on a prepared store, with built-in plugins only."""
    store = Store(url)
    upgrade(store.engine)
    return MonitorRunner(config, store, PluginManager(load_entry_points=False), metrics or Metrics())


def wait_until_up(runner: MonitorRunner, seconds: float = 10.0) -> None:
    """Tick until the source is up again (the engine waits out its backoff between tries)."""
    deadline = time.monotonic() + seconds
    while runner.metrics.snapshot(runner.name).source_up is not True:
        assert time.monotonic() < deadline, "the source did not come back"
        try:
            runner.tick()
        except SourceDown:
            pass
        time.sleep(0.05)


def restart_and_outage(config: MonitorConfig, url: str, write: Callable[[int], None],
                       unreachable: Callable[[], Connector], secret: str, refused: str = "(?i)refused") -> tuple[int, int]:
    """Rows written between ticks, a restart part-way and an outage while rows keep arriving.

    Returns (rows in windows, rows pending) once the source is drained; the outage's error must
    match ``refused`` and must not contain ``secret``.
    """
    runner = make_runner(config, url)
    for step, rows in enumerate([250, 0, 333, 170, 95, 0, 97]):
        if rows:
            write(rows)
        if step == 3:  # restart: a new runner resumes from the committed cursor
            runner.close()
            runner.store.close()
            runner = make_runner(config, url)
        if step == 4:  # outage: the source is unreachable while rows keep arriving
            good, runner.connector = runner.connector, unreachable()
            with pytest.raises(SourceDown, match=refused) as caught:
                runner.tick()
            assert secret not in str(caught.value)
            assert runner.metrics.snapshot(runner.name).source_up is False
            write(55)
            runner.connector.close()
            runner.connector = good
            wait_until_up(runner)
        for _ in range(2):
            runner.tick()
        assert runner.metrics.snapshot(runner.name).source_up is True
    while runner.tick().rows_fetched:
        pass
    pending = runner.store.load_progress(runner.monitor_id, recent=0).pending
    windows = runner.store.count_rows(runner.name)
    runner.close()
    runner.store.close()
    return windows, 0 if pending is None else table_from_bytes(pending).num_rows
