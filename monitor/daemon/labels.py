"""Realized performance: labels that arrive later, joined by key to the windows' stored model outputs.

Each join reads the label source from its stored cursor and commits, in ONE transaction, the new
cursor, the labels still waiting for their row, and each touched window's labels and realized
metrics. A key's first label counts; a later one for the same key is a duplicate and is not
counted again, so neither a restart nor a source that delivers twice counts a label twice.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from monitor.config import MonitorConfig, PerformanceConfig
from monitor.connector import Connector
from monitor.daemon.errors import MonitorError, reason
from monitor.daemon.performance import KEY, PerformanceWatch, join_keys
from monitor.domain.reference import table_from_bytes, table_to_bytes
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.domain.events import NO_ROUTES, Routes
from monitor.store import LabelUpdate, LeaseLost, OpenWindow, Store

log = logging.getLogger("driftd.labels")


class LabelJoiner:
    """Joins one monitor's late labels to its windows and stores the realized performance."""

    def __init__(self, name: str, monitor_id: int, config: PerformanceConfig, connector: Connector, store: Store,
                 watch: PerformanceWatch, metrics: Metrics) -> None:
        assert config.labels is not None
        self.name, self.monitor_id, self.config, self.labels = name, monitor_id, config, config.labels
        self.connector, self.store, self.watch, self.metrics = connector, store, watch, metrics
        self._last_problem: str | None = None
        self.latest = store.latest_realized(monitor_id)
        self._publish()

    @property
    def state(self) -> str:
        """The state the realized performance raises the monitor to: the alert's while the latest window
        with realized metrics has a realized drop (``alert.realized``), else ``ok``."""
        alert = self.config.alert
        return alert.state if alert is not None and alert.realized and self.latest.alerts else "ok"

    def _publish(self) -> None:
        self.metrics.update(self.name, realized=dict(self.latest.realized),
                            estimation_error=dict(self.latest.errors), realized_alerts=self.latest.alerts)

    def join(self, reference_id: object, lease: tuple[str, float] | None, routes: Routes = NO_ROUTES) -> int:
        """Read new labels, join them, commit; returns the labels newly counted.

        A failure (the label source, the history database) is logged and leaves everything as it was:
        the next tick tries again from the committed cursor. Only a lost lease goes up to the tick.
        """
        try:
            return self._join(reference_id, lease, routes)
        except LeaseLost:
            raise
        except Exception as error:  # noqa: BLE001 - labels failing never stops the monitor's windows
            self._problem(f"monitor {self.name}: labels not joined: {reason(error)}")
            return 0

    def _join(self, reference_id: object, lease: tuple[str, float] | None, routes: Routes) -> int:
        position, pending = self.store.label_cursor(self.monitor_id)
        try:
            batch = self.connector.fetch(position, self.labels.max_rows)
            incoming = self._rows(batch.table)
        except Exception as error:  # noqa: BLE001 - the label source failing never stops the monitor
            self._problem(f"monitor {self.name}: labels not read: {reason(error)}")
            return 0
        self._problem(None)
        waiting = (_pairs(table_from_bytes(pending)) if pending else []) + incoming
        if not waiting and batch.cursor == position:
            return 0
        windows = self.store.open_windows(self.monitor_id, self.labels.max_windows) if waiting else []
        owner: dict[str, OpenWindow] = {}
        for window in reversed(windows):  # oldest first: a key seen twice belongs to its first window
            for key in table_from_bytes(window.outputs).column(KEY).to_pylist():
                owner.setdefault(key, window)
        known = {w.window_id: dict(_pairs(table_from_bytes(w.labels))) if w.labels else {} for w in windows}
        touched: dict[int, OpenWindow] = {}
        left: list[tuple[str, Any]] = []
        duplicates = 0
        for key, label in waiting:
            window = owner.get(key)
            if window is None:
                left.append((key, label))
            elif key in known[window.window_id]:
                duplicates += 1
            else:
                known[window.window_id][key] = label
                touched[window.window_id] = window
        if duplicates:
            log.warning("monitor %s: %d label(s) for keys already labelled were not counted again", self.name,
                        duplicates)
        if len(left) > self.labels.max_pending:
            log.warning("monitor %s: %d label(s) whose row never arrived were dropped (labels.max_pending is %d)",
                        self.name, len(left) - self.labels.max_pending, self.labels.max_pending)
            left = left[len(left) - self.labels.max_pending:]
        updates = [self._update(reference_id, window, known[window.window_id]) for window in touched.values()]
        started = self.store.commit_labels(self.monitor_id, batch.cursor, _serialised(left), len(left), updates,
                                          lease=lease, routes=routes)
        counted = sum(u.labelled_rows - touched[u.window_id].labelled_rows for u in updates)
        for update in updates:
            if update.realized_alerts:
                log.warning("monitor %s window %d: realized %s dropped past the alert (%d labels)%s", self.name,
                            touched[update.window_id].seq, ", ".join(update.realized_alerts), update.labelled_rows,
                            "; drift event started" if update.window_id in started else "")
        if any(u.realized is not None for u in updates):
            self.latest = self.store.latest_realized(self.monitor_id)
            self._publish()
        return counted

    def _update(self, reference_id: object, window: OpenWindow, labels: dict[str, Any]) -> LabelUpdate:
        outputs = table_from_bytes(window.outputs)
        realized = None
        if len(labels) >= self.labels.min_labels:
            keys = outputs.column(KEY).to_pylist()
            realized = self.watch.realized(reference_id, outputs, [labels.get(key) for key in keys])
        alerts = tuple(self.watch.realized_alerts(realized, window.references)) if realized is not None else ()
        return LabelUpdate(window.window_id, _serialised(list(labels.items())) or b"", len(labels), realized, alerts)

    def _rows(self, table: pa.Table) -> list[tuple[str, Any]]:
        column = self.config.label_column
        for name in (self.labels.key, column):
            if name not in table.column_names and table.num_rows:
                raise ValueError(f"the label source has no column {name!r} (it has {table.column_names})")
        if not table.num_rows:
            return []
        pairs = list(zip(join_keys(table.column(self.labels.key), self.labels.join == "time"),
                         table.column(column).to_pylist()))
        as_label = str if self.config.task == "classification" else float
        usable = [(key, as_label(label)) for key, label in pairs if key is not None and _known(label)]
        if len(usable) < len(pairs):
            log.warning("monitor %s: %d label row(s) without a key or a label were skipped", self.name,
                        len(pairs) - len(usable))
        return usable

    def _problem(self, message: str | None) -> None:
        if message is not None and message != self._last_problem:
            log.error("%s", message)
        self._last_problem = message


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _pairs(table: pa.Table) -> list[tuple[str, Any]]:
    return list(zip(table.column("key").to_pylist(), table.column("label").to_pylist()))


def _serialised(pairs: list[tuple[str, Any]]) -> bytes | None:
    if not pairs:
        return None
    keys, labels = zip(*pairs)
    return table_to_bytes(pa.table({"key": pa.array(keys, pa.string()), "label": pa.array(list(labels))}))


def label_joiner(config: MonitorConfig, monitor_id: int, plugins: PluginManager, store: Store,
                 watch: PerformanceWatch | None, metrics: Metrics) -> LabelJoiner | None:
    """The monitor's label joiner (None without ``performance.labels``); a source that cannot be built is a MonitorError."""
    performance = config.performance
    if watch is None or performance is None or performance.labels is None:
        return None
    source = performance.labels.source
    try:
        connector = plugins.connector(source["type"], source.get("options") or {})
    except Exception as error:  # noqa: BLE001 - unknown type, bad options: the monitor's configuration
        raise MonitorError(f"monitor {config.name!r}: performance.labels.source: {reason(error)}") from None
    return LabelJoiner(config.name, monitor_id, performance, connector, store, watch, metrics)
