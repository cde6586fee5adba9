"""compare()'s fast paths: Arrow-counted categories, the merged ECDF gaps, no serialisation, scipy agreement."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor.compare import compare
from monitor.divergence import ReferenceSummary, summarize_categorical
from monitor.divergence.summary import sorted_quantiles
from monitor.domain.reference import categorical_values, summarize_categorical_column

#: Columns whose text form has nulls, NaN, empty and non-ASCII strings, several Arrow types and chunks.
COLUMNS = {
    "strings with None": pa.chunked_array([pa.array(["b", None, "a", "", "é", "b", None, "Z"])]),
    "floats with NaN and None": pa.chunked_array([pa.array([1.5, float("nan"), None, 1.5, -0.0, 0.0])]),
    "integers": pa.chunked_array([pa.array([3, 1, 3, None, 10, 2], type=pa.int32())]),
    "booleans": pa.chunked_array([pa.array([True, None, False, True])]),
    "dictionary": pa.chunked_array([pa.array(["x", "y", None, "x"]).dictionary_encode()]),
    "large strings in chunks": pa.chunked_array([pa.array(["q", "p"], type=pa.large_string()),
                                                 pa.array([None, "q", "r"], type=pa.large_string())]),
}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_arrow_counted_categories_equal_counting_python_strings(name: str) -> None:
    column = COLUMNS[name]
    by_python = summarize_categorical(categorical_values(column, name))
    by_arrow = summarize_categorical_column(column, name)
    assert by_arrow == by_python
    assert by_arrow.categories == tuple(sorted({str(v) for v in categorical_values(column, name)}))
    assert by_arrow.counts.dtype == np.int64


def test_a_categorical_column_of_nulls_has_no_summary() -> None:
    assert summarize_categorical_column(pa.chunked_array([pa.array([None, None], type=pa.string())]), "c") is None


def test_compare_counts_mixed_column_types_by_their_text_form() -> None:
    """Integer codes in the reference and the same codes as text in the window are one category each."""
    reference = pa.table({"c": pa.array([1, 2, 2, None, 3] * 40)})
    window = pa.table({"c": pa.array(["1", "2", "2", "3", None, "4"] * 40)})
    report = compare(reference, window, ["chi_square", "jensen_shannon"], categorical=["c"])
    ref_counts, win_counts = np.array([40, 80, 40, 0]), np.array([40, 80, 40, 40])
    chi2 = stats.chi2_contingency(np.array([ref_counts, win_counts]), correction=False)
    values = {r.measure: r for r in report.results}
    assert values["chi_square"].p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert values["jensen_shannon"].value == pytest.approx(
        jensenshannon(ref_counts / ref_counts.sum(), win_counts / win_counts.sum(), base=2), rel=1e-9)


def test_compare_equals_scipy_with_ties_and_unseen_values() -> None:
    generator = np.random.default_rng(5)
    reference = np.round(generator.normal(size=30_000), 1)  # many ties, across the two sides too
    window = np.concatenate([np.round(generator.normal(0.1, 1.1, size=20_000), 1), [9.0, 9.0, -7.5]])
    report = compare({"x": reference}, {"x": window}, ["ks", "wasserstein_raw", "energy"])
    values = {r.measure: r for r in report.results}
    ks = stats.ks_2samp(reference, window, method="asymp")
    assert values["ks"].value == pytest.approx(ks.statistic, rel=1e-12)
    assert values["ks"].p_value == pytest.approx(ks.pvalue, rel=1e-9)
    assert values["wasserstein_raw"].value == pytest.approx(stats.wasserstein_distance(reference, window), rel=1e-9)
    assert values["energy"].value == pytest.approx(stats.energy_distance(reference, window), rel=1e-9)


def test_compare_neither_serialises_nor_builds_an_unused_multivariate_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> bytes:
        raise AssertionError("compare() serialised its summary")

    monkeypatch.setattr(ReferenceSummary, "to_bytes", refuse)
    built = []
    import monitor.domain.reference as reference_module

    monkeypatch.setattr(reference_module, "_multivariate", lambda *args: built.append(args))
    data = {"x": np.arange(100.0), "y": np.arange(100.0) % 7}
    compare(data, data, ["ks", "psi"])
    assert built == []
    compare(data, data, {"mmd": {"options": {"permutations": 10}}})
    assert len(built) == 1


def test_quantiles_of_sorted_values_equal_np_quantile_bit_for_bit() -> None:
    generator = np.random.default_rng(1)
    for n in [*range(1, 40), 99, 100, 101, 12_345]:
        for values in (generator.normal(size=n), np.round(generator.normal(size=n), 1),
                       generator.exponential(size=n) * 1e6):
            ordered = np.sort(values)
            for bins in (2, 3, 7, 10, 13):
                q = np.arange(1, bins) / bins
                np.testing.assert_array_equal(sorted_quantiles(ordered, q), np.quantile(ordered, q))


def test_windows_of_different_features_sort_at_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No lock shared by every window (functools.cached_property has one before Python 3.12)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from monitor.divergence.window import NumericWindow

    both_inside = Barrier(2, timeout=5)
    real_sort = np.sort

    def sort_meeting_the_other(values: np.ndarray) -> np.ndarray:
        both_inside.wait()  # raises BrokenBarrierError unless both sorts run at once
        return real_sort(values)

    monkeypatch.setattr(np, "sort", sort_meeting_the_other)
    windows = [NumericWindow(np.array([3.0, 1.0, 2.0])), NumericWindow(np.array([5.0, 4.0]))]
    with ThreadPoolExecutor(2) as pool:
        sorted_values = list(pool.map(lambda window: window.sorted, windows))
    assert [list(v) for v in sorted_values] == [[1.0, 2.0, 3.0], [4.0, 5.0]]
