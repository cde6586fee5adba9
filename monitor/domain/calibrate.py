"""Power and false alarms for a monitor's own data: synthetic shifts injected into its reference."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from monitor.config import DriftConfig, FeaturesConfig, WindowConfig
from monitor.divergence import (
    CategoricalSummary,
    MultivariateMeasure,
    NumericSummary,
    ReferenceSummary,
    Score,
    adjust_p_values,
)
from monitor.domain.blocked import DEFAULT_SD_MULTIPLIER, BlockedCalibration, blocked_calibration
from monitor.domain.evaluate import MeasureSetting, evaluate_window
from monitor.domain.policy import DriftPolicy
from monitor.domain.reference import feature_values, summarize_rows, summarize_table

DEFAULT_WINDOW_SIZES = (200, 1000, 5000)
DEFAULT_REPETITIONS = 50
#: A shift counts as detectable at the smallest grade a measure flags in this share of windows.
POWER = 0.8
#: The mean shift (in reference standard deviations) a recommended window size must detect.
USEFUL_MEAN_SHIFT = 0.2
#: Distance of the shifted mixture component from the reference mean, in standard deviations.
MIXTURE_OFFSET = 3.0

#: Shift kind → (feature kind it applies to, or None for both; grades, weakest first).
SHIFTS: dict[str, tuple[str | None, tuple[float, ...]]] = {
    "mean": ("numeric", (0.05, 0.1, 0.2, 0.5, 1.0)),
    "scale": ("numeric", (1.1, 1.25, 1.5, 2.0)),
    "mixture": ("numeric", (0.02, 0.05, 0.1, 0.2, 0.4)),
    "reweight": ("categorical", (0.02, 0.05, 0.1, 0.2, 0.4)),
    "knockout": (None, (0.05, 0.1, 0.2, 0.5, 1.0)),
}
SHIFT_UNITS = {
    "mean": "reference std added",
    "scale": "factor on the spread",
    "mixture": f"share of rows moved {MIXTURE_OFFSET:g} std up",
    "reweight": "share of rows moved to the rarest category",
    "knockout": "share of values replaced by the mean / most common category",
}


@dataclass(frozen=True)
class MeasureCalibration:
    """One measure at one window size: false alarms, and power per shift kind and grade.

    ``votes`` is False for a distance at a size below ``drift.min_rows``: the monitor records it
    but never lets it flag, so it has no false alarms and no power there. ``effect`` is, per shift
    kind, the measure's median value (in its own units: KS D, PSI, …) at the smallest grade it
    detects with 80% power; ``min_effect`` the smallest of them — what ``min_effect`` can be set to
    without losing that power.
    """

    measure: str
    window_size: int
    is_test: bool
    threshold: float
    false_positive_rate: float
    trials: int
    window_false_positive_rate: float
    detectable: dict[str, float | None]
    power: dict[str, list[list[float]]]
    votes: bool = True
    effect: dict[str, float | None] = field(default_factory=dict)
    min_effect: float | None = None


@dataclass(frozen=True)
class CalibrationReport:
    """What ``calibrate`` found, what it recommends, and why."""

    reference_rows: int
    repetitions: int
    seed: int
    correction: str
    alpha: float
    window_sizes: list[int]
    results: list[MeasureCalibration]
    recommended_window_size: int
    recommended_measures: list[str]
    notes: list[str]
    #: Window size → share of shuffled windows in which the whole rule put the monitor in drift.
    alarm_rate: dict[int, float] = field(default_factory=dict)
    #: The time-ordered calibration on the monitor's own windows (None without a window to cut).
    blocked: BlockedCalibration | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (what is stored with the reference version)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationReport:
        """The report ``to_dict`` wrote."""
        results = [MeasureCalibration(**entry) for entry in data["results"]]
        blocked = data.get("blocked")
        return cls(**{**data, "results": results,
                      "alarm_rate": {int(size): rate for size, rate in data.get("alarm_rate", {}).items()},
                      "blocked": None if blocked is None else BlockedCalibration.from_dict(blocked)})

    def result(self, measure: str, window_size: int) -> MeasureCalibration:
        """The calibration of one measure at one window size; KeyError if not measured."""
        for entry in self.results:
            if entry.measure == measure and entry.window_size == window_size:
                return entry
        raise KeyError(f"no calibration of {measure!r} at {window_size} rows")


class _Tally:
    """Counts of flagged / tried, per measure and window size."""

    def __init__(self) -> None:
        self.counts: dict[tuple[Any, ...], list[int]] = {}

    def add(self, key: tuple[Any, ...], flagged: bool) -> None:
        count = self.counts.setdefault(key, [0, 0])
        count[0] += int(flagged)
        count[1] += 1

    def rate(self, key: tuple[Any, ...]) -> float | None:
        flagged, tried = self.counts.get(key, (0, 0))
        return flagged / tried if tried else None

    def tried(self, key: tuple[Any, ...]) -> int:
        return self.counts.get(key, (0, 0))[1]


def calibrate(
    table: pa.Table,
    kinds: Mapping[str, str],
    settings: Sequence[MeasureSetting],
    drift: DriftConfig,
    window_sizes: Sequence[int] = DEFAULT_WINDOW_SIZES,
    repetitions: int = DEFAULT_REPETITIONS,
    seed: int = 0,
    *,
    bins: int = 10,
    max_reference_rows: int = 100_000,
    alpha: float = 0.05,
    window: WindowConfig | None = None,
    multivariate_sample: int = 2_000,
    sd_multiplier: float = DEFAULT_SD_MULTIPLIER,
) -> CalibrationReport:
    """False-positive rates and the smallest detectable shifts of each measure, with the monitor's rule.

    Every repetition shuffles the rows and splits them into a reference part (summarised as a
    monitor would) and one window per size; the unshifted window measures false alarms, then
    each shift kind, grade by grade, is injected into one feature (round robin over the
    features it applies to) of the same rows. Power counts the windows in which the shifted
    feature is flagged after the across-feature correction; the per-feature false-positive rate
    is without it, the window rate (any feature flagged) with it, and the alarm rate is the share
    of windows in which the whole rule (``drift``: correction, ``min_rows``, share, consecutive
    windows) puts the monitor in drift. Distances do not vote below ``drift.min_rows``. A measure
    with ``threshold: auto`` is studied here at its default threshold.

    With ``window`` (the monitor's), the table's rows are also taken in time order, cut into the
    monitor's windows and measured against the rest of the reference (``blocked_calibration``):
    that study's false alarms carry over to autocorrelated data, and it derives the thresholds
    ``threshold: auto`` uses. Its window size joins the shuffled study's sizes. ``alpha`` is the
    false-alarm budget non-test measures are held to.
    """
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    features = FeaturesConfig(numeric=[n for n, k in kinds.items() if k == "numeric"],
                              categorical=[n for n, k in kinds.items() if k == "categorical"])
    summarize_table(table, features, bins, max_reference_rows, origin="the calibration sample")  # names bad columns
    blocked = None
    if window is not None:
        blocked = blocked_calibration(table, features, settings, drift, window, bins=bins,
                                      max_reference_rows=max_reference_rows, multivariate_sample=multivariate_sample,
                                      sd_multiplier=sd_multiplier)
        window_sizes = [*window_sizes, blocked.window_rows] if blocked.window_rows else window_sizes
    sizes = sorted({int(size) for size in window_sizes if size >= 2 and size <= table.num_rows // 2})
    if not sizes:
        raise ValueError(f"the reference sample has {table.num_rows} rows: a window size needs at most half "
                         f"of them (and 2 rows at least), got {sorted(window_sizes)}")
    plain = [replace(s, auto=False, threshold=s.measure.default_threshold) if s.auto else s for s in settings]
    multivariate = multivariate_sample if any(isinstance(s.measure, MultivariateMeasure) for s in plain) else None
    rng = np.random.default_rng(seed)
    reference_rows = min(table.num_rows - sizes[-1], max_reference_rows)
    false_alarms, window_alarms, detections = _Tally(), _Tally(), _Tally()
    effects: dict[tuple[Any, ...], list[float]] = {}
    policies = {size: DriftPolicy(drift) for size in sizes}
    alarms = _Tally()
    for repetition in range(repetitions):
        order = rng.permutation(table.num_rows)
        summary, _ = summarize_rows(table.take(pa.array(order[:reference_rows])), features, bins,
                                    max_reference_rows, "the calibration sample", multivariate)
        for size in sizes:
            window_rows = table.take(pa.array(order[reference_rows:reference_rows + size]))
            unshifted = evaluate_window(window_rows, kinds, summary, plain, drift.correction, min_rows=drift.min_rows)
            decision = policies[size].decide(unshifted.feature_drifted, multivariate_drift=unshifted.multivariate_drift)
            alarms.add((size,), decision.state == "drift")
            counts = {name: len(feature_values(window_rows, name, kinds[name])) for name in unshifted.feature_drifted}
            raw_p: dict[tuple[str, str], float] = {}
            for result in unshifted.results:
                setting = _setting(plain, result.measure)
                votes = setting.measure.is_test or counts.get(result.feature, size) >= drift.min_rows
                raw = votes and setting.decide(result.feature, Score(result.value, result.p_value))[1]
                false_alarms.add((result.measure, size), raw)
                if result.p_value is not None:
                    raw_p[(result.measure, result.feature)] = result.p_value
            for setting in plain:
                flagged = any(r.drifted for r in unshifted.results if r.measure == setting.measure.name)
                if any(r.measure == setting.measure.name for r in unshifted.results):
                    window_alarms.add((setting.measure.name, size), flagged)
            for kind, (applies_to, grades) in SHIFTS.items():
                targets = [name for name, k in kinds.items() if applies_to in (None, k) and name in summary.features]
                if not targets:
                    continue
                target = targets[repetition % len(targets)]
                values = feature_values(window_rows, target, kinds[target])
                if len(values) == 0:
                    continue
                draws = rng.random(len(values))  # shared by the grades: a stronger one shifts a superset
                shifted = [pa.table({target: _shift(kind, grade, values, summary.features[target], draws)})
                           for grade in grades]
                for setting in plain:
                    if kinds[target] not in getattr(setting.measure, "kinds", ()):
                        continue
                    flagged = False
                    for grade, rows in zip(grades, shifted):
                        key = (setting.measure.name, size, kind, grade)
                        hit, value = _detects(setting, rows, target, kinds[target], summary, raw_p, drift)
                        if value is not None:
                            effects.setdefault(key, []).append(value)
                        # grades are nested, so once a grade is flagged the stronger ones are taken as flagged
                        flagged = flagged or hit
                        detections.add(key, flagged)
    results = _summarise(plain, sizes, false_alarms, window_alarms, detections, effects, drift.min_rows)
    window_size, measures, notes = _recommend(results, sizes, alpha)
    skipped = sorted({int(size) for size in window_sizes} - set(sizes))
    if skipped:
        notes.insert(0, f"window sizes {', '.join(map(str, skipped))} skipped: a window may take at most half of "
                        f"the {table.num_rows} sample rows (the rest is the reference); give a larger sample")
    return CalibrationReport(reference_rows=reference_rows, repetitions=repetitions, seed=seed,
                             correction=drift.correction, alpha=alpha, window_sizes=sizes, results=results,
                             recommended_window_size=window_size, recommended_measures=measures, notes=notes,
                             alarm_rate={size: alarms.rate((size,)) or 0.0 for size in sizes}, blocked=blocked)


def _setting(settings: Sequence[MeasureSetting], name: str) -> MeasureSetting:
    return next(setting for setting in settings if setting.measure.name == name)


def _detects(setting: MeasureSetting, rows: pa.Table, target: str, kind: str, summary: ReferenceSummary,
             raw_p: Mapping[tuple[str, str], float], drift: DriftConfig) -> tuple[bool, float | None]:
    """Whether the monitor would flag the shifted feature (its p-value corrected with the others'), and its value."""
    scored = evaluate_window(rows, {target: kind}, summary, [setting], "none").results
    if not scored:
        return False, None
    value, p_value = scored[0].value, scored[0].p_value
    if p_value is not None and setting.measure.is_test:
        others = [p for (name, feature), p in raw_p.items() if name == setting.measure.name and feature != target]
        p_value = float(adjust_p_values([p_value, *others], drift.correction)[0])
    votes = setting.measure.is_test or rows.num_rows >= drift.min_rows
    return votes and setting.decide(target, Score(value, p_value))[1], value


def _shift(kind: str, grade: float, values: np.ndarray, reference: Any, draws: np.ndarray) -> np.ndarray:
    """``values`` with one synthetic shift of ``kind`` and strength ``grade``; ``draws`` pick the rows."""
    share = draws < grade
    if isinstance(reference, CategoricalSummary):
        counts = np.asarray(reference.counts)
        target = reference.categories[int(np.argmin(counts))] if kind == "reweight" else \
            reference.categories[int(np.argmax(counts))]
        shifted = values.copy()
        shifted[share] = target
        return shifted
    assert isinstance(reference, NumericSummary)
    spread = reference.std if reference.std > 0 else 1.0
    transforms: dict[str, Callable[[], np.ndarray]] = {
        "mean": lambda: values + grade * spread,
        "scale": lambda: reference.mean + (values - reference.mean) * grade,
        "mixture": lambda: np.where(share, values + MIXTURE_OFFSET * spread, values),
        "knockout": lambda: np.where(share, reference.mean, values),
    }
    return transforms[kind]()


def _summarise(settings: Sequence[MeasureSetting], sizes: list[int], false_alarms: _Tally,
               window_alarms: _Tally, detections: _Tally, effects: Mapping[tuple[Any, ...], list[float]],
               min_rows: int) -> list[MeasureCalibration]:
    results = []
    for setting in settings:
        name = setting.measure.name
        for size in sizes:
            fpr = false_alarms.rate((name, size))
            if fpr is None:
                continue
            power: dict[str, list[list[float]]] = {}
            detectable: dict[str, float | None] = {}
            effect: dict[str, float | None] = {}
            for kind, (_, grades) in SHIFTS.items():
                curve = [[grade, rate] for grade in grades
                         if (rate := detections.rate((name, size, kind, grade))) is not None]
                if curve:
                    power[kind] = curve
                    detectable[kind] = next((grade for grade, rate in curve if rate >= POWER), None)
                    values = effects.get((name, size, kind, detectable[kind]), [])
                    median = float(np.median(values)) if detectable[kind] is not None and values else None
                    # JSON in PostgreSQL has no Infinity: an infinite statistic (welch_t) says no size here
                    effect[kind] = median if median is not None and np.isfinite(median) else None
            found = [value for value in effect.values() if value is not None]
            smallest = min if setting.measure.higher_is_drift else max
            results.append(MeasureCalibration(
                measure=name, window_size=size, is_test=setting.measure.is_test, threshold=setting.threshold,
                false_positive_rate=fpr, trials=false_alarms.tried((name, size)),
                window_false_positive_rate=window_alarms.rate((name, size)) or 0.0,
                detectable=detectable, power=power, votes=setting.measure.is_test or size >= min_rows,
                effect=effect, min_effect=smallest(found) if found else None))
    return results


def _budget(entry: MeasureCalibration, alpha: float) -> float:
    return entry.threshold if entry.is_test else alpha


def _rate_interval(entry: MeasureCalibration, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of the false-positive rate: a few dozen trials say little on their own."""
    n, p = entry.trials, entry.false_positive_rate
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _calibrated(entry: MeasureCalibration) -> bool:
    """A test whose false-positive rate may lie within 0.5..1.5 times its alpha."""
    low, high = _rate_interval(entry)
    return low <= 1.5 * entry.threshold and high >= 0.5 * entry.threshold


def _within_budget(entry: MeasureCalibration, alpha: float) -> bool:
    """A measure whose false-positive rate may be at most 1.5 times its budget."""
    return _rate_interval(entry)[0] <= 1.5 * _budget(entry, alpha)


def _recommend(results: list[MeasureCalibration], sizes: list[int], alpha: float) -> tuple[int, list[str], list[str]]:
    """The window size, the measures, and the reasons.

    The window size is the smallest whose tests' false-positive rates lie within 0.5..1.5 times
    their alpha and at which a measure within its false-alarm budget detects a 0.2-std mean
    shift, else the largest tried. The measures are those within 1.5 times their budget at that
    size that detect some kind of shift at the smallest grade of all of them. A rate counts as
    within a range when its 95% interval reaches into it.
    """
    notes: list[str] = []
    chosen = sizes[-1]
    for size in sizes:
        here = [e for e in results if e.window_size == size]
        tests_calibrated = all(_calibrated(e) for e in here if e.is_test)
        sees_useful_shift = any(_within_budget(e, alpha) and (e.detectable.get("mean") or np.inf) <= USEFUL_MEAN_SHIFT
                                for e in here)
        if tests_calibrated and sees_useful_shift:
            chosen = size
            notes.append(f"window of {size} rows: the smallest tried whose tests keep their false-alarm rate "
                         f"near alpha and that detects a {USEFUL_MEAN_SHIFT:g}-std mean shift with "
                         f"{POWER:.0%} power")
            break
    else:
        notes.append(f"no window size tried both keeps the tests' false alarms near alpha and detects a "
                     f"{USEFUL_MEAN_SHIFT:g}-std mean shift: recommending the largest tried, {chosen} rows")
    at_chosen = [e for e in results if e.window_size == chosen]
    for entry in results:
        budget = _budget(entry, alpha)
        if not _within_budget(entry, alpha):
            advice = "raise its threshold or use a larger window" if not entry.is_test else \
                "the test is anti-conservative on these data (ties, or rows that are not independent?)"
            notes.append(f"{entry.measure} flags {entry.false_positive_rate:.0%} of unshifted features at "
                         f"{entry.window_size} rows (budget {budget:.0%}): {advice}")
        mean = entry.detectable.get("mean")
        if entry.is_test and mean is not None and mean <= min(SHIFTS["mean"][1]):
            notes.append(f"{entry.measure} flags {mean:g}-std mean shifts at {entry.window_size} rows: "
                         "statistically real but practically tiny; consider psi/wasserstein thresholds or a "
                         "smaller window")
    calm = [e for e in at_chosen if _within_budget(e, alpha)]
    measures: set[str] = set()
    for kind in SHIFTS:
        found = [(e.detectable[kind], e.measure) for e in calm if e.detectable.get(kind) is not None]
        if found:
            best = min(grade for grade, _ in found)
            measures.update(name for grade, name in found if grade == best)
    if calm and not measures:
        notes.append(f"no measure within its false-alarm budget reaches {POWER:.0%} power at {chosen} rows "
                     "for any shift tried")
    elif not calm:
        notes.append(f"every measure exceeds its false-alarm budget at {chosen} rows")
    order = [e.measure for e in at_chosen]
    recommended = sorted(measures, key=order.index)
    if recommended:
        notes.append(f"measures {', '.join(recommended)}: within their false-alarm budget and the most "
                     f"powerful for at least one kind of shift at {chosen} rows")
    return chosen, recommended, notes
