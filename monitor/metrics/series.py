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
        template = self.make()
        template.labels(*["x"] * len(labelnames))
        #: The HELP and TYPE lines of the sections written after the samples (``_created`` …), in order.
        self.extra_headers = tuple(header for header, _ in _sections(template)[1:])
        self._store = store
        store.families.append(self)

    def labels(self, monitor: str, *rest: str) -> Series:
        """The series of ``monitor`` with the other label values ``rest`` (created at zero on first use)."""
        child = self._store.own(monitor, self).labels(monitor, *rest)
        self._store.changed(monitor, self.index)  # a new series shows in the next scrape even before its first update
        return Series(child, lambda: self._store.changed(monitor, self.index))

    def remove(self, monitor: str, *rest: str) -> None:
        """Drop one series (``KeyError`` when it does not exist)."""
        self._store.own(monitor, self).remove(monitor, *rest)
        self._store.changed(monitor, self.index)


#: One monitor's formatted samples: family index → its sections (see ``_sections``).
_Text = dict[int, list[tuple[bytes, bytes]]]


class _Formatted:
    """One monitor's text as last formatted: each family's sections at the version it was read at, and
    the row of sample texts, one per slot of the exposition's layout (``MonitorSeries.layout``)."""

    __slots__ = ("total", "versions", "sections", "row")

    def __init__(self, total: int, versions: dict[int, int], sections: _Text, row: tuple[bytes, ...]) -> None:
        self.total = total  # the monitor's count of changes it is current at
        self.versions = versions
        self.sections = sections
        self.row = row


class MonitorSeries(Collector):
    """Every per-monitor metric: a monitor's series are formatted once per change, not at every scrape.

    ``collect`` yields each family with every monitor's samples (for ``generate_latest`` of a
    registry); ``exposition`` writes the same text from each monitor's samples as formatted at the
    version they were read at, re-formatting only the families of a monitor whose series were
    created, updated or removed since (every change bumps the family's version after the value
    changed). ``settle`` formats a monitor's changed families ahead of the scrape (at the end of its
    tick). Each monitor's text is kept as a row with one entry per section of the exposition, so a
    scrape joins columns (C loops) instead of visiting every monitor's every family in Python, and
    the whole text is kept until a series changes.
    """

    def __init__(self) -> None:
        self.families: list[PerMonitor] = []
        self._lock = threading.Lock()
        self._own: dict[str, dict[int, MetricWrapperBase]] = {}
        self._version: dict[str, dict[int, int]] = {}
        #: Each monitor's count of changes (all families): its text is current while it equals ``total``.
        self._total: dict[str, int] = {}
        self._text: dict[str, _Formatted] = {}
        self._layout: tuple[tuple[int, bytes, bool], ...] = ()
        self._layout_families = -1
        self._slots: dict[tuple[int, bytes], int] = {}
        #: Bumped by every change of any series: the cached exposition is current while it is unchanged.
        self.generation = 0
        self._cached: tuple[int, bytes] | None = None

    def own(self, monitor: str, family: PerMonitor) -> MetricWrapperBase:
        """The metric object holding ``monitor``'s series of ``family`` (created on first use)."""
        with self._lock:
            metrics = self._own.setdefault(monitor, {})
            metric = metrics.get(family.index)
            if metric is None:
                metric = metrics[family.index] = family.make()
            return metric

    def changed(self, monitor: str, family: int) -> None:
        """Note that a series of the monitor's ``family`` changed: it is formatted again before it is served."""
        with self._lock:
            versions = self._version.setdefault(monitor, {})
            versions[family] = versions.get(family, 0) + 1
            self._total[monitor] = self._total.get(monitor, 0) + 1
            self.generation += 1

    def drop(self, monitor: str) -> None:
        """Remove every series of a monitor."""
        with self._lock:
            self._own.pop(monitor, None)
            self._text.pop(monitor, None)
            self._version.pop(monitor, None)
            self._total.pop(monitor, None)
            self.generation += 1

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
        """Format a monitor's changed families now, so that the next scrape only copies them."""
        with self._lock:
            metrics = self._own.get(monitor)
            if metrics is None:
                return
            versions = dict(self._version.get(monitor, {}))
            total = self._total.get(monitor, 0)
            cached = self._text.get(monitor)
            stale = {} if cached is not None and cached.total == total else _stale(metrics, versions, cached)
        if stale:
            self._store(monitor, total, versions, _format(stale))

    def _store(self, monitor: str, total: int, versions: dict[int, int], text: _Text) -> None:
        """Keep what was formatted at ``versions``, family by family, unless a newer reading is kept already."""
        with self._lock:
            metrics = self._own.get(monitor)
            if metrics is None:
                return
            cached = self._text.get(monitor)
            kept_versions = dict(cached.versions) if cached is not None else {}
            sections = dict(cached.sections) if cached is not None else {}
            for index, family_sections in text.items():
                version = versions.get(index, 0)
                if cached is None or index not in cached.sections or kept_versions.get(index, -1) < version:
                    sections[index] = family_sections
                    kept_versions[index] = version
            sections = {index: value for index, value in sections.items() if index in metrics}
            total = max(total, cached.total) if cached is not None else total  # a newer reading may be kept
            self._text[monitor] = _Formatted(total, kept_versions, sections, self._row(sections))

    def layout(self) -> tuple[tuple[int, bytes, bool], ...]:
        """Every section of the exposition in order: (family index, its HELP and TYPE lines, is the main one).

        Families are all registered before the first monitor's series (``Metrics.__init__``).
        """
        if self._layout_families != len(self.families):
            layout = []
            for family in self.families:
                layout.append((family.index, family.header, True))
                layout.extend((family.index, header, False) for header in family.extra_headers)
            self._slots = {(index, b"" if main else header): slot
                           for slot, (index, header, main) in enumerate(layout)}
            self._layout, self._layout_families = tuple(layout), len(self.families)
        return self._layout

    def _row(self, sections: _Text) -> tuple[bytes, ...]:
        """One monitor's sample texts, one per slot of ``layout``."""
        row = [b""] * len(self.layout())
        for index, family_sections in sections.items():
            row[self._slots[(index, b"")]] = family_sections[0][1]
            for header, lines in family_sections[1:]:
                slot = self._slots.get((index, header))
                if slot is None:
                    raise ValueError(f"metric family {self.families[index].header.split()[2].decode()}: an "
                                     f"unexpected section {header.split()[2].decode()} (not in its template)")
                row[slot] = lines
        return tuple(row)

    def exposition(self) -> bytes:
        """The text of ``generate_latest`` over ``collect``, re-formatting only the families that changed."""
        generation = self.generation  # read first: a change from here on makes the next scrape build again
        cached = self._cached
        if cached is not None and cached[0] == generation:
            return cached[1]
        # no lock for monitors formatted since their last change (each copy is one C call under the
        # interpreter lock); texts are read before totals, so a text newer than its total is only checked again
        texts = self._text.copy()
        totals = self._total.copy()
        rows = []
        for monitor, metrics in list(self._own.items()):
            formatted = texts.get(monitor)
            if formatted is None or formatted.total != totals.get(monitor, 0):
                with self._lock:  # rare: a change since the monitor's tick formatted it
                    total, current = self._total.get(monitor, 0), dict(self._version.get(monitor, {}))
                    metrics = dict(metrics)
                stale = _stale(metrics, current, formatted)
                if stale:
                    self._store(monitor, total, current, _format(stale))
                formatted = self._text.get(monitor)
            if formatted is not None:
                rows.append(formatted.row)
        layout = self.layout()
        columns = zip(*rows) if rows else ((),) * len(layout)
        parts: list[bytes] = []
        for (_, header, main), column in zip(layout, columns):
            # generate_latest writes _created, _gcount, _gsum only when they have samples
            if main or any(column):
                parts.append(header)
                parts.extend(column)
        text = b"".join(parts)  # one copy, in one C call
        self._cached = (generation, text)
        return text

def _stale(metrics: dict[int, MetricWrapperBase], versions: dict[int, int],
           formatted: _Formatted | None) -> dict[int, MetricWrapperBase]:
    """The metric objects of a monitor whose text is older than their version (all of them when none is kept)."""
    if formatted is None:
        return dict(metrics)
    kept = formatted.versions
    return {index: metric for index, metric in metrics.items()
            if index not in formatted.sections or kept.get(index, -1) != versions.get(index, 0)}


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
