"""After a tick committed: the monitor's metrics, the drift log line, and the adaptation queue.

(The plugin hooks and notifiers get the tick's events from the outbox, written in the tick's
transaction: ``monitor.daemon.outbox``.)"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

from monitor.domain.policy import STATE_CODES
from monitor.domain.quality import quality_outcomes
from monitor.domain.records import WindowRecord
from monitor.domain.values import InvalidValues
from monitor.metrics import FeatureScore, Metrics
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
        """Export the latest window, count the windows, log drift and queue adaptations."""
        if not records:
            self.metrics.update(self.name, reference_version=reference_version)
            return
        last = records[-1]
        snapshot = self.metrics.snapshot(self.name)
        self.metrics.publish(self.name, replace(
            snapshot, state_code=STATE_CODES[last.state], drift_share=last.drift_share,
            last_window_timestamp=time.time(), reference_version=reference_version,
            scores=[FeatureScore(r.feature, r.measure, r.value, r.p_value, r.drifted) for r in last.results],
            feature_drifted={name: name in last.drifted_features
                             for name in self.features if name not in last.missing_features},
            features=self.features, missing_features=frozenset(last.missing_features),
            shift_kinds=frozenset((str(d["feature"]), str(d["kind"])) for d in last.diagnoses),
            quality=tuple(quality_outcomes(last.results)),
            segments=tuple((str(s["segment"]), bool(s["drifted"])) for s in last.segments if s.get("in_reference")),
            performance=last.performance if last.performance is not None else snapshot.performance,
        ))
        for record, ids in zip(records, committed):
            self.metrics.windows.labels(self.name).inc()
            self.metrics.rows.labels(self.name).inc(record.rows)
            for measure in record.failed_measures:
                self.metrics.measure_failed(self.name, measure)
            if ids.event_id is None:
                continue
            self.metrics.drift_events.labels(self.name).inc()
            segments = f"; segments drifted: {', '.join(record.drifted_segments)}" if record.drifted_segments else ""
            log.warning("monitor %s: DRIFT in window %d (%.0f%% of features: %s)%s", self.name, record.seq,
                        100 * record.drift_share, ", ".join(record.drifted_features), segments)
            if record.adapters and self.on_adaptation is not None:
                self.on_adaptation(self.name)

