"""The measure kit: ``check_measure`` runs the measure contract on seeded data, as the engine would call it.

It checks the class attributes, the types of each ``Score``, determinism, that no ordinary window
yields a NaN (the engine would record a failure for every window, never a verdict), p-values in
0..1, and for tests a scipy-style spot check of the false-positive rate on data that does not drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.divergence import (
    CategoricalWindow,
    Measure,
    MultivariateMeasure,
    NumericWindow,
    Score,
    summarize_categorical,
    summarize_multivariate,
    summarize_numeric,
)

_FEATURE_KINDS = frozenset({"numeric", "categorical"})
_CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
_CATEGORY_P = np.array([0.4, 0.25, 0.15, 0.12, 0.08])


@dataclass(frozen=True)
class MeasureCheck:
    """What ``check_measure`` saw: the false-positive rate of each kind it checked (tests only)."""

    false_positive_rate: dict[str, float]
    null_runs: int


def check_measure(measure: Any, *, null_runs: int | None = None, alpha: float = 0.05, seed: int = 0) -> MeasureCheck:
    """Assert the measure contract for ``measure`` (a ``Measure`` or ``MultivariateMeasure`` instance).

    ``null_runs`` windows of data that does not drift are scored for the false-positive spot check
    of a test (default: 300 per feature kind, 60 for a multivariate measure). AssertionError names
    the measure and the promise it broke.
    """
    multivariate = isinstance(measure, MultivariateMeasure)
    _check_attributes(measure, multivariate)
    kinds = ["multivariate"] if multivariate else sorted(measure.kinds)
    runs = null_runs if null_runs is not None else (60 if multivariate else 300)
    rates = {}
    for kind in kinds:
        data = _Data(kind, seed)
        for case, (reference, window) in data.cases().items():
            first = _scored(measure, reference, window, f"{kind} {case}")
            again = _scored(measure, reference, window, f"{kind} {case} (scored again)")
            _same(measure, first, again, f"{kind} {case}")
            rebuilt = _scored(measure, *data.cases()[case], f"{kind} {case} (inputs built again)")
            _same(measure, first, rebuilt, f"{kind} {case} (inputs built again)")
        null = _scored(measure, *data.null(), f"{kind} window without drift")
        shifted = _scored(measure, *data.shifted(), f"{kind} shifted window")
        _more_drifted(measure, null, shifted, kind)
        if measure.is_test:
            rates[kind] = _false_positive_rate(measure, data, runs, alpha, kind)
    return MeasureCheck(rates, runs)


def _check_attributes(measure: Any, multivariate: bool) -> None:
    def fail(why: str) -> None:
        raise AssertionError(f"measure {getattr(measure, 'name', type(measure).__name__)!r}: {why}")

    if not isinstance(measure, (Measure, MultivariateMeasure)):
        fail(f"is a {type(measure).__name__}, not an instance of monitor.plugin.Measure or MultivariateMeasure")
    name = getattr(measure, "name", None)
    if not isinstance(name, str) or not name.strip():
        fail("class attribute 'name' must be a non-empty string (the name users write in 'measures')")
    for attribute in ("is_test", "higher_is_drift"):
        if not isinstance(getattr(measure, attribute, None), bool):
            fail(f"class attribute {attribute!r} must be True or False")
    kinds = getattr(measure, "kinds", None)
    expected = frozenset({"multivariate"}) if multivariate else _FEATURE_KINDS
    if not isinstance(kinds, (set, frozenset)) or not kinds or not kinds <= expected:
        fail(f"class attribute 'kinds' must be a non-empty frozenset of {sorted(expected)}, got {kinds!r}")
    threshold = getattr(measure, "default_threshold", None)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        fail(f"class attribute 'default_threshold' must be a finite number, got {threshold!r}")
    if measure.is_test and not 0 < threshold < 1:
        fail(f"is a test, so its default_threshold is a significance level in (0, 1), got {threshold!r}")
    if not isinstance(getattr(measure, "description", None), str) or not measure.description.strip():
        fail("class attribute 'description' must be a non-empty string (driftd plugins shows it)")
    backends = getattr(measure, "backends", None)
    if not isinstance(backends, (set, frozenset)) or "numpy" not in backends:
        fail(f"class attribute 'backends' must be a frozenset that holds 'numpy', got {backends!r}")
    if not isinstance(getattr(measure, "counts_only", False), bool):
        fail("class attribute 'counts_only' must be True or False")


class _Data:
    """Seeded references and windows of one feature kind."""

    def __init__(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.seed = seed
        self.reference_rows = 1000 if kind != "multivariate" else 200
        self.window_rows = 200 if kind != "multivariate" else 100
        self.reference_values = self._draw(np.random.default_rng(seed), self.reference_rows)

    def _draw(self, rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
        if self.kind == "numeric":
            return rng.normal(shift, 1.0, rows)
        if self.kind == "categorical":
            p = _CATEGORY_P if not shift else _CATEGORY_P[::-1]
            return rng.choice(_CATEGORIES, size=rows, p=p)
        return rng.normal(shift, 1.0, (rows, 3))

    def reference(self, values: np.ndarray | None = None) -> Any:
        values = self.reference_values if values is None else values
        if self.kind == "numeric":
            return summarize_numeric(values)
        if self.kind == "categorical":
            return summarize_categorical(values)
        return summarize_multivariate(values, ("x0", "x1", "x2"), max_sample=len(values), seed=self.seed)

    def window(self, values: np.ndarray) -> Any:
        if self.kind == "numeric":
            return NumericWindow(np.asarray(values, dtype=np.float64))
        if self.kind == "categorical":
            return CategoricalWindow.from_values(np.asarray(values, dtype=object))
        return np.asarray(values, dtype=np.float64)

    def cases(self) -> dict[str, tuple[Any, Any]]:
        """Ordinary windows a daemon meets: small and large, constant, beyond the reference, new categories."""
        rng = np.random.default_rng(self.seed + 1)
        windows = {"200-row window": self._draw(rng, 200), "30-row window": self._draw(rng, 30),
                   "shifted window": self._draw(rng, 200, shift=1.0)}
        if self.kind == "numeric":
            windows["constant window"] = np.full(50, 0.5)
            windows["window beyond the reference's range"] = rng.normal(10.0, 1.0, 100)
        elif self.kind == "categorical":
            windows["one-category window"] = np.array(["a"] * 50, dtype=object)
            windows["window with a category the reference never had"] = np.array(["a", "zz"] * 50, dtype=object)
        return {case: (self.reference(), self.window(values)) for case, values in windows.items()}

    def null(self, rng: np.random.Generator | None = None) -> tuple[Any, Any]:
        """A fresh reference and a window from the same distribution (a two-sample test holds its level
        over both samples' draws, as scipy's tests draw them)."""
        rng = rng or np.random.default_rng(self.seed + 2)
        return (self.reference(self._draw(rng, self.reference_rows)),
                self.window(self._draw(rng, self.window_rows)))

    def shifted(self) -> tuple[Any, Any]:
        rng = np.random.default_rng(self.seed + 3)
        return self.reference(), self.window(self._draw(rng, self.window_rows, shift=1.0))


def _scored(measure: Any, reference: Any, window: Any, case: str) -> Score:
    """The measure's score of one case, checked as the engine checks every result before it votes."""
    name = measure.name
    try:
        score = measure.score(reference, window)
    except Exception as error:  # noqa: BLE001 - the check reports any exception by case
        raise AssertionError(f"measure {name!r} raised on the {case}: {type(error).__name__}: {error}") from error
    if not isinstance(score, Score):
        raise AssertionError(f"measure {name!r} returned a {type(score).__name__} on the {case}, "
                             "not a monitor.plugin.Score")
    if isinstance(score.value, bool) or not isinstance(score.value, (int, float, np.floating, np.integer)):
        raise AssertionError(f"measure {name!r}: on the {case} its value {score.value!r} is not a number")
    if math.isnan(score.value):
        raise AssertionError(f"measure {name!r}: on the {case} its value is NaN: the daemon would record a failure "
                             "for such a window, never a verdict; return a number, or raise where the measure "
                             "cannot be computed")
    if score.p_value is None:
        if measure.is_test:
            raise AssertionError(f"measure {name!r} is a test but returned no p-value on the {case}")
        return score
    if isinstance(score.p_value, bool) or not isinstance(score.p_value, (int, float, np.floating, np.integer)):
        raise AssertionError(f"measure {name!r}: on the {case} its p-value {score.p_value!r} is not a number")
    if math.isnan(score.p_value):
        raise AssertionError(f"measure {name!r}: on the {case} its p-value is NaN: the daemon would record a failure "
                             "for such a window, never 'no drift'")
    if not 0.0 <= score.p_value <= 1.0:
        raise AssertionError(f"measure {name!r}: on the {case} its p-value is {score.p_value!r}, outside 0..1")
    return score


def _same(measure: Any, first: Score, again: Score, case: str) -> None:
    if (float(first.value), first.p_value) != (float(again.value), again.p_value):
        raise AssertionError(f"measure {measure.name!r} is not deterministic: the {case} scored {first} and then "
                             f"{again}; seed any randomness from the inputs (e.g. numpy.random.default_rng(0))")


def _drift_order(measure: Any, score: Score) -> float:
    """Larger means more drifted: the p-value turned round for a test, else the value in its direction."""
    if measure.is_test:
        return -float(score.p_value)  # type: ignore[arg-type]
    return float(score.value) if measure.higher_is_drift else -float(score.value)


def _more_drifted(measure: Any, null: Score, shifted: Score, kind: str) -> None:
    if _drift_order(measure, shifted) < _drift_order(measure, null):
        direction = "p-value" if measure.is_test else ("value" if measure.higher_is_drift else "value (lower is drift)")
        raise AssertionError(f"measure {measure.name!r}: a {kind} window shifted far from the reference scores "
                             f"as less drifted than one without drift ({direction}: {shifted} vs {null}); "
                             "check higher_is_drift and the statistic's sign")


def _false_positive_rate(measure: Any, data: _Data, runs: int, alpha: float, kind: str) -> float:
    """Windows drawn from the reference's own distribution: a test flags about ``alpha`` of them.

    As in scipy's own tests of its hypothesis tests: the rate may not exceed alpha by more than
    four binomial standard deviations, nor stay below a quarter of alpha (a test that never
    flags is broken too). A NaN p-value is a failure here, never a window without drift.
    """
    rng = np.random.default_rng(data.seed + 4)
    flagged = sum(_scored(measure, *data.null(rng), f"{kind} window without drift #{run}").p_value < alpha
                  for run in range(runs))
    rate = flagged / runs
    high = alpha + 4 * math.sqrt(alpha * (1 - alpha) / runs)
    low = alpha / 4 if runs * alpha >= 10 else 0.0
    if rate > high or rate < low:
        raise AssertionError(f"measure {measure.name!r}: on {kind} data that does not drift it flagged {flagged} of "
                             f"{runs} windows at alpha {alpha} ({rate:.3f}); a test holding its level flags between "
                             f"{low:.3f} and {high:.3f}")
    return rate
