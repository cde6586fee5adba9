"""The diagnosis's shortcuts change no finding: one merge per KS distance, pruned swap candidates, shared windows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.domain import shifts
from monitor.domain.diagnosis import explain_window
from monitor.domain.evaluate import evaluate_window
from monitor.domain.shifts import ks_distance, ks_lower_bound, swaps
from tests.unit.test_diagnosis import KINDS, SETTINGS, _reference
from tests.explain_scenario import sensors


def _grid_ks(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook definition: both ECDFs (right-continuous) at every pooled value."""
    grid = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, side="right") / a.size
                               - np.searchsorted(b, grid, side="right") / b.size)))


def test_ks_distance_and_its_lower_bound_match_the_definition_ties_included() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        a = np.sort(rng.integers(0, rng.integers(2, 40), size=rng.integers(1, 400)).astype(float))
        b = np.sort(rng.integers(0, rng.integers(2, 40), size=rng.integers(1, 400)).astype(float) + rng.integers(0, 3))
        exact = _grid_ks(a, b)
        assert ks_distance(a, b) == exact  # bit for bit
        assert ks_lower_bound(a, b) <= exact
    a, b = np.sort(rng.normal(0, 1, 50_000)), np.sort(rng.normal(0.02, 1, 40_000))
    assert ks_distance(a, b) == _grid_ks(a, b)


def _unpruned(monkeypatch: pytest.MonkeyPatch, *args: object) -> list[shifts.Diagnosis]:
    with monkeypatch.context() as patched:
        patched.setattr(shifts, "ks_lower_bound", lambda a, b: 0.0)  # every candidate merged
        return swaps(*args)  # type: ignore[arg-type]


def test_pruned_swap_search_finds_what_the_full_search_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Near-identical references (the pruning's hard case), true swaps, and references of different sizes."""
    rng = np.random.default_rng(3)
    references = {f"f{i}": np.sort(rng.normal(i * 0.02, 1 + 0.01 * (i % 3), 20_000 - 500 * (i % 4)))
                  for i in range(30)}
    references.update({f"g{i}": np.sort(rng.exponential(1 + i, 8_000)) for i in range(5)})
    for seed in range(6):
        local = np.random.default_rng(100 + seed)
        drifted = {f"f{i}": local.normal(i * 0.02 + local.choice([0.0, 0.06, 0.3]), 1, 10_000)
                   for i in local.choice(30, 8, replace=False)}
        drifted.update({"g0": local.exponential(2, 6_000), "g1": local.exponential(1, 6_000)})  # g0 <-> g1
        for alpha in (0.01, 1e-6):
            pruned = swaps(drifted, references, alpha)
            assert pruned == _unpruned(monkeypatch, drifted, references, alpha)
    assert any(d.feature == "g0" and d.figures["looks_like"] == "g1" for d in swaps(drifted, references, 0.01))


def test_explain_with_the_evaluations_windows_equals_explain_from_the_columns() -> None:
    summary = _reference(11)
    for seed in range(4):
        window = sensors(np.random.default_rng(200 + seed), 20_000, drifted=True)
        if seed % 2:  # missing values too: the missing-rate test reads them from the kept windows
            values = window.column("temperature").to_numpy().copy()
            values[::7] = np.nan
            window = window.set_column(window.column_names.index("temperature"), "temperature", pa.array(values))
        evaluation = evaluate_window(window, KINDS, summary, SETTINGS, "bonferroni", keep_windows=True)
        assert evaluation.windows and evaluate_window(window, KINDS, summary, SETTINGS, "bonferroni").windows == {}
        drifted = [name for name, flagged in evaluation.feature_drifted.items() if flagged]
        assert drifted
        shared = explain_window(window, KINDS, summary, drifted, windows=evaluation.windows)
        alone = explain_window(window, KINDS, summary, drifted)
        assert shared == alone and shared.diagnoses


def test_medians_and_spreads_of_sorted_values_equal_numpys() -> None:
    from monitor.divergence.summary import sorted_quantiles
    from monitor.domain.shifts import sorted_median

    rng = np.random.default_rng(9)
    for n in [*range(1, 40), 1_000, 1_001, 99_999, 100_000]:
        values = np.sort(rng.normal(3, 7, n) * rng.choice([1e-8, 1.0, 1e9]))
        assert sorted_median(values) == float(np.median(values))
        assert np.array_equal(sorted_quantiles(values, np.array([0.25, 0.75])), np.quantile(values, [0.25, 0.75]))
