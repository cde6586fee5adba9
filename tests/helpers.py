"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv

from monitor.config import MonitorConfig, build_config
from monitor.engine import MonitorRunner
from monitor.metrics import Metrics
from monitor.migrate import upgrade
from monitor.plugins import PluginManager
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
