"""Prometheus metrics: counters and histograms, plus a collector that exports drift results."""

from __future__ import annotations

import math
import platform
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.domain.records import ALL_FEATURES
from monitor.metrics.series import MonitorSeries, PerMonitor, Families

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: How an adapter run can end (the ``outcome`` label of ``driftd_adaptations_total``).
ADAPTATION_OUTCOMES = ("succeeded", "failed", "rejected", "promoted")
ADAPTATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass
class FeatureScore:
    """The latest value of one measure of one feature."""

    feature: str
    measure: str
    value: float
    p_value: float | None
    drifted: bool


@dataclass
class MonitorSnapshot:
    """What the collector exports for one monitor: the latest window and source health."""

    state_code: int = 0
    drift_share: float = 0.0
    last_window_timestamp: float | None = None
    reference_version: int | None = None
    source_up: bool | None = None
    source_files: int | None = None
    scores: list[FeatureScore] = field(default_factory=list)
    feature_drifted: dict[str, bool] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    missing_features: frozenset[str] = frozenset()
    #: What the source holds after the latest fetch's cursor (None: the connector cannot tell).
    backlog_rows: int | None = None
    backlog_seconds: float | None = None
    #: Why the monitor cannot evaluate now (it could not be built, or its latest tick failed); None when it can.
    error: str | None = None
    #: The latest window's diagnoses: (feature, kind) pairs (``monitor.domain.diagnosis``).
    shift_kinds: frozenset[tuple[str, str]] = frozenset()
    #: The latest window's data-quality checks: (feature, check, failed) (``monitor.domain.quality``).
    quality: tuple[tuple[str, str, bool], ...] = ()
    #: The latest window's segments of the reference: (segment, drifted) (``monitor.domain.segments``).
    segments: tuple[tuple[str, bool], ...] = ()
    #: The latest window's performance estimate (``WindowEstimate.to_json()``); None: none was made.
    performance: dict[str, Any] | None = None
    #: Realized performance of the latest window whose labels arrived: metric → value.
    realized: dict[str, float] = field(default_factory=dict)
    #: Estimated − realized, per metric, in that same window.
    estimation_error: dict[str, float] = field(default_factory=dict)
    #: Metrics whose realized value dropped past the alert in that same window.
    realized_alerts: frozenset[str] = frozenset()


class DriftCollector(Collector):
    """Yields drift gauges at scrape time from current snapshots, so removed monitors vanish."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families(self.metrics.exported_snapshots())

    def families(self, snapshots: list[tuple[str, MonitorSnapshot]]) -> tuple[GaugeMetricFamily, ...]:
        """The drift gauges of these monitors, every family in a fixed order (empty ones too)."""
        divergence = GaugeMetricFamily("driftd_feature_divergence", "Latest value of a measure for a feature.",
                                       labels=["monitor", "feature", "measure"])
        p_value = GaugeMetricFamily("driftd_feature_p_value", "Latest p-value of a test for a feature (unadjusted).",
                                    labels=["monitor", "feature", "measure"])
        drifted = GaugeMetricFamily("driftd_feature_drifted", "1 when the feature drifted in the latest window.",
                                    labels=["monitor", "feature"])
        state = GaugeMetricFamily("driftd_monitor_state", "Latest window state: 0 ok, 1 warning, 2 drift.",
                                  labels=["monitor"])
        dataset = GaugeMetricFamily("driftd_dataset_drift", "1 while the monitor is in the drift state.",
                                    labels=["monitor"])
        share = GaugeMetricFamily("driftd_drift_share_ratio", "Share of features drifted in the latest window.",
                                  labels=["monitor"])
        last = GaugeMetricFamily("driftd_last_window_timestamp_seconds", "When the latest window was evaluated.",
                                 labels=["monitor"])
        reference = GaugeMetricFamily("driftd_reference_version", "Active reference version.", labels=["monitor"])
        source_up = GaugeMetricFamily("driftd_source_up", "1 when the latest fetch from the source succeeded.",
                                      labels=["monitor"])
        files = GaugeMetricFamily("driftd_source_files", "Files the source matched at the latest fetch "
                                  "(file sources only; 0: its path or glob matches nothing).", labels=["monitor"])
        missing = GaugeMetricFamily("driftd_feature_missing",
                                    "1 when the feature could not be measured in the latest window "
                                    "(column missing, retyped, or no usable values).", labels=["monitor", "feature"])
        error = GaugeMetricFamily("driftd_monitor_error",
                                  "1 while the monitor cannot evaluate: it could not be built or its latest tick "
                                  "failed (the cause is the API's `error`).", labels=["monitor"])
        backlog_rows = GaugeMetricFamily("driftd_source_backlog_rows",
                                         "Rows the source holds after the latest fetch (0: caught up); absent "
                                         "when the connector cannot tell.", labels=["monitor"])
        backlog_seconds = GaugeMetricFamily("driftd_source_backlog_seconds",
                                            "Time between the last row read and the newest row of the source "
                                            "(0: caught up); absent when the connector cannot tell.",
                                            labels=["monitor"])
        shift = GaugeMetricFamily("driftd_feature_shift_kind",
                                  "1 for each kind of change the latest window's diagnosis found in a feature "
                                  "(location, scale, shape, swap, correlation, new_category, …).",
                                  labels=["monitor", "feature", "kind"])
        quality = GaugeMetricFamily("driftd_quality_check_failed",
                                    "1 when a data-quality check (missing_rate, out_of_range, new_category, "
                                    "vanished_category, constant, type_changed) failed on the feature in the latest "
                                    "window.",
                                    labels=["monitor", "feature", "check"])
        segment = GaugeMetricFamily("driftd_segment_drifted",
                                    "1 when some feature drifted in the segment (features.segment_by) in the latest "
                                    "window; segments are the reference's, at most features.max_segments.",
                                    labels=["monitor", "segment"])
        performance = _performance_families()
        limit = self.metrics.max_features
        for name, snap in snapshots:
            _add_performance(performance, name, snap)
            error.add_metric([name], float(snap.error is not None))
            if snap.backlog_rows is not None:
                backlog_rows.add_metric([name], snap.backlog_rows)
            if snap.backlog_seconds is not None:
                backlog_seconds.add_metric([name], snap.backlog_seconds)
            if snap.source_up is not None:
                source_up.add_metric([name], float(snap.source_up))
            if snap.source_files is not None:
                files.add_metric([name], snap.source_files)
            if snap.reference_version is not None:
                reference.add_metric([name], snap.reference_version)
            if snap.last_window_timestamp is None:
                continue
            exported = set(snap.features[:limit])
            for score in snap.scores:
                if score.feature in exported or score.feature == ALL_FEATURES:
                    divergence.add_metric([name, score.feature, score.measure], score.value)
                    if score.p_value is not None:
                        p_value.add_metric([name, score.feature, score.measure], score.p_value)
            for segment_name, segment_drifted in snap.segments:
                segment.add_metric([name, segment_name], float(segment_drifted))
            for feature, check, failed in snap.quality:
                if feature in exported:
                    quality.add_metric([name, feature, check], float(failed))
            for feature, kind in sorted(snap.shift_kinds):
                if feature in exported:
                    shift.add_metric([name, feature, kind], 1.0)
            for feature in snap.features[:limit]:
                missing.add_metric([name, feature], float(feature in snap.missing_features))
                if feature in snap.feature_drifted:
                    drifted.add_metric([name, feature], float(snap.feature_drifted[feature]))
            state.add_metric([name], snap.state_code)
            dataset.add_metric([name], float(snap.state_code == 2))
            share.add_metric([name], snap.drift_share)
            last.add_metric([name], snap.last_window_timestamp)
        return (divergence, p_value, drifted, shift, quality, segment, missing, state, dataset, share, last,
                reference, source_up, files, error, backlog_rows, backlog_seconds, *performance.values())


def _split_samples(text: bytes) -> dict[bytes, bytes]:
    """The sample lines of a text exposition grouped by metric name (comment lines dropped)."""
    grouped: dict[bytes, list[bytes]] = {}
    for line in text.splitlines(keepends=True):
        if not line.startswith(b"#"):
            grouped.setdefault(line.split(b"{", 1)[0].split(b" ", 1)[0], []).append(line)
    return {name: b"".join(lines) for name, lines in grouped.items()}


def _split_headers(text: bytes) -> list[tuple[bytes, bytes]]:
    """(family name, its HELP and TYPE lines) of a text exposition without samples, in order."""
    headers: dict[bytes, bytes] = {}
    for line in text.splitlines(keepends=True):
        name = line.split(b" ", 3)[2]
        headers[name] = headers.get(name, b"") + line
    return list(headers.items())


def _performance_families() -> dict[str, GaugeMetricFamily]:
    labels = ["monitor", "metric"]
    return {
        "value": GaugeMetricFamily("driftd_estimated_performance", "The model's performance estimated without labels "
                                   "in the latest window (CBPE, DLE).", labels=labels),
        "lower": GaugeMetricFamily("driftd_estimated_performance_lower", "Lower bound of the estimate's interval.",
                                   labels=labels),
        "upper": GaugeMetricFamily("driftd_estimated_performance_upper", "Upper bound of the estimate's interval.",
                                   labels=labels),
        "reference_lower": GaugeMetricFamily("driftd_reference_performance_lower", "Lower bound of the band the "
                                             "metric kept on the reference, for the latest window's size.",
                                             labels=labels),
        "reference_upper": GaugeMetricFamily("driftd_reference_performance_upper", "Upper bound of the band the "
                                             "metric kept on the reference.", labels=labels),
        "reliable": GaugeMetricFamily("driftd_estimated_performance_reliable", "1 when the latest window lies on "
                                      "the reference's support (0: the estimate cannot be trusted without labels).",
                                      labels=["monitor"]),
        "realized": GaugeMetricFamily("driftd_realized_performance", "The model's performance computed from labels, "
                                      "for the latest window whose labels arrived.", labels=labels),
        "error": GaugeMetricFamily("driftd_performance_estimation_error", "Estimated minus realized performance "
                                   "of the latest window whose labels arrived.", labels=labels),
        "realized_alert": GaugeMetricFamily("driftd_realized_performance_alert", "1 when the realized metric of "
                                            "the latest window whose labels arrived dropped past the alert.",
                                            labels=labels),
    }


def _add_performance(families: dict[str, GaugeMetricFamily], name: str, snap: MonitorSnapshot) -> None:
    for metric, value in snap.realized.items():
        if math.isfinite(value):
            families["realized"].add_metric([name, metric], value)
            families["realized_alert"].add_metric([name, metric], float(metric in snap.realized_alerts))
    for metric, value in snap.estimation_error.items():
        if math.isfinite(value):
            families["error"].add_metric([name, metric], value)
    if not snap.performance:
        return
    families["reliable"].add_metric([name], float(bool(snap.performance.get("reliable"))))
    for estimate in snap.performance.get("metrics", ()):
        for key in ("value", "lower", "upper", "reference_lower", "reference_upper"):
            if estimate.get(key) is not None and math.isfinite(estimate[key]):
                families[key].add_metric([name, estimate["metric"]], estimate[key])


class Metrics:
    """Every metric driftd exports, on a registry of its own."""

    def __init__(self, max_features: int = 100) -> None:
        self.max_features = max_features
        #: The metrics that are not per monitor (formatted at each scrape).
        self.live = CollectorRegistry()
        #: The drift gauges, formatted once per change of a snapshot (``exposition``).
        self.drift = CollectorRegistry()
        #: Everything, for ``generate_latest(metrics.registry)`` and embedding in another registry.
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._snapshots: dict[str, MonitorSnapshot] = {}
        self._held_elsewhere: set[str] = set()
        #: Each monitor's drift samples as last formatted (one text per family of ``_drift_headers``), with the
        #: snapshot they were formatted from.
        self._drift_text: dict[str, tuple[MonitorSnapshot, tuple[bytes, ...]]] = {}
        #: Bumped by every change of a snapshot or of the leases held: the drift text is current while it is not.
        self._drift_generation = 0
        self._drift_cached: tuple[int, bytes] | None = None
        labels = ["monitor"]
        #: Every per-monitor series, each monitor's formatted once per change (``exposition``).
        self.series = MonitorSeries()

        def per_monitor(kind: type[Any], name: str, documentation: str, labelnames: list[str] = labels,
                        **options: Any) -> PerMonitor:
            return PerMonitor(self.series, kind, name, documentation, labelnames, **options)

        self.windows = per_monitor(Counter, "driftd_windows", "Windows evaluated.")
        self.rows = per_monitor(Counter, "driftd_rows", "Rows evaluated in windows.")
        self.drift_events = per_monitor(Counter, "driftd_drift_events", "Drift events recorded.")
        self.source_errors = per_monitor(Counter, "driftd_source_errors", "Failed fetches from the source.")
        self.source_commit_errors = per_monitor(
            Counter, "driftd_source_commit_errors", "Failed acknowledgements of a committed cursor to the source "
            "(retried with the next commit).")
        self.source_lost = per_monitor(Counter, "driftd_source_lost", "Messages the source removed (retention) "
                                       "before driftd read them.")
        self.evaluation_errors = per_monitor(Counter, "driftd_evaluation_errors", "Ticks that failed after the fetch.")
        self.measure_failures = per_monitor(
            Counter, "driftd_measure_failures", "Windows in which a measure failed on at least one feature (NaN, "
            "no p-value, an error): those features got no verdict from it.", ["monitor", "measure"])
        self.evaluation_seconds = per_monitor(Histogram, "driftd_evaluation_duration_seconds",
                                              "Time to evaluate one window.", buckets=DURATION_BUCKETS)
        self.poll_seconds = per_monitor(Histogram, "driftd_poll_duration_seconds", "Time of one fetch from the source.",
                                        buckets=DURATION_BUCKETS)
        self.tick_seconds = per_monitor(Histogram, "driftd_tick_duration_seconds",
                                        "Time of one whole tick of a monitor.", buckets=DURATION_BUCKETS)
        self.scheduler_lag = per_monitor(Histogram, "driftd_scheduler_lag_seconds",
                                         "How late a tick was submitted after its scheduled time.",
                                         buckets=DURATION_BUCKETS)
        self.invalid_values = per_monitor(Counter, "driftd_invalid_values", "Values of a numeric feature that were "
                                          "not numbers (read as missing; the feature is measured on the rest).",
                                          ["monitor", "feature"])
        self.lease_held = per_monitor(Gauge, "driftd_lease_held", "1 while this replica holds the monitor's lease "
                                      "(with several replicas on PostgreSQL; always 1 on SQLite).")
        self.adaptations = per_monitor(Counter, "driftd_adaptations", "Adapter runs that ended, by outcome "
                                       "(succeeded, failed, rejected, promoted, skipped).",
                                       ["monitor", "adapter", "outcome"])
        self.adaptation_seconds = per_monitor(Histogram, "driftd_adaptation_duration_seconds",
                                              "Time of one adapter run.", ["monitor", "adapter"],
                                              buckets=ADAPTATION_BUCKETS)
        self.adaptation_running = per_monitor(Gauge, "driftd_adaptation_running",
                                              "1 while an adaptation of the monitor runs.")
        self.model_version = per_monitor(Gauge, "driftd_model_version", "The monitor's active model version "
                                         "(1: as configured; each promotion adds one).")
        self.outbox_pending = Gauge("driftd_outbox_pending", "Outbox messages (events for a hook or a notifier) "
                                    "not delivered yet, in the shared database.", registry=self.live)
        self.outbox_oldest_age = Gauge("driftd_outbox_oldest_pending_age_seconds", "Age of the oldest outbox message "
                                       "not delivered yet (0 when none waits).", registry=self.live)
        self.outbox_failures = Counter("driftd_outbox_failures", "Failed deliveries of outbox messages (each is "
                                       "retried), by destination.", ["target"], registry=self.live)
        self.outbox_delivered = Counter("driftd_outbox_delivered", "Outbox messages delivered, by destination.",
                                        ["target"], registry=self.live)
        self._per_monitor = (self.windows, self.rows, self.drift_events, self.source_errors,
                             self.source_commit_errors, self.source_lost,
                             self.evaluation_errors, self.evaluation_seconds, self.poll_seconds,
                             self.tick_seconds, self.scheduler_lag, self.lease_held, self.adaptation_running)
        build = Gauge("driftd_build_info", "driftd version and Python it runs on.", ["version", "python"],
                      registry=self.live)
        build.labels(__version__, platform.python_version()).set(1)
        self._collector = DriftCollector(self)
        self._drift_headers = _split_headers(generate_latest(Families(self._collector.families([]))))
        self.drift.register(self._collector)
        self.registry.register(self.live)
        self.registry.register(self.series)
        self.registry.register(self.drift)

    def exposition(self) -> bytes:
        """The ``/metrics`` text, equal to ``generate_latest(registry)``.

        A monitor's counters, histograms and gauges are re-formatted only when one of its series was
        created, updated or removed since the last scrape, its drift gauges only when its snapshot
        changed (snapshots are replaced, never mutated), so a scrape re-formats the monitors that
        ticked, not all of them (and none when each tick formatted its own: ``settle``). Each
        monitor's text is a row of one text per family: a scrape joins columns, and the per-monitor
        part is kept whole until something changes. No lock a tick holds is taken.
        """
        return b"".join((generate_latest(self.live), self.series.exposition(), self._drift_exposition()))

    def _drift_exposition(self) -> bytes:
        generation = self._drift_generation  # read first: a change from here on makes the next scrape build again
        cached = self._drift_cached
        if cached is not None and cached[0] == generation:
            return cached[1]
        elsewhere = frozenset(self._held_elsewhere)  # one C call each: consistent without the lock
        texts = self._drift_text.copy()
        rows = []
        for name, snapshot in list(self._snapshots.items()):
            if name in elsewhere:
                continue
            text = texts.get(name)
            rows.append(text[1] if text is not None and text[0] is snapshot else self._drift_samples(name, snapshot))
        columns = zip(*rows) if rows else ((),) * len(self._drift_headers)
        parts: list[bytes] = []
        for (_, header), column in zip(self._drift_headers, columns):
            parts.append(header)
            parts.extend(column)
        body = b"".join(parts)  # one copy, in one C call
        self._drift_cached = (generation, body)
        return body

    def settle(self, monitor: str) -> None:
        """Format a monitor's series and drift gauges now if they changed, so the next scrape only copies them."""
        self.series.settle(monitor)
        with self._lock:
            snapshot = self._snapshots.get(monitor)
            cached = self._drift_text.get(monitor)
        if snapshot is not None and (cached is None or cached[0] is not snapshot):
            self._drift_samples(monitor, snapshot)

    def _drift_samples(self, name: str, snapshot: MonitorSnapshot) -> tuple[bytes, ...]:
        """The drift gauges of one monitor's snapshot, one text per family, formatted once per snapshot."""
        with self._lock:
            cached = self._drift_text.get(name)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        grouped = _split_samples(generate_latest(Families(self._collector.families([(name, snapshot)]))))
        text = tuple(grouped.get(family, b"") for family, _ in self._drift_headers)
        with self._lock:
            if self._snapshots.get(name) is snapshot:  # a removed monitor's text is not kept
                self._drift_text[name] = (snapshot, text)
        return text

    def lease(self, monitor: str, held: bool) -> None:
        """Whether this replica holds the monitor's lease: the monitor's gauges are exported only while it does.

        A replica learns that its lease moved at the monitor's next tick; from then on only the replica
        evaluating the monitor exports its gauges (``sum()`` across replicas counts it once).
        """
        self.lease_held.labels(monitor).set(float(held))
        with self._lock:
            if held == (monitor in self._held_elsewhere):
                self._drift_generation += 1
            if held:
                self._held_elsewhere.discard(monitor)
            else:
                self._held_elsewhere.add(monitor)

    def snapshots(self) -> list[tuple[str, MonitorSnapshot]]:
        """A consistent copy of every monitor's snapshot."""
        with self._lock:
            return list(self._snapshots.items())

    def exported_snapshots(self) -> list[tuple[str, MonitorSnapshot]]:
        """The snapshots of the monitors whose gauges this replica exports: those whose lease it holds
        (another replica evaluates the rest; exporting them here too would double every ``sum()``)."""
        with self._lock:
            return [(name, snap) for name, snap in self._snapshots.items() if name not in self._held_elsewhere]

    def snapshot(self, monitor: str) -> MonitorSnapshot:
        """The monitor's snapshot, created on first use (callers replace it, never mutate it)."""
        with self._lock:
            if monitor not in self._snapshots:
                self._snapshots[monitor] = MonitorSnapshot()
                self._drift_generation += 1
            return self._snapshots[monitor]

    def publish(self, monitor: str, snapshot: MonitorSnapshot) -> None:
        """Replace a monitor's snapshot atomically."""
        with self._lock:
            self._snapshots[monitor] = snapshot
            self._drift_generation += 1

    def update(self, monitor: str, **changes: Any) -> None:
        """Replace some fields of a monitor's snapshot (nothing happens when they are unchanged)."""
        with self._lock:
            snapshot = self._snapshots.get(monitor)
            if snapshot is None or any(getattr(snapshot, name) != value for name, value in changes.items()):
                self._snapshots[monitor] = replace(snapshot or MonitorSnapshot(), **changes)
                self._drift_generation += 1

    def adapters(self, monitor: str, adapters: Iterable[str]) -> None:
        """Start every adapter's series at zero, so ``increase()`` sees the first run."""
        for adapter in adapters:
            self._adapter(monitor, adapter)
            for outcome in ADAPTATION_OUTCOMES:
                self.adaptations.labels(monitor, adapter, outcome)

    def measures(self, monitor: str, measures: Iterable[str]) -> None:
        """Start every measure's failure count at zero, so ``increase()`` sees the first failure."""
        for measure in measures:
            self.measure_failed(monitor, measure, 0)

    def measure_failed(self, monitor: str, measure: str, windows: int = 1) -> None:
        """Count windows in which ``measure`` failed on some feature."""
        self.measure_failures.labels(monitor, measure).inc(windows)

    def adaptation_ended(self, monitor: str, adapter: str, outcome: str) -> None:
        """Count an adapter run that reached ``outcome``."""
        self._adapter(monitor, adapter)
        self.adaptations.labels(monitor, adapter, outcome).inc()

    def adaptation_took(self, monitor: str, adapter: str, seconds: float) -> None:
        """Record how long an adapter run took."""
        self._adapter(monitor, adapter).observe(seconds)

    def _adapter(self, monitor: str, adapter: str) -> Any:
        return self.adaptation_seconds.labels(monitor, adapter)

    def count_invalid(self, monitor: str, feature: str, count: int) -> None:
        """Count values of a numeric feature that were not numbers."""
        self.invalid_values.labels(monitor, feature).inc(count)

    def add_monitor(self, monitor: str) -> None:
        """Start every counter of a monitor at zero so rates work from the first scrape."""
        for metric in self._per_monitor:
            metric.labels(monitor)
        self.snapshot(monitor)

    def remove_monitor(self, monitor: str) -> None:
        """Drop every series of a monitor that is no longer configured."""
        with self._lock:
            self._snapshots.pop(monitor, None)
            self._drift_text.pop(monitor, None)
            self._held_elsewhere.discard(monitor)
            self._drift_generation += 1
        self.series.drop(monitor)
