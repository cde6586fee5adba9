"""The built-in divergence measures and p-value corrections agree with scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor.divergence import (
    BUILTIN_MEASURES,
    MULTIVARIATE_MEASURES,
    CategoricalSummary,
    FeatureSummary,
    Measure,
    MeasureRegistry,
    NumericSummary,
    Score,
    adjust_p_values,
    prepare_window,
    summarize_categorical,
    summarize_numeric,
)
from monitor.divergence import ecdf
from monitor.divergence.measures import proportions
from monitor.divergence.window import FeatureWindow

KS = BUILTIN_MEASURES["ks"]
PSI = BUILTIN_MEASURES["psi"]
JS = BUILTIN_MEASURES["jensen_shannon"]
WASSERSTEIN = BUILTIN_MEASURES["wasserstein"]
CHI_SQUARE = BUILTIN_MEASURES["chi_square"]


def window_of(summary: FeatureSummary, values: np.ndarray) -> FeatureWindow:
    kind = "numeric" if isinstance(summary, NumericSummary) else "categorical"
    return prepare_window(values, kind)


def score_values(measure: Measure, summary: FeatureSummary, values: np.ndarray) -> Score:
    return measure.score(summary, window_of(summary, values))


def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def assert_ks_matches_scipy(reference: np.ndarray, window: np.ndarray) -> None:
    score = score_values(KS, summarize_numeric(reference), window)
    expected = stats.ks_2samp(reference, window, method="auto", alternative="two-sided")
    assert score.value == expected.statistic
    # Above 10 000 rows the p-value's Birnbaum-Tingey sum is taken in numpy, not double-double.
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("n_ref", "n_window", "shift"),
    [
        (200, 200, 0.0),  # exact, equal sizes
        (500, 37, 0.3),  # exact, unequal sizes
        (10_000, 800, 0.05),  # exact at the boundary
        (20_000, 500, 0.0),  # asymptotic: reference over 10 000
        (12_000, 15_000, 0.02),  # asymptotic: both large
        (3_000, 10_001, 0.1),  # asymptotic: window over 10 000
    ],
)
def test_ks_matches_scipy_in_exact_and_asymptotic_regimes(
    n_ref: int, n_window: int, shift: float
) -> None:
    generator = rng()
    assert_ks_matches_scipy(generator.normal(size=n_ref), generator.normal(shift, size=n_window))


@pytest.mark.parametrize(("n_ref", "n_window"), [(300, 120), (15_000, 900)])
def test_ks_matches_scipy_with_ties(n_ref: int, n_window: int) -> None:
    generator = rng()
    reference = generator.integers(0, 6, size=n_ref).astype(np.float64)
    window = generator.integers(1, 7, size=n_window).astype(np.float64)
    assert_ks_matches_scipy(reference, window)


def test_ks_of_identical_samples_is_zero_with_p_value_one() -> None:
    sample = rng().normal(size=400)
    score = score_values(KS, summarize_numeric(sample), sample.copy())
    assert score == Score(value=0.0, p_value=1.0)
    assert not KS.drifted(score, 0.05)


def test_ks_detects_a_shift() -> None:
    generator = rng()
    reference = summarize_numeric(generator.normal(size=2_000))
    score = score_values(KS, reference, generator.normal(1, size=500))
    assert KS.drifted(score, 0.05)
    assert score.p_value is not None and score.p_value < 1e-20


def test_ks_on_constant_reference() -> None:
    reference = np.full(50, 3.0)
    assert_ks_matches_scipy(reference, np.array([3.0, 3.0, 4.0]))
    assert score_values(KS, summarize_numeric(reference), np.full(10, 3.0)) == Score(0.0, 1.0)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@settings(max_examples=60, deadline=None)
@given(
    reference=arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6)),
    window=arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6)),
)
def test_ks_property_agrees_with_scipy(reference: np.ndarray, window: np.ndarray) -> None:
    assert_ks_matches_scipy(reference, window)


@pytest.mark.parametrize("integer_valued", [False, True])
def test_wasserstein_times_std_matches_scipy(integer_valued: bool) -> None:
    generator = rng()
    reference = generator.normal(2.0, 3.0, size=1_500)
    window = generator.normal(2.5, 2.0, size=321)
    if integer_valued:
        reference, window = np.round(reference), np.round(window)
    summary = summarize_numeric(reference)
    score = score_values(WASSERSTEIN, summary, window)
    assert score.p_value is None
    assert score.value * summary.std == pytest.approx(
        stats.wasserstein_distance(reference, window), abs=1e-9
    )


def test_wasserstein_on_constant_reference_is_divided_by_one() -> None:
    window = np.array([1.0, 2.0, 4.0])
    score = score_values(WASSERSTEIN, summarize_numeric(np.full(20, 2.0)), window)
    assert score.value == pytest.approx(stats.wasserstein_distance(np.full(20, 2.0), window))


def test_wasserstein_of_identical_samples_is_zero() -> None:
    sample = rng().normal(size=100)
    assert score_values(WASSERSTEIN, summarize_numeric(sample), sample[::-1]).value == 0.0


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_jensen_shannon_matches_scipy(kind: str) -> None:
    generator = rng()
    if kind == "numeric":
        summary = summarize_numeric(generator.normal(size=1_000))
        window = generator.normal(0.4, 1.3, size=250)
    else:
        summary = summarize_categorical(generator.choice(["a", "b", "c"], size=500).astype(object))
        window = generator.choice(["b", "c", "d"], size=120, p=[0.2, 0.3, 0.5]).astype(object)
    p, q = proportions(summary, window_of(summary, window))
    value = score_values(JS, summary, window).value
    assert value == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert 0.0 < value <= 1.0


def test_jensen_shannon_of_disjoint_categories_is_one() -> None:
    summary = summarize_categorical(np.array(["a", "b"], dtype=object))
    assert score_values(JS, summary, np.array(["c"], dtype=object)).value == pytest.approx(1.0)


def test_numeric_bins_are_right_closed_quantile_bins() -> None:
    summary = summarize_numeric(np.arange(1.0, 11.0), bins=5)
    # quantile edges framed by the out-of-range ones: just below the min, and the max
    np.testing.assert_allclose(summary.edges, [np.nextafter(1.0, 0.0), 2.8, 4.6, 6.4, 8.2, 10.0], rtol=1e-15)
    np.testing.assert_array_equal(summary.probs, [0.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0])
    first, last = summary.edges[1], summary.edges[-2]
    values = np.array([first, np.nextafter(first, 9.0), last, 100.0])
    _, q = proportions(summary, window_of(summary, values))
    np.testing.assert_array_equal(q, [0.0, 0.25, 0.25, 0.0, 0.25, 0.0, 0.25])


def test_psi_numeric_matches_a_hand_computation_with_eps_for_empty_bins() -> None:
    summary = summarize_numeric(np.arange(1.0, 11.0), bins=2)  # edge 5.5, probs [0.5, 0.5]
    score = score_values(PSI, summary, np.array([1.0, 2.0, 3.0, 7.0]))
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert score.value == pytest.approx(expected, rel=1e-12)
    assert score.p_value is None
    eps = 1e-4  # the empty window bin becomes eps, without renormalising
    all_low = score_values(PSI, summary, np.array([1.0, 2.0]))
    expected_low = (1 - 0.5) * math.log(1 / 0.5) + (eps - 0.5) * math.log(eps / 0.5)
    assert all_low.value == pytest.approx(expected_low, rel=1e-12)


def test_psi_categorical_counts_unseen_categories_with_eps() -> None:
    summary = CategoricalSummary(categories=("a", "b"), counts=np.array([3, 1], dtype=np.int64))
    score = score_values(PSI, summary, np.array(["a", "c"], dtype=object))
    eps = 1e-4
    expected = (
        (0.5 - 0.75) * math.log(0.5 / 0.75)
        + (eps - 0.25) * math.log(eps / 0.25)
        + (0.5 - eps) * math.log(0.5 / eps)
    )
    assert score.value == pytest.approx(expected, rel=1e-12)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    generator = rng()
    summary = summarize_numeric(generator.normal(size=20_000))
    same = score_values(PSI, summary, generator.normal(size=20_000))
    shifted = score_values(PSI, summary, generator.normal(1.5, size=20_000))
    assert same.value < 0.01 and not PSI.drifted(same, PSI.default_threshold)
    assert shifted.value > 1.0 and PSI.drifted(shifted, PSI.default_threshold)


def test_chi_square_matches_scipy_with_an_unseen_category() -> None:
    generator = rng()
    summary = summarize_categorical(
        generator.choice(["red", "green", "blue"], size=600, p=[0.5, 0.3, 0.2]).astype(object)
    )
    window = generator.choice(["red", "green", "blue", "violet"], size=150).astype(object)
    score = score_values(CHI_SQUARE, summary, window)
    table = [
        [summary.counts[summary.categories.index(c)] if c in summary.categories else 0
         for c in ("blue", "green", "red", "violet")],
        [int(np.sum(window == c)) for c in ("blue", "green", "red", "violet")],
    ]
    expected = stats.chi2_contingency(table, correction=False)
    assert score.value == pytest.approx(expected.statistic, rel=1e-12)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)
    assert CHI_SQUARE.drifted(score, 0.05)


def test_chi_square_drops_categories_empty_on_both_sides() -> None:
    summary = CategoricalSummary(("a", "b", "c"), np.array([10, 0, 5], dtype=np.int64))
    window = np.array(["a", "a", "c", "a"], dtype=object)
    expected = stats.chi2_contingency([[10, 5], [3, 1]], correction=False)
    score = score_values(CHI_SQUARE, summary, window)
    assert score.value == pytest.approx(expected.statistic, rel=1e-12)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_chi_square_with_a_single_category_is_zero_with_p_value_one() -> None:
    summary = summarize_categorical(np.array(["x"] * 5, dtype=object))
    assert score_values(CHI_SQUARE, summary, np.array(["x", "x"], dtype=object)) == Score(0.0, 1.0)


@pytest.mark.parametrize("name", ["ks", "wasserstein"])
def test_numeric_measures_reject_categorical_summaries(name: str) -> None:
    summary = summarize_categorical(np.array(["a"], dtype=object))
    with pytest.raises(TypeError, match=f"{name}.*numeric"):
        score_values(BUILTIN_MEASURES[name], summary, np.array(["a"], dtype=object))


def test_categorical_measures_reject_numeric_summaries() -> None:
    with pytest.raises(TypeError, match="chi_square.*categorical"):
        score_values(CHI_SQUARE, summarize_numeric(np.arange(5.0)), np.arange(3.0))


def test_measures_reject_an_empty_window() -> None:
    with pytest.raises(ValueError, match="empty window"):
        score_values(PSI, summarize_numeric(np.arange(5.0)), np.array([]))


def test_builtin_measure_metadata() -> None:
    both = {"numeric", "categorical"}
    expected = {
        "ks": ({"numeric"}, True, 0.05),
        "psi": (both, False, 0.2),
        "jensen_shannon": (both, False, 0.1),
        "wasserstein": ({"numeric"}, False, 0.1),
        "chi_square": ({"categorical"}, True, 0.05),
        "js_divergence": (both, False, 0.01),
        "kl": (both, False, 0.1),
        "kl_reverse": (both, False, 0.1),
        "hellinger": (both, False, 0.1),
        "wasserstein_raw": ({"numeric"}, False, 0.1),
        "anderson_darling": ({"numeric"}, True, 0.05),
        "cramer_von_mises": ({"numeric"}, True, 0.05),
        "energy": ({"numeric"}, False, 0.1),
        "welch_t": ({"numeric"}, True, 0.05),
        "total_variation": ({"categorical"}, False, 0.1),
        "linf": ({"categorical"}, False, 0.1),
        "unseen_share": ({"categorical"}, False, 0.05),
    }
    actual = {
        name: (set(m.kinds), m.is_test, m.default_threshold) for name, m in BUILTIN_MEASURES.items()
    }
    assert actual == expected
    for name, measure in BUILTIN_MEASURES.items():
        assert measure.name == name and measure.description
        assert measure.higher_is_drift is True
        torch_batched = {"ks", "wasserstein", "wasserstein_raw"}
        assert measure.backends == frozenset({"numpy", "torch"} if name in torch_batched else {"numpy"})
        assert type(measure).__doc__ and "Default threshold" in type(measure).__doc__


def test_a_test_score_without_p_value_cannot_be_judged() -> None:
    with pytest.raises(ValueError, match="no p-value"):
        KS.drifted(Score(0.5), 0.05)


def test_corrections_match_scipy() -> None:
    p = rng().uniform(size=40) ** 3
    np.testing.assert_array_equal(adjust_p_values(p, "none"), p)
    np.testing.assert_allclose(adjust_p_values(p, "bonferroni"), np.minimum(1, p * 40), rtol=0)
    np.testing.assert_allclose(
        adjust_p_values(list(p), "bh"), stats.false_discovery_control(p, method="bh"), rtol=1e-15
    )
    tied = [0.01, 0.04, 0.04, 0.03, 0.5, 1.0, 0.0]
    np.testing.assert_allclose(
        adjust_p_values(tied, "bh"), stats.false_discovery_control(tied, method="bh"), rtol=1e-15
    )


@pytest.mark.parametrize("method", ["none", "bonferroni", "bh"])
def test_corrections_of_no_p_values_are_empty(method: str) -> None:
    adjusted = adjust_p_values([], method)  # type: ignore[arg-type]
    assert adjusted.shape == (0,) and adjusted.dtype == np.float64


def test_corrections_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p_values([0.1], "holm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_p_values([0.1, 1.5], "bh")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_p_values([float("nan")], "bonferroni")


class _Constant(Measure):
    name = "constant"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 1.0
    description = "always 0"

    def score(self, reference: object, window: object) -> Score:  # type: ignore[override]
        return Score(0.0)


def test_registry_holds_builtins_and_plugin_extras() -> None:
    registry = MeasureRegistry({"constant": _Constant()})
    assert registry.names() == [*BUILTIN_MEASURES, *MULTIVARIATE_MEASURES, "constant"]
    assert registry.names()[:5] == ["ks", "psi", "jensen_shannon", "wasserstein", "chi_square"]
    assert list(registry) == registry.names()
    assert "constant" in registry and "nope" not in registry
    assert isinstance(registry.get("constant"), _Constant)
    assert registry.get("ks") is BUILTIN_MEASURES["ks"]
    assert MeasureRegistry().names() == [*BUILTIN_MEASURES, *MULTIVARIATE_MEASURES]


def test_registry_errors_name_the_culprit() -> None:
    with pytest.raises(KeyError, match="'nope'.*ks, psi, jensen_shannon, wasserstein, chi_square"):
        MeasureRegistry().get("nope")
    with pytest.raises(ValueError, match="'psi'"):
        MeasureRegistry({"psi": _Constant()})
    with pytest.raises(TypeError, match="'bogus'"):
        MeasureRegistry({"bogus": object()})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("n_ref", "n_window", "shift", "integer_valued"),
    [
        (10_000, 10_000, 0.02, False),  # the daemon's usual size: equal, at the exact regime's edge
        (10_000, 9_999, 0.0, False),  # coprime sizes: scipy's slowest exact path
        (7_919, 10_000, 0.05, True),  # ties across both samples
        (10_000, 10_000, 2.0, False),  # a p-value far below 1e-300
    ],
)
def test_ks_exact_regime_at_the_daemons_sizes_matches_scipy(
    n_ref: int, n_window: int, shift: float, integer_valued: bool
) -> None:
    generator = rng()
    reference, window = generator.normal(size=n_ref) * 3, generator.normal(shift, size=n_window) * 3
    if integer_valued:
        reference, window = np.round(reference), np.round(window)
    assert_ks_matches_scipy(reference, window)


def test_ks_exact_regime_does_not_sort_again_through_ks_2samp(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact regime's statistic comes from the window's shared sort, its p-value from scipy's exact
    distribution: ``ks_2samp`` (a second sort of both samples and its argument checks) is not called."""
    generator = rng()
    reference, window = generator.normal(size=10_000), generator.normal(0.03, size=10_000)
    expected = stats.ks_2samp(reference, window)
    monkeypatch.setattr(ecdf.stats, "ks_2samp", lambda *args, **kwargs: pytest.fail("ks_2samp was called"))
    score = score_values(KS, summarize_numeric(reference), window)
    assert (score.value, score.p_value) == (expected.statistic, expected.pvalue)


def test_ks_exact_regime_without_scipys_exact_function_calls_ks_2samp(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scipy that moved its private exact distribution still gives scipy's figures (through ``ks_2samp``)."""
    monkeypatch.setattr(ecdf, "_attempt_exact_2kssamp", None)
    ecdf._exact_p_value.cache_clear()
    try:
        generator = rng()
        assert_ks_matches_scipy(generator.normal(size=3_000), generator.normal(0.05, size=2_000))
    finally:
        ecdf._exact_p_value.cache_clear()


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
def test_ks_where_scipys_exact_computation_fails_takes_scipys_asymptotic_answer() -> None:
    """At 5 + 5 values and d = 1/5 scipy's exact sum overshoots 1 and it answers asymptotically; so does driftd."""
    reference = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    window = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    assert stats.ks_2samp(reference, window).statistic == pytest.approx(0.2)
    assert_ks_matches_scipy(reference, window)
