"""``monitor.testing.check_measure``: every built-in measure passes it, and each broken measure fails it
with a message naming the measure and the promise it broke."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from monitor.divergence import BUILTIN, Measure, Score
from monitor.divergence.base import numeric_pair
from monitor.divergence.ecdf import KolmogorovSmirnov
from monitor.testing import check_measure


@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_builtin_measure_passes(name: str) -> None:
    report = check_measure(BUILTIN[name])
    if BUILTIN[name].is_test:
        assert all(0.0 < rate < 0.12 for rate in report.false_positive_rate.values())
        assert report.false_positive_rate


class MeanGap(Measure):
    """A correct plugin-style distance: |mean(window) - mean(reference)| in reference standard deviations."""

    name = "mean_gap"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.5
    description = "gap of the means, in reference standard deviations"

    def score(self, reference: Any, window: Any) -> Score:
        reference, window = numeric_pair(self, reference, window)
        return Score(abs(float(window.values.mean()) - reference.mean) / (reference.std or 1.0))


def test_a_correct_plugin_measure_passes() -> None:
    assert check_measure(MeanGap()).false_positive_rate == {}


class NanOnConstant(MeanGap):
    """Divides by the window's spread: NaN on a constant window (nan_to_num would hide it as 'no drift')."""

    name = "nan_on_constant"

    def score(self, reference: Any, window: Any) -> Score:
        reference, window = numeric_pair(self, reference, window)
        spread = float(window.values.std())
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.float64(spread) / np.float64(spread)  # 0/0 on a constant window
            return Score(float(ratio * abs(window.values.mean() - reference.mean)))


class NanPValue(Measure):
    """A test whose p-value is NaN on small windows."""

    name = "nan_p"
    kinds = frozenset({"numeric"})
    is_test = True
    default_threshold = 0.05
    description = "broken"

    def score(self, reference: Any, window: Any) -> Score:
        score = KolmogorovSmirnov().score(reference, window)
        return Score(score.value, float("nan") if window.n < 50 else score.p_value)


class PValueAboveOne(NanPValue):
    name = "p_above_one"

    def score(self, reference: Any, window: Any) -> Score:
        score = KolmogorovSmirnov().score(reference, window)
        return Score(score.value, score.p_value * 2 + 0.01)


class NoPValue(NanPValue):
    name = "no_p"

    def score(self, reference: Any, window: Any) -> Score:
        return Score(KolmogorovSmirnov().score(reference, window).value)


class Random(MeanGap):
    """Not deterministic: noise from a generator that is never reseeded."""

    name = "random"
    noise = np.random.default_rng()

    def score(self, reference: Any, window: Any) -> Score:
        return Score(super().score(reference, window).value + float(self.noise.random()))


class Liberal(NanPValue):
    """Halves the KS p-value: flags about twice as many windows as its level allows."""

    name = "liberal"

    def score(self, reference: Any, window: Any) -> Score:
        score = KolmogorovSmirnov().score(reference, window)
        return Score(score.value, score.p_value / 2.5)


class Never(NanPValue):
    """Never flags: a p-value of 1 whatever the data."""

    name = "never"

    def score(self, reference: Any, window: Any) -> Score:
        return Score(KolmogorovSmirnov().score(reference, window).value, 1.0)


class Backwards(MeanGap):
    """Says higher_is_drift but returns a similarity (lower when drifted)."""

    name = "backwards"

    def score(self, reference: Any, window: Any) -> Score:
        return Score(1.0 / (1.0 + super().score(reference, window).value))


class ReturnsTuple(MeanGap):
    name = "returns_tuple"

    def score(self, reference: Any, window: Any) -> Any:
        return (1.0, None)


class BoolValue(MeanGap):
    name = "bool_value"

    def score(self, reference: Any, window: Any) -> Score:
        return Score(True)  # type: ignore[arg-type]


class Raises(MeanGap):
    name = "raises"

    def score(self, reference: Any, window: Any) -> Score:
        if window.n < 50:
            raise ZeroDivisionError("too few rows")
        return super().score(reference, window)


class NoKinds(MeanGap):
    name = "no_kinds"
    kinds: ClassVar[frozenset[str]] = frozenset({"text"})


class ThresholdNotALevel(NanPValue):
    name = "threshold_not_a_level"
    default_threshold = 5.0


class NotAMeasure:
    name = "plain"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.1
    description = "not a Measure"

    def score(self, reference: Any, window: Any) -> Score:
        return Score(0.0)


class BadName(MeanGap):
    name = ""


BROKEN = [
    (NanOnConstant(), "on the numeric constant window its value is NaN"),
    (NanPValue(), "on the numeric 30-row window its p-value is NaN"),
    (PValueAboveOne(), "outside 0..1"),
    (NoPValue(), "is a test but returned no p-value"),
    (Random(), "is not deterministic"),
    (Liberal(), "on numeric data that does not drift it flagged"),
    (Never(), "on numeric data that does not drift it flagged 0 of 300"),
    (Backwards(), "scores as less drifted than one without drift"),
    (ReturnsTuple(), "returned a tuple"),
    (BoolValue(), "is not a number"),
    (Raises(), "raised on the numeric 30-row window: ZeroDivisionError: too few rows"),
    (NoKinds(), "class attribute 'kinds'"),
    (ThresholdNotALevel(), "significance level"),
    (NotAMeasure(), "not an instance of monitor.plugin.Measure"),
    (BadName(), "class attribute 'name'"),
]


@pytest.mark.parametrize(("measure", "message"), BROKEN, ids=[type(m).__name__ for m, _ in BROKEN])
def test_a_broken_measure_fails_with_a_clear_message(measure: Any, message: str) -> None:
    with pytest.raises(AssertionError) as caught:
        check_measure(measure)
    text = str(caught.value)
    assert message in text, text
    assert repr(measure.name) in text
    assert "\n" not in text
