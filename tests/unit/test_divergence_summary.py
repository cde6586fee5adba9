"""Reference summaries: quantile bins, category counts and the pickle-free serialisation."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from monitor.divergence import (
    BUILTIN_MEASURES,
    CategoricalSummary,
    NumericSummary,
    NumericWindow,
    ReferenceSummary,
    summarize_categorical,
    summarize_numeric,
)


def test_numeric_summary_holds_sorted_values_quantile_edges_and_moments() -> None:
    values = np.random.default_rng(7).normal(5.0, 2.0, size=1_000)
    summary = summarize_numeric(values)
    np.testing.assert_array_equal(summary.sorted_values, np.sort(values))
    np.testing.assert_array_equal(summary.edges[1:-1], np.quantile(values, np.arange(1, 10) / 10))
    assert summary.edges[0] == np.nextafter(values.min(), -np.inf) and summary.edges[-1] == values.max()
    np.testing.assert_allclose(summary.probs, [0.0, *np.full(10, 0.1), 0.0])
    assert summary.n == 1_000
    assert summary.mean == pytest.approx(values.mean())
    assert summary.std == pytest.approx(values.std())


def test_numeric_summary_deduplicates_tied_edges() -> None:
    values = np.array([0.0] * 6 + [1.0, 2.0, 3.0, 4.0])
    summary = summarize_numeric(values, bins=5)
    np.testing.assert_allclose(summary.edges, [-5e-324, 0.0, 0.4, 2.2, 4.0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(summary.probs, [0.0, 0.6, 0.0, 0.2, 0.2, 0.0], rtol=1e-15)


def test_numeric_summary_drops_edges_at_the_maximum() -> None:
    summary = summarize_numeric(np.array([0.0, 0.0, 0.0] + [1.0] * 7), bins=4)
    assert summary.edges.tolist() == [-5e-324, 0.25, 1.0]  # the quantiles were 0.25, 1.0, 1.0
    np.testing.assert_allclose(summary.probs, [0.0, 0.3, 0.7, 0.0], rtol=1e-15)


def test_constant_numeric_summary_has_three_bins_and_scores_without_crashing() -> None:
    summary = summarize_numeric(np.full(30, 4.0))
    assert summary.edges.tolist() == [np.nextafter(4.0, 0.0), 4.0]  # below, at and above 4
    assert summary.probs.tolist() == [0.0, 1.0, 0.0]
    assert summary.std == 0.0
    for measure in BUILTIN_MEASURES.values():
        if "numeric" in measure.kinds:
            score = measure.score(summary, NumericWindow(np.array([4.0, 5.0])))
            assert np.isfinite(score.value)


def test_summaries_reject_empty_samples() -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize_numeric(np.array([]))
    with pytest.raises(ValueError, match="empty"):
        summarize_categorical(np.array([], dtype=object))


def test_categorical_summary_sorts_categories() -> None:
    summary = summarize_categorical(np.array(["b", "a", "b", "c", "b"], dtype=object))
    assert summary.categories == ("a", "b", "c")
    assert summary.counts.tolist() == [1, 3, 1]
    assert summary.counts.dtype == np.int64
    assert summary.n == 5


def _reference() -> ReferenceSummary:
    generator = np.random.default_rng(3)
    return ReferenceSummary(
        features={
            "age": summarize_numeric(generator.normal(40, 10, size=500)),
            "a/b/c": summarize_numeric(np.full(12, 7.5)),
            "größe 🌍": summarize_categorical(
                np.array(["x", "ü/ñ", "x", "", " trailing\x00", "日本"], dtype=object)
            ),
            "": summarize_numeric(np.array([1.0])),
            '"quoted"\n': CategoricalSummary(categories=(), counts=np.array([], dtype=np.int64)),
        }
    )


def test_reference_summary_roundtrips_exactly() -> None:
    original = _reference()
    loaded = ReferenceSummary.from_bytes(original.to_bytes())
    assert loaded == original
    assert list(loaded.features) == list(original.features)
    numeric = loaded.features["a/b/c"]
    assert isinstance(numeric, NumericSummary) and numeric.edges.tolist() == [np.nextafter(7.5, 0.0), 7.5]
    categorical = loaded.features["größe 🌍"]
    assert isinstance(categorical, CategoricalSummary)
    assert " trailing\x00" in categorical.categories
    assert all(type(c) is str for c in categorical.categories)


def test_reference_summary_archive_needs_no_pickle() -> None:
    data = _reference().to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    assert all(not name.startswith(("age", "a/b")) for name in names)
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        assert all(loaded[key].dtype != object for key in loaded.files)


def test_summaries_compare_by_value() -> None:
    values = np.arange(10.0)
    assert summarize_numeric(values) == summarize_numeric(values.copy())
    assert summarize_numeric(values) != summarize_numeric(values + 1)
    assert summarize_numeric(values) != summarize_categorical(np.array(["a"], dtype=object))
