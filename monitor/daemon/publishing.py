"""After a tick committed: the monitor's metrics, the plugin hooks, and the adaptation queue."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from monitor.domain.policy import STATE_CODES
from monitor.domain.records import WindowRecord
from monitor.domain.values import InvalidValues
from monitor.metrics import FeatureScore, Metrics, MonitorSnapshot
from monitor.plugins import PluginManager
from monitor.store import CommittedWindow

log = logging.getLogger("driftd.engine")


class Publisher:
    """Tells the world what one monitor's committed windows found."""

    def __init__(self, name: str, features: list[str], metrics: Metrics, plugins: PluginManager,
                 on_adaptation: Callable[[str], None] | None = None) -> None:
        """``on_adaptation(monitor)`` is called after a drift event with queued adapter runs was committed."""
        self.name, self.features, self.metrics, self.plugins = name, features, metrics, plugins
        self.on_adaptation = on_adaptation

    def invalid_values(self, invalid: dict[str, InvalidValues]) -> None:
        """Report the committed rows' values that were not numbers: one line per feature, and the counter."""
        for feature, values in invalid.items():
            log.warning("monitor %s: feature %r: %d value(s) are not numbers (e.g. %r): counted as invalid, "
                        "the feature is measured on its other values", self.name, feature, values.count,
                        values.example)
            if feature in self.features[:self.metrics.max_features]:
                self.metrics.count_invalid(self.name, feature, values.count)

    def published(self, records: list[WindowRecord], committed: list[CommittedWindow],
                  reference_version: int | None) -> None:
        """Export the latest window, count the windows, call the hooks and queue adaptations."""
        if not records:
            self.metrics.update(self.name, reference_version=reference_version)
            return
        last = records[-1]
        snapshot = self.metrics.snapshot(self.name)
        self.metrics.publish(self.name, MonitorSnapshot(
            state_code=STATE_CODES[last.state], drift_share=last.drift_share,
            last_window_timestamp=time.time(), reference_version=reference_version,
            source_up=snapshot.source_up, source_files=snapshot.source_files,
            scores=[FeatureScore(r.feature, r.measure, r.value, r.p_value, r.drifted) for r in last.results],
            feature_drifted={name: name in last.drifted_features
                             for name in self.features if name not in last.missing_features},
            features=self.features, missing_features=frozenset(last.missing_features),
        ))
        for record, ids in zip(records, committed):
            self.metrics.windows.labels(self.name).inc()
            self.metrics.rows.labels(self.name).inc(record.rows)
            for measure in record.failed_measures:
                self.metrics.measure_failed(self.name, measure)
            self.plugins.call_event("driftd_window_evaluated", monitor=self.name, window=window_event(record))
            if ids.event_id is None:
                continue
            self.metrics.drift_events.labels(self.name).inc()
            log.warning("monitor %s: DRIFT in window %d (%.0f%% of features: %s)", self.name, record.seq,
                        100 * record.drift_share, ", ".join(record.drifted_features))
            self.plugins.call_event("driftd_drift_detected", monitor=self.name, event={
                "id": ids.event_id, "window_seq": record.seq, "drift_share": record.drift_share,
                "features": list(record.drifted_features)})
            if record.adapters and self.on_adaptation is not None:
                self.on_adaptation(self.name)


def window_event(record: WindowRecord) -> dict[str, Any]:
    """The ``window`` mapping the ``driftd_window_evaluated`` hook receives."""
    return {
        "seq": record.seq, "rows": record.rows, "state": record.state, "drift_share": record.drift_share,
        "drifted_features": list(record.drifted_features), "missing_features": list(record.missing_features),
        "failed_measures": dict(record.failed_measures),
        "results": [vars(result).copy() for result in record.results],
    }
