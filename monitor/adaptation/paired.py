"""The gate's paired statistics: importance-weighted means with their standard errors, and the harm test."""

from __future__ import annotations

import numpy as np


def p_harm(utility: np.ndarray, champion_utility: np.ndarray, loss: str) -> float:
    """One-sided p that the challenger is worse: exact McNemar (accuracy) or a paired t-test (a loss)."""
    from scipy.stats import binomtest, ttest_1samp  # scipy.stats costs a second at import; only a check needs it

    if loss == "accuracy":  # among the rows where the two disagree, does the champion win more often?
        worse = int(np.sum((champion_utility == 1) & (utility == 0)))
        better = int(np.sum((champion_utility == 0) & (utility == 1)))
        return float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue) if worse + better else 1.0
    difference = utility - champion_utility
    if len(difference) < 2 or np.ptp(difference) == 0:
        return 0.0 if len(difference) and difference[0] < 0 else 1.0
    return float(ttest_1samp(difference, 0.0, alternative="less").pvalue)


def weighted_mean(values: np.ndarray, weights: np.ndarray, control_variate: bool,
                  strata: np.ndarray | None = None) -> tuple[float, float]:
    """Importance-weighted mean of per-row values and its standard error, with DEV's control variate.

    With ``strata`` (weights constant within each) the error is the stratified one, Σ_s W_s² var_s / n_s.
    """
    weighted = weights * values
    if strata is not None:
        return float(weighted.mean()), _stratified_error(values, weights, strata)
    spread = float(np.var(weights, ddof=1)) if len(weights) > 1 else 0.0
    if control_variate and spread > 0:
        eta = -float(np.cov(weighted, weights)[0, 1]) / spread
        weighted = weighted + eta * (weights - 1.0)
    error = float(np.std(weighted, ddof=1) / np.sqrt(len(weighted))) if len(weighted) > 1 else float("inf")
    return float(weighted.mean()), error


def _stratified_error(values: np.ndarray, weights: np.ndarray, strata: np.ndarray) -> float:
    """Standard error of Σ_s W_s·mean_s(values), W_s the stratum's share of the total weight."""
    variance = 0.0
    for stratum in np.unique(strata):
        inside = strata == stratum
        share = float(weights[inside].sum() / len(weights))
        count = int(inside.sum())
        variance += share**2 * (float(np.var(values[inside], ddof=1)) / count if count > 1 else 0.0)
    return float(np.sqrt(variance))
