"""The Page–Hinkley detector: equations, alarms, restarts and persisted state."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.domain.sequential import PageHinkley


def first_alarm(detector: PageHinkley, series: list[float]) -> int | None:
    return next((index for index, value in enumerate(series) if detector.update(value)), None)


def test_update_follows_the_documented_equations() -> None:
    detector = PageHinkley(delta=0.1, threshold=100.0, min_instances=1, alpha=0.5)
    mean = cumulative = minimum = 0.0
    for n, x in enumerate([1.0, 0.0, 3.0, 2.0, -1.0], start=1):
        detector.update(x)
        mean += (x - mean) / n
        cumulative = 0.5 * cumulative + (x - mean - 0.1)
        minimum = min(minimum, cumulative)
        assert detector.state == pytest.approx({"n": n, "mean": mean, "cumulative": cumulative, "minimum": minimum})
        assert detector.statistic == pytest.approx(cumulative - minimum)


def test_a_step_up_fires_after_about_threshold_over_its_excess() -> None:
    detector = PageHinkley(delta=0.01, threshold=1.0, min_instances=10)
    series = [0.05] * 100 + [0.25] * 20
    alarm = first_alarm(detector, series)
    assert alarm is not None and 100 + 4 <= alarm <= 100 + 8  # about 1 / (0.2 - 0.01) windows


def test_a_step_down_never_fires() -> None:
    detector = PageHinkley(delta=0.01, threshold=1.0, min_instances=10)
    assert first_alarm(detector, [0.5] * 50 + [0.0] * 50) is None


def test_a_single_spike_does_not_fire() -> None:
    detector = PageHinkley(delta=0.01, threshold=1.0, min_instances=10)
    assert first_alarm(detector, [0.05] * 30 + [1.0] + [0.05] * 30) is None


def test_nothing_fires_before_min_instances() -> None:
    detector = PageHinkley(delta=0.0, threshold=0.5, min_instances=10)
    assert first_alarm(detector, [0.0, 10.0, 10.0, 10.0]) is None
    assert detector.n == 4


def test_the_detector_restarts_after_an_alarm() -> None:
    detector = PageHinkley(delta=0.01, threshold=1.0, min_instances=5)
    assert first_alarm(detector, [0.0] * 10 + [1.0] * 10) is not None
    assert detector.state == {"n": 0, "mean": 0.0, "cumulative": 0.0, "minimum": 0.0}
    assert first_alarm(detector, [1.0] * 50) is None  # the new level is the new normal


def test_forgetting_bounds_the_evidence_from_old_deviations() -> None:
    remembering = PageHinkley(delta=0.0, threshold=1.0, min_instances=1)
    forgetting = PageHinkley(delta=0.0, threshold=1.0, min_instances=1, alpha=0.5)
    series = [0.0] * 20 + [0.3] * 8
    assert first_alarm(remembering, series) is not None
    assert first_alarm(forgetting, series) is None


def test_state_round_trip_continues_exactly() -> None:
    rng = np.random.default_rng(3)
    series = list(rng.normal(0.0, 0.1, 200) + np.linspace(0.0, 0.6, 200))
    parameters = {"delta": 0.01, "threshold": 0.8, "min_instances": 10, "alpha": 0.99}
    live = PageHinkley(**parameters)
    expected = [live.update(x) for x in series]
    restarted, got = PageHinkley(**parameters), []
    for x in series:
        got.append(restarted.update(x))
        restarted = PageHinkley.from_state(dict(restarted.state), **parameters)
    assert got == expected and any(expected)


@pytest.mark.parametrize("parameters", [{"delta": -1.0}, {"threshold": 0.0}, {"min_instances": 0}, {"alpha": 0.0},
                                        {"alpha": 1.5}])
def test_invalid_parameters_are_refused(parameters: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PageHinkley(**parameters)
