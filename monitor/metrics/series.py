"""Per-monitor counters, histograms and gauges, each monitor's formatted once per change of its series."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class Families:
    """Metric families as ``generate_latest`` formats them (anything with ``collect``)."""

    def __init__(self, families: Iterable[Any]) -> None:
        self._families = list(families)

    def collect(self) -> list[Any]:
        return self._families


class Series:
    """One series of a monitor: every update marks the monitor changed, after the value changed."""

    __slots__ = ("_child", "_changed")

    def __init__(self, child: Any, changed: Callable[[], None]) -> None:
        self._child = child
        self._changed = changed

    def inc(self, amount: float = 1) -> None:
        """Add to a counter or a gauge."""
        self._child.inc(amount)
        self._changed()

    def set(self, value: float) -> None:
        """Set a gauge."""
        self._child.set(value)
        self._changed()

    def observe(self, value: float) -> None:
        """Record an observation in a histogram."""
        self._child.observe(value)
        self._changed()


class PerMonitor:
    """A metric whose first label is ``monitor``, with each monitor's series in a metric object of its own."""

    def __init__(self, store: MonitorSeries, kind: type[MetricWrapperBase], name: str, documentation: str,
                 labelnames: list[str], **options: Any) -> None:
        self.index = len(store.families)
        self.make: Callable[[], MetricWrapperBase] = (
            lambda: kind(name, documentation, labelnames, registry=None, **options))
        #: Its HELP and TYPE lines, as ``generate_latest`` writes them.
        self.header = generate_latest(Families(self.make().collect()))
        self._store = store
        store.families.append(self)

    def labels(self, monitor: str, *rest: str) -> Series:
        """The series of ``monitor`` with the other label values ``rest`` (created at zero on first use)."""
        child = self._store.own(monitor, self).labels(monitor, *rest)
        self._store.changed(monitor)  # a new series shows in the next scrape even before its first update
        return Series(child, lambda: self._store.changed(monitor))

    def remove(self, monitor: str, *rest: str) -> None:
        """Drop one series (``KeyError`` when it does not exist)."""
        self._store.own(monitor, self).remove(monitor, *rest)
        self._store.changed(monitor)


#: One monitor's formatted samples: family index → its sections (see ``_sections``).
_Text = dict[int, list[tuple[bytes, bytes]]]


class MonitorSeries(Collector):
    """Every per-monitor metric: a monitor's series are formatted once per change, not at every scrape.

    ``collect`` yields each family with every monitor's samples (for ``generate_latest`` of a
    registry); ``exposition`` writes the same text from each monitor's samples as formatted at the
    version they were read at, re-formatting a monitor's only when one of its series was created,
    updated or removed since (every change bumps the monitor's version after the value changed).
    ``settle`` formats a monitor's samples ahead of the scrape (at the end of its tick).
    """

    def __init__(self) -> None:
        self.families: list[PerMonitor] = []
        self._lock = threading.Lock()
        self._own: dict[str, dict[int, MetricWrapperBase]] = {}
        self._version: dict[str, int] = {}
        self._text: dict[str, tuple[int, _Text]] = {}

    def own(self, monitor: str, family: PerMonitor) -> MetricWrapperBase:
        """The metric object holding ``monitor``'s series of ``family`` (created on first use)."""
        with self._lock:
            metrics = self._own.setdefault(monitor, {})
            metric = metrics.get(family.index)
            if metric is None:
                metric = metrics[family.index] = family.make()
            return metric

    def changed(self, monitor: str) -> None:
        """Note that a series of the monitor changed: its text is formatted again before it is served."""
        with self._lock:
            self._version[monitor] = self._version.get(monitor, 0) + 1

    def drop(self, monitor: str) -> None:
        """Remove every series of a monitor."""
        with self._lock:
            self._own.pop(monitor, None)
            self._text.pop(monitor, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            owned = [dict(metrics) for metrics in self._own.values()]
        for family in self.families:
            merged = family.make().collect()[0]
            for metrics in owned:
                if family.index in metrics:
                    merged.samples.extend(metrics[family.index].collect()[0].samples)
            yield merged

    def settle(self, monitor: str) -> None:
        """Format a monitor's samples now if they changed, so that the next scrape only copies them."""
        with self._lock:
            version, cached = self._version.get(monitor, 0), self._text.get(monitor)
            metrics = self._own.get(monitor)
            if metrics is None or (cached is not None and cached[0] == version):
                return
            metrics = dict(metrics)
        self._store(monitor, version, _format(metrics))

    def _store(self, monitor: str, version: int, text: _Text) -> None:
        with self._lock:
            cached = self._text.get(monitor)
            if monitor in self._own and (cached is None or cached[0] < version):
                self._text[monitor] = (version, text)

    def exposition(self) -> bytes:
        """The text of ``generate_latest`` over ``collect``, re-formatting only the monitors that changed."""
        with self._lock:
            owned = [(monitor, self._version.get(monitor, 0), dict(metrics), self._text.get(monitor))
                     for monitor, metrics in self._own.items()]
        texts = []
        for monitor, version, metrics, cached in owned:
            if cached is None or cached[0] != version:
                cached = (version, _format(metrics))
                self._store(monitor, *cached)
            texts.append(cached[1])
        parts = []
        for family in self.families:
            parts.append(family.header)
            extra: dict[bytes, list[bytes]] = {}
            for text in texts:
                sections = text.get(family.index)
                if sections:
                    parts.append(sections[0][1])
                    for header, lines in sections[1:]:
                        extra.setdefault(header, []).append(lines)
            for header in sorted(extra):  # generate_latest writes _created, _gcount, _gsum after the samples
                parts.append(header)
                parts.extend(extra[header])
        return b"".join(parts)


def _format(metrics: dict[int, MetricWrapperBase]) -> _Text:
    return {index: _sections(metric) for index, metric in metrics.items()}


def _sections(metric: MetricWrapperBase) -> list[tuple[bytes, bytes]]:
    """(HELP and TYPE lines, sample lines) of each section ``generate_latest`` writes for one metric.

    The first section holds the samples; the others (``_created`` …) follow it.
    """
    sections: list[tuple[bytes, bytes]] = []
    header: list[bytes] = []
    lines: list[bytes] = []
    for line in generate_latest(Families(metric.collect())).split(b"\n")[:-1]:  # escaped values hold no newline
        if line.startswith(b"# HELP "):
            if header:
                sections.append((b"".join(header), b"".join(lines)))
            header, lines = [line + b"\n"], []
        elif line.startswith(b"# TYPE "):
            header.append(line + b"\n")
        else:
            lines.append(line + b"\n")
    sections.append((b"".join(header), b"".join(lines)))
    return sections
