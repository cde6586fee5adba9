"""The multivariate measures match their textbook formulas and behave as tests should."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from monitor.divergence.backend import NUMPY, PairFunction
from monitor.divergence.base import Score
from monitor.divergence.classifier import ClassifierTest
from monitor.divergence.kernels import (
    MMD,
    EnergyDistance,
    LinearMMD,
    linear_mmd_terms,
    permutation_indicators,
    permutation_test,
)
from monitor.divergence.multivariate import standardized_rows
from monitor.divergence.registry import MULTIVARIATE_MEASURES
from monitor.divergence.summary import MultivariateSummary, summarize_multivariate


def gaussian(a: np.ndarray, b: np.ndarray, bandwidth: float) -> float:
    return float(np.exp(-np.sum((a - b) ** 2) / (2 * bandwidth**2)))


def direct_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """The unbiased MMD² by double loops."""
    m, n = len(x), len(y)
    xx = sum(gaussian(x[i], x[j], bandwidth) for i in range(m) for j in range(m) if i != j)
    yy = sum(gaussian(y[i], y[j], bandwidth) for i in range(n) for j in range(n) if i != j)
    xy = sum(gaussian(a, b, bandwidth) for a in x for b in y)
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def direct_energy2(x: np.ndarray, y: np.ndarray) -> float:
    """2 E|X-Y| - E|X-X'| - E|Y-Y'| with every mean over all pairs (V-statistics)."""

    def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean([np.linalg.norm(p - q) for p, q in itertools.product(a, b)]))

    return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)


def split(pooled: np.ndarray, indicators: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
    return pooled[indicators[:, column]], pooled[~indicators[:, column]]


def summary_of(reference: np.ndarray, **kwargs: int) -> MultivariateSummary:
    return summarize_multivariate(reference, [f"f{i}" for i in range(reference.shape[1])], **kwargs)


RNG_SEED = 20240601


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def test_summary_standardises_subsamples_and_uses_the_median_heuristic(
    rng: np.random.Generator,
) -> None:
    reference = rng.normal(loc=5.0, scale=3.0, size=(3_000, 3))
    reference[:, 2] = 7.0
    summary = summary_of(reference, max_sample=500, seed=3)
    assert summary.features == ("f0", "f1", "f2")
    assert summary.sample.shape == (500, 3)
    np.testing.assert_allclose(summary.mean, reference.mean(axis=0))
    np.testing.assert_allclose(summary.std[:2], reference.std(axis=0)[:2])
    assert summary.std[2] == 1.0
    assert summary.bandwidth == pytest.approx(np.median(pdist(summary.sample)))
    assert summary == summary_of(reference, max_sample=500, seed=3)
    assert summary != summary_of(reference, max_sample=500, seed=4)


def test_summary_rejects_missing_values_and_wrong_shapes(rng: np.random.Generator) -> None:
    reference = rng.normal(size=(10, 2))
    reference[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        summary_of(reference)
    with pytest.raises(ValueError, match="2 columns"):
        summarize_multivariate(rng.normal(size=(10, 3)), ["a", "b"])


def test_summary_arrays_roundtrip_through_npz_without_pickle(rng: np.random.Generator) -> None:
    summary = summarize_multivariate(rng.normal(size=(50, 2)), ["température", "b\x00"])
    arrays = summary.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype.kind in "fu" for a in arrays.values())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as archive:
        restored = MultivariateSummary.from_arrays(dict(archive))
    assert restored == summary
    assert restored.features == ("température", "b\x00")


def test_permutation_statistics_match_the_direct_mmd2_for_every_split(
    rng: np.random.Generator,
) -> None:
    x, y = rng.normal(size=(12, 3)), rng.normal(0.5, 1.0, size=(15, 3))
    indicators = permutation_indicators(12, 15, 5, rng)
    test = permutation_test("gaussian", x, y, indicators, NUMPY, bandwidth=1.3)
    pooled = np.concatenate([x, y])
    for column in range(indicators.shape[1]):
        expected = direct_mmd2(*split(pooled, indicators, column), 1.3)
        assert test.statistics[column] == pytest.approx(expected, abs=1e-10)
    assert test.statistic == pytest.approx(direct_mmd2(x, y, 1.3), abs=1e-10)


def test_permutation_statistics_match_the_direct_energy_distance(
    rng: np.random.Generator,
) -> None:
    x, y = rng.normal(size=(9, 4)), rng.normal(size=(13, 4))
    indicators = permutation_indicators(9, 13, 4, rng)
    test = permutation_test("distance", x, y, indicators)
    pooled = np.concatenate([x, y])
    for column in range(indicators.shape[1]):
        expected = direct_energy2(*split(pooled, indicators, column))
        assert test.statistics[column] == pytest.approx(expected, abs=1e-10)


def test_energy_in_one_dimension_is_scipys_energy_distance(rng: np.random.Generator) -> None:
    # scipy's energy_distance is sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) over the empirical
    # distributions; energy_mv reports the same on standardised values.
    reference, window = rng.normal(size=(300, 1)), rng.normal(0.3, 1.2, size=(200, 1))
    summary = summary_of(reference, max_sample=300)
    score = EnergyDistance(permutations=20).score(summary, window)
    standardized = (window[:, 0] - summary.mean[0]) / summary.std[0]
    expected = stats.energy_distance(summary.sample[:, 0], standardized)
    assert score.value == pytest.approx(expected, rel=1e-9)
    test = permutation_test("distance", reference, window, permutation_indicators(300, 200, 0, rng))
    assert np.sqrt(test.statistic) == pytest.approx(
        stats.energy_distance(reference[:, 0], window[:, 0]), rel=1e-9
    )


@pytest.mark.parametrize("pair", ["gaussian", "distance"])
def test_blocked_and_unblocked_computations_agree(
    pair: PairFunction, rng: np.random.Generator
) -> None:
    x, y = rng.normal(size=(40, 3)), rng.normal(0.2, 1.0, size=(31, 3))
    indicators = permutation_indicators(40, 31, 50, rng)
    whole = permutation_test(pair, x, y, indicators, block_rows=1_000)
    for block_rows in (1, 7, 16, 33, 70):
        blocked = permutation_test(pair, x, y, indicators, block_rows=block_rows)
        np.testing.assert_allclose(blocked.statistics, whole.statistics, rtol=1e-12, atol=1e-14)
        assert blocked.p_value == whole.p_value


def test_p_values_count_permuted_statistics_at_least_the_observed(
    rng: np.random.Generator,
) -> None:
    summary = summary_of(rng.normal(size=(60, 2)))
    for measure in (MMD(permutations=99), EnergyDistance(permutations=99)):
        for shift in (0.0, 0.4, 5.0):
            window = rng.normal(shift, 1.0, size=(50, 2))
            test = measure.permutation_test(summary, window)
            exceed = np.count_nonzero(test.statistics[1:] >= test.statistics[0])
            assert test.statistics.size == 100
            assert test.p_value == (exceed + 1) / 100
            assert measure.score(summary, window).p_value == test.p_value
        assert test.p_value == 1 / 100


def test_permutation_p_value_counts_the_observed_split_drawn_again() -> None:
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [4.0]])
    observed = np.arange(4) < 2
    indicators = np.column_stack([observed, observed, ~observed, observed])
    assert permutation_test("gaussian", x, y, indicators).p_value == 1.0
    assert permutation_test("distance", x, y, indicators).p_value == 1.0


@pytest.mark.parametrize("kind", [MMD, EnergyDistance])
def test_permutation_tests_hold_their_level_under_the_null(
    kind: type[MMD] | type[EnergyDistance],
) -> None:
    rejections = 0
    for repetition in range(200):
        draws = np.random.default_rng(repetition)
        summary = summary_of(draws.normal(size=(30, 2)), seed=repetition)
        measure = kind(permutations=100, seed=repetition)
        score = measure.score(summary, draws.normal(size=(30, 2)))
        rejections += measure.drifted(score, 0.05)
    assert 0.02 <= rejections / 200 <= 0.09


def test_mmd_finds_a_clear_mean_shift(rng: np.random.Generator) -> None:
    summary = summary_of(rng.normal(size=(200, 4)))
    score = MMD().score(summary, rng.normal(size=(150, 4)) + [1.0, 0.0, 0.0, 0.0])
    assert score.value > 0
    assert score.p_value == 1 / 101


def test_mmd_sub_samples_the_window_to_max_window(rng: np.random.Generator) -> None:
    summary = summary_of(rng.normal(size=(100, 2)))
    window = rng.normal(size=(500, 2))
    sampled = MMD(max_window=80, permutations=10).score(summary, window)
    y = standardized_rows(summary, window, 80, np.random.default_rng(0))
    assert sampled.value == pytest.approx(direct_mmd2(summary.sample, y, summary.bandwidth))


def test_linear_mmd_is_the_mean_of_its_pair_terms(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    expected = [
        gaussian(x[i], x[i + 1], 0.9)
        + gaussian(y[i], y[i + 1], 0.9)
        - gaussian(x[i], y[i + 1], 0.9)
        - gaussian(x[i + 1], y[i], 0.9)
        for i in range(0, 10, 2)
    ]
    np.testing.assert_allclose(linear_mmd_terms(x, y, 0.9), expected, rtol=1e-12)

    summary = summary_of(rng.normal(size=(400, 3)), max_sample=400)
    window = rng.normal(size=(5_000, 3))
    score = LinearMMD(seed=2).score(summary, window)
    y = standardized_rows(summary, window, 400, np.random.default_rng(2))
    h = linear_mmd_terms(summary.sample, y, summary.bandwidth)
    assert score.value == pytest.approx(h.mean(), rel=1e-12)
    assert score.p_value == pytest.approx(stats.norm.sf(np.sqrt(200) * h.mean() / h.std(ddof=1)))


def test_linear_mmd_separates_shift_from_no_shift(rng: np.random.Generator) -> None:
    summary = summary_of(rng.normal(size=(20_000, 3)), max_sample=20_000)
    null = LinearMMD().score(summary, rng.normal(size=(50_000, 3)))
    shifted = LinearMMD().score(summary, rng.normal(0.5, 1.0, size=(50_000, 3)))
    assert null.p_value is not None and null.p_value > 0.01
    assert shifted.p_value is not None and shifted.p_value < 1e-6


def test_c2st_auc_is_about_half_under_the_null_and_high_under_a_shift(
    rng: np.random.Generator,
) -> None:
    summary = summary_of(rng.normal(size=(1_000, 3)))
    null = ClassifierTest().score(summary, rng.normal(size=(1_200, 3)))
    assert abs(null.value - 0.5) < 0.05
    assert null.p_value is not None and null.p_value > 0.01
    shifted = ClassifierTest().score(summary, rng.normal(size=(800, 3)) + [2.0, 0.0, 0.0])
    assert shifted.value > 0.8
    assert shifted.p_value is not None and shifted.p_value < 1e-10


def test_c2st_sees_a_change_of_scale_through_the_squared_features(
    rng: np.random.Generator,
) -> None:
    summary = summary_of(rng.normal(size=(1_000, 2)))
    score = ClassifierTest().score(summary, rng.normal(0.0, 2.5, size=(1_000, 2)))
    assert score.value > 0.75


def test_registry_lists_the_four_multivariate_tests() -> None:
    assert set(MULTIVARIATE_MEASURES) == {"mmd", "mmd_linear", "c2st", "energy_mv"}
    for name, measure in MULTIVARIATE_MEASURES.items():
        assert measure.name == name
        assert measure.kinds == frozenset({"multivariate"})
        assert measure.is_test and measure.higher_is_drift
        assert "numpy" in measure.backends
        assert measure.drifted(Score(0.3, 0.01), 0.05)
        assert not measure.drifted(Score(0.3, 0.2), 0.05)


def test_measures_reject_windows_of_the_wrong_width(rng: np.random.Generator) -> None:
    summary = summary_of(rng.normal(size=(30, 2)))
    for measure in MULTIVARIATE_MEASURES.values():
        with pytest.raises(ValueError, match="2 columns"):
            measure.score(summary, rng.normal(size=(30, 3)))
