"""A runner for a backfill: the monitor's own rules, fed rows of the past instead of its source."""

from __future__ import annotations

from monitor.config import MonitorConfig
from monitor.connector import Batch, Connector, Cursor
from monitor.daemon.engine import MonitorRunner
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import Store


class HistoryOnly(Connector):
    """Stands in for the monitor's source during a backfill: the rows come from a file, never from here."""

    type_name = "backfill"

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Never called: a backfill hands its rows to ``MonitorRunner.evaluate_history``."""
        raise RuntimeError("a backfill does not read the monitor's source")


def history_runner(config: MonitorConfig, store: Store, plugins: PluginManager,
                   lease: tuple[str, float] | None = None) -> MonitorRunner:
    """The monitor's runner (measures, windows, policy), built without connecting to its source."""
    return MonitorRunner(config, store, plugins, Metrics(), lease=lease, connector=HistoryOnly({}))
