"""Time-ordered calibration: the reference's own contiguous windows as the null, and auto thresholds.

Shuffling rows hides what a real series does between windows (seasons, slow changes, bursts): on
autocorrelated data a window differs from the rest of the reference far more than a random sample
of its rows would, so a false-alarm rate measured on shuffled windows does not carry over. Here the
reference keeps its order (the monitor's ``window.timestamp`` column, else the file's order), is
cut into windows the way the monitor cuts live rows, and each window is measured against the rest
of the reference (leave-one-out) with the monitor's rule: thresholds, correction, ``min_rows``,
drift share and consecutive windows.

The threshold recommended for a measure and a feature is ``mean + k·sd`` of the measure's
statistic (the result's value: KS D, PSI, …, for tests too) over those windows, ``k`` = 3 by
default (``mean - k·sd`` for a measure where a lower value means drift) — as NannyML derives
thresholds from reference chunks. ``threshold: auto`` uses it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from monitor.config import DriftConfig, FeaturesConfig, WindowConfig
from monitor.divergence import MultivariateMeasure, Score
from monitor.domain.evaluate import MeasureSetting, evaluate_window
from monitor.domain.policy import DriftPolicy
from monitor.domain.records import ALL_FEATURES, ResultRecord
from monitor.domain.reference import ReferenceDataError, feature_kinds, feature_values, summarize_rows
from monitor.domain.windows import WindowError, epoch_seconds

#: The multiple of the statistic's standard deviation over reference windows added to its mean.
DEFAULT_SD_MULTIPLIER = 3.0
#: Contiguous reference windows (with a finite statistic) needed before a threshold is derived.
MIN_WINDOWS = 10


@dataclass(frozen=True)
class AutoThreshold:
    """A feature's threshold on one measure's statistic, and the reference windows it came from."""

    threshold: float
    mean: float
    sd: float
    windows: int


@dataclass(frozen=True)
class BlockedMeasure:
    """One measure over the contiguous reference windows."""

    measure: str
    is_test: bool
    threshold: float
    auto: bool
    window_fpr: float | None
    feature_fpr: float | None
    holdout_auto_window_fpr: float | None
    thresholds: dict[str, AutoThreshold] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockedMeasure:
        """The entry ``asdict`` wrote."""
        thresholds = {name: AutoThreshold(**entry) for name, entry in data["thresholds"].items()}
        return cls(**{**data, "thresholds": thresholds})


@dataclass(frozen=True)
class BlockedCalibration:
    """What the reference's own windows say: false alarms in time order, and auto thresholds.

    ``threshold`` and the rates of a measure with ``threshold: auto`` are at the measure's default
    threshold; ``holdout_auto_window_fpr`` applies thresholds derived from the earlier half of the
    windows to the later half (an honest estimate: in-sample thresholds flatter themselves).
    ``alarm_rate`` is the share of windows in which the whole rule puts the monitor in drift (auto
    measures at their thresholds from all windows); ``holdout_alarm_rate`` the same over the later
    half with thresholds from the earlier half (None without an auto measure).
    """

    window: dict[str, Any]
    ordered_by: str
    windows: int
    window_rows: int
    sd_multiplier: float
    measures: list[BlockedMeasure]
    alarm_rate: float | None
    holdout_alarm_rate: float | None
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockedCalibration:
        """The form ``to_dict`` wrote."""
        return cls(**{**data, "measures": [BlockedMeasure.from_dict(entry) for entry in data["measures"]]})

    def measure(self, name: str) -> BlockedMeasure:
        """One measure's entry; KeyError when it was not calibrated."""
        for entry in self.measures:
            if entry.measure == name:
                return entry
        raise KeyError(f"no time-ordered calibration of {name!r}")


@dataclass(frozen=True)
class _Window:
    """One reference window measured against the rest: its results and usable values per feature."""

    results: list[ResultRecord]
    counts: dict[str, int]


def window_key(window: WindowConfig) -> dict[str, Any]:
    """How a monitor cuts windows, as stored with a calibration (auto thresholds hold for these only)."""
    return {"rows": window.rows} if window.rows is not None else {"span": window.span, "timestamp": window.timestamp}


def in_time_order(table: pa.Table, timestamp: str | None) -> tuple[pa.Table, str]:
    """The rows in time order by ``timestamp`` (stable), else as given; and which order that is."""
    if timestamp is None:
        return table, "file order"
    if timestamp not in table.column_names:
        raise ReferenceDataError(f"the reference has no column {timestamp!r} (window.timestamp) to put it in "
                                 "time order")
    try:
        seconds = epoch_seconds(table.column(timestamp), timestamp)
    except WindowError as error:
        raise ReferenceDataError(str(error)) from None
    return table.take(pa.array(np.argsort(seconds, kind="stable"))), f"timestamp column {timestamp!r}"


def window_bounds(table: pa.Table, window: WindowConfig) -> list[tuple[int, int]]:
    """Row ranges of the complete windows of an ordered table, cut as the monitor cuts live rows.

    Windows of ``rows`` rows, or aligned to multiples of ``span`` seconds of the timestamp; the
    last (still open) span window is left out, as the monitor would wait for it.
    """
    if window.rows is not None:
        return [(start, start + window.rows) for start in range(0, table.num_rows - window.rows + 1, window.rows)]
    assert window.span is not None and window.timestamp is not None
    bucket = np.floor(epoch_seconds(table.column(window.timestamp), window.timestamp) / window.span)
    edges = [0, *(np.flatnonzero(np.diff(bucket)) + 1).tolist()]
    return list(itertools.pairwise(edges))


def blocked_calibration(table: pa.Table, features: FeaturesConfig, settings: Sequence[MeasureSetting],
                        drift: DriftConfig, window: WindowConfig, *, bins: int, max_reference_rows: int,
                        multivariate_sample: int = 2_000,
                        sd_multiplier: float = DEFAULT_SD_MULTIPLIER) -> BlockedCalibration:
    """Measure each contiguous window of the ordered reference against the rest, with the monitor's rule."""
    table, ordered_by = in_time_order(table, window.timestamp)
    bounds = window_bounds(table, window)
    plain = [replace(s, auto=False, threshold=s.measure.default_threshold) if s.auto else s for s in settings]
    multivariate = multivariate_sample if any(isinstance(s.measure, MultivariateMeasure) for s in settings) else None
    windows = [_measure_window(table, start, end, features, plain, drift, bins, max_reference_rows, multivariate)
               for start, end in bounds]
    half = len(windows) // 2
    thresholds = {s.measure.name: _thresholds(windows, s, sd_multiplier) for s in plain}
    early = {s.measure.name: _thresholds(windows[:half], s, sd_multiplier) for s in plain}
    measures = [_measure_entry(configured, setting, windows[half:] if early[setting.measure.name] else [],
                               windows, thresholds[setting.measure.name], early[setting.measure.name], drift)
                for configured, setting in zip(settings, plain)]
    notes = [f"{m.measure}: no threshold for {', '.join(unmeasured)}: fewer than {MIN_WINDOWS} reference windows "
             "with a finite statistic" for m in measures
             if (unmeasured := sorted({r.feature for w in windows for r in w.results if r.measure == m.measure}
                                      - set(m.thresholds)))]
    if len(windows) < MIN_WINDOWS:
        notes.insert(0, f"the reference gives {len(windows)} complete windows of {_describe(window)}: thresholds "
                        f"need {MIN_WINDOWS} at least (30 or more make them steadier); give a longer reference")
    any_auto = any(s.auto for s in settings)
    return BlockedCalibration(
        window=window_key(window), ordered_by=ordered_by, windows=len(windows),
        window_rows=int(np.median([end - start for start, end in bounds])) if bounds else 0,
        sd_multiplier=sd_multiplier, measures=measures,
        alarm_rate=_alarm_rate(windows, settings, plain, thresholds, drift),
        holdout_alarm_rate=(_alarm_rate(windows[half:], settings, plain, early, drift)
                            if any_auto and half >= MIN_WINDOWS else None),
        notes=notes)


def _measure_window(table: pa.Table, start: int, end: int, features: FeaturesConfig,
                    settings: Sequence[MeasureSetting], drift: DriftConfig, bins: int, max_reference_rows: int,
                    multivariate_sample: int | None) -> _Window:
    """Rows ``start:end`` measured against a reference summarised from every other row, as the monitor would."""
    rest = pa.concat_tables([table.slice(0, start), table.slice(end)])
    summary, _ = summarize_rows(rest, features, bins, max_reference_rows, "the rest of the reference",
                                multivariate_sample)
    rows = table.slice(start, end - start)
    kinds = feature_kinds(features)
    evaluation = evaluate_window(rows, kinds, summary, list(settings), drift.correction, min_rows=drift.min_rows)
    counts = {name: len(feature_values(rows, name, kinds[name])) for name in evaluation.feature_drifted}
    return _Window(evaluation.results, counts)


def _measure_entry(configured: MeasureSetting, setting: MeasureSetting, held_out: Sequence[_Window],
                   windows: Sequence[_Window], thresholds: dict[str, AutoThreshold],
                   early: Mapping[str, AutoThreshold], drift: DriftConfig) -> BlockedMeasure:
    """One measure's rates at its (configured or default) threshold, held-out auto rate, and thresholds."""
    name = setting.measure.name
    flags = [[r.drifted for r in w.results if r.measure == name] for w in windows]
    late = [list(_auto_flags(w, setting, early, drift.min_rows).values()) for w in held_out]
    return BlockedMeasure(
        measure=name, is_test=setting.measure.is_test, threshold=setting.threshold, auto=configured.auto,
        window_fpr=_share([any(f) for f in flags if f]), feature_fpr=_share([x for f in flags for x in f]),
        holdout_auto_window_fpr=_share([any(f) for f in late if f]), thresholds=thresholds)


def _describe(window: WindowConfig) -> str:
    return f"{window.rows} rows" if window.rows is not None else f"{window.span:g} s of {window.timestamp!r}"


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def derive_threshold(values: Sequence[float], higher_is_drift: bool,
                     sd_multiplier: float = DEFAULT_SD_MULTIPLIER) -> AutoThreshold | None:
    """``mean ± k·sd`` of the finite values (None when fewer than ``MIN_WINDOWS``)."""
    finite = np.asarray([value for value in values if math.isfinite(value)], dtype=np.float64)
    if len(finite) < MIN_WINDOWS:
        return None
    mean, sd = float(finite.mean()), float(finite.std(ddof=1))
    threshold = mean + sd_multiplier * sd if higher_is_drift else mean - sd_multiplier * sd
    return AutoThreshold(threshold=threshold, mean=mean, sd=sd, windows=len(finite))


def _thresholds(windows: Sequence[_Window], setting: MeasureSetting, k: float) -> dict[str, AutoThreshold]:
    """Each feature's threshold on the measure's statistic over these windows."""
    values: dict[str, list[float]] = {}
    for window in windows:
        for result in window.results:
            if result.measure == setting.measure.name:
                values.setdefault(result.feature, []).append(result.value)
    found = {name: derive_threshold(series, setting.measure.higher_is_drift, k) for name, series in values.items()}
    return {name: threshold for name, threshold in found.items() if threshold is not None}


def _auto_flags(window: _Window, setting: MeasureSetting, thresholds: Mapping[str, AutoThreshold],
                min_rows: int) -> dict[str, bool]:
    """The measure's verdict per feature (that has a threshold) with auto thresholds, as the monitor decides it."""
    bound = replace(setting, auto=True, threshold=math.nan,
                    feature_thresholds={name: entry.threshold for name, entry in thresholds.items()})
    flags = {}
    for result in window.results:
        if result.measure != setting.measure.name or result.feature not in thresholds:
            continue
        votes = setting.measure.is_test or result.feature == ALL_FEATURES or window.counts[result.feature] >= min_rows
        flags[result.feature] = votes and bound.decide(result.feature, Score(result.value, result.p_value_adjusted))[1]
    return flags


def _alarm_rate(windows: Sequence[_Window], settings: Sequence[MeasureSetting], plain: Sequence[MeasureSetting],
                thresholds: Mapping[str, Mapping[str, AutoThreshold]], drift: DriftConfig) -> float | None:
    """The share of windows the whole rule (share, consecutive, sequential) puts the monitor in drift.

    Measures with ``threshold: auto`` decide with ``thresholds``, the others as configured.
    """
    if not windows:
        return None
    policy = DriftPolicy(drift)
    in_drift = 0
    for window in windows:
        drifted = {name: False for name in window.counts}
        multivariate = False
        for configured, setting in zip(settings, plain):
            name = setting.measure.name
            auto = _auto_flags(window, setting, thresholds[name], drift.min_rows) if configured.auto else None
            for result in (r for r in window.results if r.measure == name):
                flagged = result.drifted if auto is None else auto.get(result.feature, False)
                if result.feature == ALL_FEATURES:
                    multivariate = multivariate or flagged
                else:
                    drifted[result.feature] = drifted[result.feature] or flagged
        in_drift += policy.decide(drifted, multivariate_drift=multivariate).state == "drift"
    return in_drift / len(windows)
