"""The full measure set: agreement with scipy, hand formulas, prepared windows, score_many."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor.config import MeasureConfig
from monitor.divergence import resolve_backend
from monitor.divergence import (
    BUILTIN_MEASURES,
    CategoricalSummary,
    CategoricalWindow,
    MeasureRegistry,
    NumericWindow,
    ReferenceSummary,
    Score,
    summarize_categorical,
    summarize_numeric,
)
from monitor.divergence.measures import EPS, ks_asymptotic_p_value, proportions
from monitor.domain.evaluate import evaluate_window, resolve_measures

M = BUILTIN_MEASURES
SIZES = [(40, 25), (500, 200), (3_000, 12_000), (20_000, 15_000)]


def samples(n_ref: int, n_window: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(n_ref + n_window + ties)
    reference = generator.normal(1.0, 2.0, size=n_ref)
    window = generator.normal(1.2, 1.7, size=n_window)
    return (np.round(reference), np.round(window)) if ties else (reference, window)


def numeric(name: str, reference: np.ndarray, window: np.ndarray) -> Score:
    return M[name].score(summarize_numeric(reference), NumericWindow(window))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n_ref", "n_window"), SIZES)
def test_cdf_distances_match_scipy(n_ref: int, n_window: int, ties: bool) -> None:
    reference, window = samples(n_ref, n_window, ties)
    summary = summarize_numeric(reference)
    raw = stats.wasserstein_distance(reference, window)
    assert numeric("wasserstein_raw", reference, window).value == pytest.approx(raw, rel=1e-9)
    assert numeric("wasserstein", reference, window).value == pytest.approx(
        raw / summary.std, rel=1e-9
    )
    assert numeric("energy", reference, window).value == pytest.approx(
        stats.energy_distance(reference, window), rel=1e-9
    )


@pytest.mark.filterwarnings("ignore:p-value (capped|floored)")
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n_ref", "n_window"), SIZES)
def test_tests_match_scipy(n_ref: int, n_window: int, ties: bool) -> None:
    reference, window = samples(n_ref, n_window, ties)
    expected = {
        "anderson_darling": stats.anderson_ksamp([reference, window], variant="midrank"),
        "cramer_von_mises": stats.cramervonmises_2samp(reference, window, method="auto"),
        "welch_t": stats.ttest_ind(reference, window, equal_var=False),
        "ks": stats.ks_2samp(reference, window, method="auto"),
    }
    for name, result in expected.items():
        score = numeric(name, reference, window)
        statistic = abs(result.statistic) if name == "welch_t" else result.statistic
        assert score.value == pytest.approx(statistic, rel=1e-9), name
        assert score.p_value == pytest.approx(result.pvalue, rel=1e-9, abs=1e-300), name


@pytest.mark.filterwarnings("ignore:p-value (capped|floored)", "ignore:Parameter `variant`")
def test_anderson_darling_p_value_is_scipys_capped_significance_level() -> None:
    reference, window = samples(500, 200, False)
    far = numeric("anderson_darling", reference, window + 5)
    near = numeric("anderson_darling", reference, reference[:200])
    assert far.p_value == 0.001 and near.p_value == 0.25
    legacy = stats.anderson_ksamp([reference, window + 5])
    assert far.value == pytest.approx(legacy.statistic, rel=1e-12)
    assert far.p_value == legacy.significance_level


def test_degenerate_tests_do_not_crash() -> None:
    constant = summarize_numeric(np.full(20, 3.0))
    assert M["anderson_darling"].score(constant, NumericWindow(np.full(5, 3.0))) == Score(0.0, 1.0)
    assert M["welch_t"].score(constant, NumericWindow(np.full(5, 3.0))) == Score(0.0, 1.0)
    assert M["welch_t"].score(constant, NumericWindow(np.full(5, 4.0))) == Score(math.inf, 0.0)
    one = NumericWindow(np.array([3.5]))
    for name in ("welch_t", "cramer_von_mises"):
        assert math.isnan(M[name].score(constant, one).value)


@pytest.mark.parametrize("n", [141, 5_000, 50_000])
@pytest.mark.parametrize("n_d_squared", [0.5, 2.2, 5.0, 30.0, 300.0])
def test_ks_asymptotic_p_value_matches_kstwo(n: int, n_d_squared: float) -> None:
    d = math.sqrt(n_d_squared / n)
    assert ks_asymptotic_p_value(d, n) == pytest.approx(stats.kstwo.sf(d, n), rel=1e-9)


def test_ks_statistic_is_bitwise_scipys_at_large_sizes_with_ties() -> None:
    reference, window = samples(20_000, 15_000, True)
    assert numeric("ks", reference, window).value == stats.ks_2samp(reference, window).statistic


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_binned_divergences_match_their_formulas(kind: str) -> None:
    generator = np.random.default_rng(11)
    if kind == "numeric":
        summary = summarize_numeric(generator.normal(size=2_000))
        window = NumericWindow(generator.normal(0.3, 1.2, size=700))
    else:
        summary = summarize_categorical(generator.choice(list("abcd"), size=900).astype(object))
        window = CategoricalWindow.from_values(
            generator.choice(list("bcde"), size=300, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
        )
    p, q = proportions(summary, window)
    ps, qs = np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)
    kl = M["kl"].score(summary, window).value
    kl_reverse = M["kl_reverse"].score(summary, window).value
    assert kl == pytest.approx(float(np.sum(qs * np.log(qs / ps))), rel=1e-12)
    assert kl_reverse == pytest.approx(float(np.sum(ps * np.log(ps / qs))), rel=1e-12)
    assert M["psi"].score(summary, window).value == pytest.approx(kl + kl_reverse, rel=1e-12)
    hellinger = math.sqrt(1 - float(np.sum(np.sqrt(p * q))))
    assert M["hellinger"].score(summary, window).value == pytest.approx(hellinger, rel=1e-9)
    distance = jensenshannon(p, q, base=2)
    assert M["jensen_shannon"].score(summary, window).value == pytest.approx(distance, rel=1e-12)
    assert M["js_divergence"].score(summary, window).value == pytest.approx(distance**2, rel=1e-9)


def test_categorical_distances_match_hand_computations() -> None:
    summary = CategoricalSummary(("a", "b", "c"), np.array([5, 3, 2], dtype=np.int64))
    window = CategoricalWindow.from_values(np.array(["a", "a", "c", "z", "z"], dtype=object))
    # p = [.5, .3, .2, 0], q = [.4, 0, .2, .4] over a, b, c, z
    assert M["total_variation"].score(summary, window).value == pytest.approx(0.4)
    assert M["linf"].score(summary, window).value == pytest.approx(0.4)
    assert M["unseen_share"].score(summary, window).value == pytest.approx(0.4)
    hellinger = math.sqrt(1 - (math.sqrt(0.5 * 0.4) + 0.2))
    assert M["hellinger"].score(summary, window).value == pytest.approx(hellinger, rel=1e-12)
    same = CategoricalWindow.from_values(np.array(["a", "b", "c"], dtype=object))
    for name in ("total_variation", "unseen_share"):
        assert M[name].score(summary, CategoricalWindow(("a",), np.array([4]))).value <= 0.5
        assert M[name].score(summary, same).value < 0.2


def test_distances_are_zero_for_identical_samples() -> None:
    values = np.random.default_rng(2).normal(size=300)
    summary = summarize_numeric(values)
    for name, measure in M.items():
        if "numeric" in measure.kinds and not measure.is_test:
            assert measure.score(summary, NumericWindow(values[::-1])).value == pytest.approx(
                0.0, abs=1e-12
            ), name


def test_categorical_window_from_arrow_equals_from_values() -> None:
    column = pa.chunked_array([["b", None, "a", "b"], ["c", "a", None, "b"]])
    from_arrow = CategoricalWindow.from_arrow(column)
    values = np.array(["b", "a", "b", "c", "a", "b"], dtype=object)
    from_values = CategoricalWindow.from_values(values)
    assert from_arrow.categories == from_values.categories == ("a", "b", "c")
    assert from_arrow.counts.tolist() == from_values.counts.tolist() == [2, 3, 1]
    assert from_arrow.counts.dtype == np.int64 and from_arrow.n == 6
    dictionary = CategoricalWindow.from_arrow(column.dictionary_encode())
    assert dictionary.categories == from_arrow.categories


def test_numeric_window_sorts_once_and_shares_gaps() -> None:
    window = NumericWindow(np.array([3, 1, 2]))
    assert window.values.dtype == np.float64 and window.n == 3
    assert window.sorted is window.sorted
    np.testing.assert_array_equal(window.sorted, [1.0, 2.0, 3.0])
    reference = summarize_numeric(np.arange(5.0)).sorted_values
    assert window.distances(reference) is window.distances(reference)  # KS, W1 and energy share one merge


def test_score_many_equals_score_on_both_backends() -> None:
    generator = np.random.default_rng(5)
    torch_cpu = resolve_backend("torch", "cpu")
    for size in (80, 12_000):  # the exact and the asymptotic KS regimes
        pairs = [
            (summarize_numeric(generator.normal(size=11_000)), NumericWindow(generator.normal(0.05, size=size)))
            for _ in range(3)
        ]
        for measure in M.values():
            if "numeric" in measure.kinds:
                expected = [measure.score(*pair) for pair in pairs]
                assert measure.score_many(pairs) == expected
                for got, want in zip(measure.score_many(pairs, backend=torch_cpu), expected):
                    assert got.value == pytest.approx(want.value, rel=1e-9, abs=1e-12)
                    assert (got.p_value is None) == (want.p_value is None)
                    if want.p_value is not None:
                        assert got.p_value == pytest.approx(want.p_value, rel=1e-9, abs=1e-300)


def test_evaluate_window_runs_every_measure_once_per_feature() -> None:
    generator = np.random.default_rng(9)
    reference = {"x": generator.normal(size=500), "c": generator.choice(list("abc"), size=500)}
    summary = ReferenceSummary({
        "x": summarize_numeric(reference["x"]),
        "c": summarize_categorical(reference["c"].astype(object)),
    })
    rows = pa.table({
        "x": np.r_[generator.normal(0.5, size=200), np.nan],
        "c": pa.array([*generator.choice(list("abd"), size=200), None]),
    })
    settings = resolve_measures({name: MeasureConfig() for name in M}, MeasureRegistry())
    kinds = {"x": "numeric", "c": "categorical"}
    evaluation = evaluate_window(rows, kinds, summary, settings, "bh")
    assert not evaluation.missing and not evaluation.failed_measures
    got = {(r.feature, r.measure) for r in evaluation.results}
    expected = {(f, name) for name, m in M.items() for f, kind in kinds.items() if kind in m.kinds}
    assert got == expected
    unseen = next(r for r in evaluation.results if r.measure == "unseen_share")
    categories = rows.column("c").to_numpy(zero_copy_only=False)[:200]
    assert unseen.value == pytest.approx(np.mean(categories == "d"))


def test_large_windows_are_scored_in_parallel_with_the_same_results() -> None:
    generator = np.random.default_rng(11)
    pairs = [(summarize_numeric(generator.normal(size=60_000)), generator.normal(0.02, size=60_000))
             for _ in range(5)]
    for name in ("ks", "wasserstein", "energy", "cramer_von_mises"):
        measure = M[name]
        parallel = measure.score_many([(ref, NumericWindow(values)) for ref, values in pairs])
        one_by_one = [measure.score(ref, NumericWindow(values)) for ref, values in pairs]
        assert parallel == one_by_one
    assert M["anderson_darling"].thread_safe is False
