"""The window path's economies change no number: features in blocks, counts shared by measures, p-values in one call."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

import monitor.compare as compare_module
from monitor.compare import compare
from monitor.config import FeaturesConfig, MeasureConfig
from monitor.divergence import MeasureRegistry
from monitor.divergence.counts import category_counts, window_bin_counts
from monitor.divergence.ecdf import ks_asymptotic_p_value, ks_asymptotic_p_values
from monitor.divergence.summary import CategoricalSummary, summarize_numeric
from monitor.divergence.window import CategoricalWindow, NumericWindow
from monitor.domain import evaluate as evaluate_module
from monitor.domain.evaluate import evaluate_window, resolve_measures
from monitor.domain.reference import feature_kinds, numeric_values, summarize_rows
from monitor.domain.shifts import _skewness

FIVE = ["ks", "psi", "jensen_shannon", "wasserstein", "chi_square"]


def _tables(numeric: int, categorical: int, rows: int, seed: int = 0) -> tuple[pa.Table, pa.Table, FeaturesConfig]:
    """A reference and a window; every fifth numeric feature and the first categorical one drift."""
    rng = np.random.default_rng(seed)
    reference, window = {}, {}
    for i in range(numeric):
        reference[f"n{i}"] = rng.normal(i, 1 + i % 3, rows)
        window[f"n{i}"] = rng.normal(i + (0.3 if i % 5 == 0 else 0.0), 1 + i % 3, rows)
    for i in range(categorical):
        weights = np.full(4, 0.25)
        reference[f"c{i}"] = rng.choice(list("abcd"), rows, p=weights).astype(object)
        shifted = np.array([0.4, 0.2, 0.2, 0.2]) if i == 0 else weights
        window[f"c{i}"] = rng.choice(list("abcd"), rows, p=shifted).astype(object)
    window["n1"][::7] = np.nan  # missing values: a filtered copy of the column
    features = FeaturesConfig(numeric=[f"n{i}" for i in range(numeric)],
                              categorical=[f"c{i}" for i in range(categorical)])
    return pa.table(reference), pa.table(window), features


def _evaluate(block: int, monkeypatch: pytest.MonkeyPatch, keep_windows: bool = False, **sizes: int):  # noqa: ANN202
    reference, window, features = _tables(**{"numeric": 23, "categorical": 3, "rows": 3_000, **sizes})
    summary, _ = summarize_rows(reference, features, 10, reference.num_rows, "test", multivariate_sample=None)
    settings = resolve_measures({name: MeasureConfig() for name in FIVE}, MeasureRegistry())
    with monkeypatch.context() as patched:
        patched.setattr(evaluate_module, "FEATURE_BLOCK", block)
        return evaluate_window(window, feature_kinds(features), summary, settings, "bh", keep_windows=keep_windows)


def test_features_scored_in_blocks_give_what_one_block_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _evaluate(10**6, monkeypatch)
    assert any(whole.feature_drifted.values()) and not all(whole.feature_drifted.values())
    for block in (1, 4, 12):
        blocked = _evaluate(block, monkeypatch)
        assert blocked.results == whole.results  # every value, p-value, correction and verdict, in order
        assert (blocked.feature_drifted, blocked.missing, blocked.failed_measures) == (
            whole.feature_drifted, whole.missing, whole.failed_measures)


def test_only_features_a_measure_may_still_flag_keep_their_sorted_values(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluation = _evaluate(4, monkeypatch, keep_windows=True)
    numeric = {name: window for name, window in evaluation.windows.items() if isinstance(window, NumericWindow)}
    kept = {name for name, window in numeric.items() if window._sorted is not None}
    drifted = {name for name, flag in evaluation.feature_drifted.items() if flag and name in numeric}
    assert drifted and drifted <= kept  # the diagnosis reads their sorted values without sorting again
    assert len(kept) < len(numeric) / 2
    for window in numeric.values():  # a released window still answers, sorting again
        assert np.array_equal(window.sorted, np.sort(window.values))
    unkept = _evaluate(4, monkeypatch, keep_windows=False)
    assert all(w._sorted is None for w in unkept.windows.values() if isinstance(w, NumericWindow))


def test_a_window_holds_the_sorted_copies_of_one_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rows, features = 20_000, 48
    sorted_bytes = rows * features * 8

    def peak(block: int) -> int:
        reference, window, config = _tables(features, 0, rows, seed=1)
        summary, _ = summarize_rows(reference, config, 10, rows, "test", multivariate_sample=None)
        settings = resolve_measures({"ks": MeasureConfig(), "psi": MeasureConfig()}, MeasureRegistry())
        with monkeypatch.context() as patched:
            patched.setattr(evaluate_module, "FEATURE_BLOCK", block)
            tracemalloc.start()
            evaluate_window(window, feature_kinds(config), summary, settings, "bh")
            _, high = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return high

    assert peak(features) > 0.9 * sorted_bytes  # one block: every sorted copy at once
    assert peak(8) < 0.45 * sorted_bytes  # blocks of 8: a sixth of them, and what does not depend on blocks


def test_ks_p_values_in_one_call_equal_them_one_at_a_time_and_scipy() -> None:
    rng = np.random.default_rng(4)
    sizes = [50_000, 50_000, 5_000, 200, 150_000, 50_000, 50_000, 1_000]
    statistics = [0.004, 0.02, 0.05, 0.2, 0.001, float("nan"), 0.9, 0.0]  # both branches, NaN, the ends
    statistics += list(rng.uniform(0.001, 0.05, 20))
    sizes += list(rng.integers(150, 200_000, 20))
    together = ks_asymptotic_p_values(statistics, sizes)
    for d, n, p_value in zip(statistics, sizes, together):
        alone = ks_asymptotic_p_value(d, int(n))
        assert p_value == alone or (np.isnan(p_value) and np.isnan(alone))
        if np.isnan(d):
            assert np.isnan(p_value)  # NaN is never "no drift"
        else:
            assert p_value == pytest.approx(stats.kstwo.sf(d, int(n)), rel=1e-9, abs=1e-300)


def test_compare_loads_plugins_only_for_a_measure_not_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = []

    def load() -> MeasureRegistry:
        loaded.append(True)
        return MeasureRegistry()

    monkeypatch.setattr(compare_module, "installed_measures", load)
    data = {"x": np.arange(200.0), "c": np.array(list("ab") * 100, dtype=object)}
    compare(data, data, FIVE)
    assert loaded == []
    with pytest.raises(KeyError):
        compare(data, data, ["ks", "a_plugin_measure"])
    assert loaded == [True]


def test_numeric_values_keep_every_finite_value_even_when_their_sum_overflows() -> None:
    big = pa.chunked_array([pa.array([1e308, 1e308, -5.0])])
    assert list(numeric_values(big, "x")) == [1e308, 1e308, -5.0]
    holes = pa.chunked_array([pa.array([1.0, None, float("nan"), float("inf"), 2.0, -float("inf")])])
    assert list(numeric_values(holes, "x")) == [1.0, 2.0]


def test_the_diagnosis_skewness_equals_scipys() -> None:
    rng = np.random.default_rng(5)
    for values in (rng.normal(size=10_000), rng.lognormal(0, 0.8, 10_000), rng.exponential(size=7)):
        assert _skewness(np.sort(values)) == pytest.approx(float(stats.skew(values)), rel=1e-9, abs=1e-12)
    assert np.isnan(_skewness(np.ones(5)))


def test_a_window_counts_its_bins_and_categories_once_per_reference_and_never_mixes_references() -> None:
    rng = np.random.default_rng(6)
    window = NumericWindow(rng.normal(size=1_000))
    first, second = summarize_numeric(rng.normal(size=500)), summarize_numeric(rng.normal(1, 2, size=500))
    for reference in (first, second, first):
        counts = window_bin_counts(reference.edges, window)
        expected = np.diff(np.searchsorted(window.sorted, reference.edges, side="right"), prepend=0, append=window.n)
        assert np.array_equal(counts, expected)
        assert window_bin_counts(reference.edges, window) is counts and not counts.flags.writeable
    counted = CategoricalWindow(("a", "b", "z"), np.array([5, 3, 2]))
    one = CategoricalSummary(("a", "b"), np.array([4, 6]))
    other = CategoricalSummary(("b", "z"), np.array([1, 9]))
    assert [list(v) for v in category_counts(one, counted)] == [[4, 6, 0], [5, 3, 2]]
    assert [list(v) for v in category_counts(other, counted)] == [[1, 9, 0], [3, 2, 5]]
    assert [list(v) for v in category_counts(one, counted)] == [[4, 6, 0], [5, 3, 2]]
    assert not category_counts(one, counted)[1].flags.writeable
