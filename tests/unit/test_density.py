"""Density-ratio estimators against analytic ratios; weight clipping, normalisation, ESS; AUC; priors."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import norm

from monitor.adaptation import density


def gaussian_shift(seed: int = 0, rows: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source N(0, 1), target N(0.8, 0.7²) in 1-D, and the true ratio at the source rows."""
    rng = np.random.default_rng(seed)
    source = rng.normal(0.0, 1.0, (rows, 1))
    target = rng.normal(0.8, 0.7, (rows, 1))
    return source, target, norm.pdf(source[:, 0], 0.8, 0.7) / norm.pdf(source[:, 0], 0.0, 1.0)


def test_classifier_ratio_follows_the_analytic_ratio() -> None:
    source, target, truth = gaussian_shift()
    weights = density.classifier_ratio(source, target)
    assert np.corrcoef(weights, truth)[0, 1] > 0.95
    # direction: above 1 where the target's mass is, below 1 where only the source has mass
    assert np.median(weights[(source[:, 0] > 0.5) & (source[:, 0] < 1.2)]) > 1.5
    assert np.median(weights[source[:, 0] < -1.0]) < 0.3
    assert weights.mean() == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("estimate", [density.ulsif_ratio, density.kliep_ratio])
def test_kernel_estimators_follow_the_analytic_ratio(estimate: Callable[..., np.ndarray]) -> None:
    source, target, truth = gaussian_shift(seed=1)
    weights = estimate(source, target, centres=60)
    assert np.all(weights >= 0)
    assert np.corrcoef(weights, truth)[0, 1] > 0.8
    assert np.median(weights[source[:, 0] < -1.0]) < np.median(weights[(source[:, 0] > 0.5) & (source[:, 0] < 1.2)])


def test_kernel_estimators_evaluate_at_other_rows() -> None:
    source, target, _ = gaussian_shift(seed=2, rows=800)
    at = np.array([[-2.5], [0.8]])
    for estimate in (density.ulsif_ratio, density.kliep_ratio):
        low, high = estimate(source, target, at=at, centres=40)
        assert high > 1.0 > low


def test_a_variance_change_alone_is_seen() -> None:
    rng = np.random.default_rng(3)
    source, target = rng.normal(0, 1, (2000, 2)), rng.normal(0, 1, (2000, 2)) * [2.0, 1.0]
    fit = density.classifier_fit(source, target)
    assert fit.auc > 0.6
    tails = np.abs(source[:, 0]) > 2.0
    assert fit.source_ratio[tails].mean() > 2 * fit.source_ratio[~tails].mean()


def test_auc_is_half_for_one_distribution_and_weighting_can_explain_a_shift() -> None:
    rng = np.random.default_rng(4)
    source = rng.normal(0, 1, (3000, 3))
    assert abs(density.domain_auc(source, rng.normal(0, 1, (3000, 3))) - 0.5) < 0.04
    source_1d, target, truth = gaussian_shift(seed=4, rows=3000)
    assert density.domain_auc(source_1d, target) > 0.7
    assert abs(density.domain_auc(source_1d, target, source_weight=truth) - 0.5) < 0.05


def test_off_support_share() -> None:
    rng = np.random.default_rng(5)
    source = rng.normal(0, 1, (2000, 2))
    assert density.classifier_fit(source, rng.normal(0, 1, (2000, 2))).off_support_share() < 0.02
    assert density.classifier_fit(source, rng.normal(4, 1, (2000, 2))).off_support_share() > 0.8


def test_weighted_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(6)
    positive, negative = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    weight = rng.uniform(0.1, 3.0, 30)
    pairs = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    expected = float((pairs * weight).sum() / (len(positive) * weight.sum()))
    assert density.weighted_auc(positive, negative, weight) == pytest.approx(expected)


def test_clipping_keeps_mean_one_and_the_cap() -> None:
    weights = np.r_[np.full(98, 0.5), 40.0, 60.0]
    clipped, share = density.clip_weights(weights, 5.0)
    assert clipped.mean() == pytest.approx(1.0)
    assert clipped.max() <= 5.0 + 1e-9
    assert share == pytest.approx(0.02)
    assert np.all(np.diff(clipped[:98]) == 0)  # order among the unclipped rows is kept
    unchanged, none = density.clip_weights(np.full(10, 3.0), 5.0)
    assert np.allclose(unchanged, 1.0) and none == 0.0
    with pytest.raises(ValueError, match="max_weight"):
        density.clip_weights(weights, 1.0)


def test_normalise_and_effective_sample_size() -> None:
    assert density.normalise(np.array([1.0, 3.0])).tolist() == [0.5, 1.5]
    assert density.normalise(np.zeros(3)).tolist() == [1.0, 1.0, 1.0]
    assert density.effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert density.effective_sample_size(np.r_[1.0, np.zeros(49)]) == pytest.approx(1)
    assert density.ess_share(np.ones(50)) == pytest.approx(1.0)
    uneven = np.r_[np.ones(40), np.full(10, 9.0)]
    assert 0.0 < density.ess_share(uneven) < 0.6


def test_too_few_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        density.classifier_fit(np.zeros((1, 2)), np.zeros((5, 2)))


def label_shift_posteriors(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Posteriors of a calibrated 3-class model on source rows (with labels) and on label-shifted target rows."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])
    source_priors, target_priors = np.full(3, 1 / 3), np.array([0.7, 0.2, 0.1])

    def sample(priors: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.choice(3, rows, p=priors)
        features = means[labels] + rng.standard_normal((rows, 2))
        logits = -0.5 * ((features[:, None, :] - means[None]) ** 2).sum(axis=2)
        return softmax(logits, axis=1), labels

    proba_source, labels = sample(source_priors, 3000)
    proba_target, target_labels = sample(target_priors, 4000)
    return proba_source, labels, proba_target, np.bincount(target_labels, minlength=3) / len(target_labels)


@pytest.mark.parametrize("method", ["em", "bbse"])
def test_target_priors_are_recovered(method: str) -> None:
    proba_source, labels, proba_target, truth = label_shift_posteriors()
    source_priors, target_priors = density.estimate_target_priors(proba_source, labels, proba_target, method)
    assert source_priors == pytest.approx(np.bincount(labels) / len(labels))
    assert target_priors.sum() == pytest.approx(1.0)
    assert np.abs(target_priors - truth).max() < 0.05


def test_calibration_undoes_overconfidence() -> None:
    proba_source, labels, _, _ = label_shift_posteriors(seed=8)
    overconfident = softmax(2.0 * np.log(proba_source), axis=1)
    temperature, bias = density.fit_calibration(overconfident, labels)
    assert temperature == pytest.approx(2.0, rel=0.15)
    assert np.abs(bias).max() < 0.2
    restored = density.apply_calibration(overconfident, temperature, bias)
    assert np.abs(restored - proba_source).mean() < 0.02
