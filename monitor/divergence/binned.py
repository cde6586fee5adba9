"""Divergences of binned (numeric) or category (categorical) proportions: PSI, KL, Jensen–Shannon, Hellinger."""

from __future__ import annotations

import math

import numpy as np

from monitor.divergence.base import Measure, Score
from monitor.divergence.counts import proportions, smoothed
from monitor.divergence.summary import FeatureSummary
from monitor.divergence.window import FeatureWindow


class PopulationStabilityIndex(Measure):
    """Population Stability Index ``sum((q - p) * ln(q / p))``, p reference, q window.

    Numeric features use the reference-quantile bins; categorical ones the union of reference
    and window categories. Zero proportions on either side are replaced by ``EPS = 1e-4`` and
    the proportions are not renormalised afterwards, so PSI equals ``kl + kl_reverse``.
    Default threshold 0.2 (the usual reading: under 0.1 stable, over 0.25 a major shift).
    """

    name = "psi"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.2
    description = "Population Stability Index over reference-quantile bins or categories"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The PSI of the window's proportions against the reference's."""
        p, q = smoothed(*proportions(reference, window))
        return Score(value=float(np.sum((q - p) * np.log(q / p))))


class KullbackLeibler(Measure):
    """KL divergence ``KL(window || reference) = sum(q * ln(q / p))`` in nats.

    Over the same bins or categories as PSI, with the same smoothing (empty proportions become
    ``EPS = 1e-4``, not renormalised). Default threshold 0.1 (about half the PSI threshold,
    since PSI is the sum of both directions).
    """

    name = "kl"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.1
    description = "KL divergence of the window from the reference (nats, smoothed)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """``KL(window || reference)``."""
        p, q = smoothed(*proportions(reference, window))
        return Score(value=float(np.sum(q * np.log(q / p))))


class KullbackLeiblerReverse(Measure):
    """KL divergence ``KL(reference || window) = sum(p * ln(p / q))`` in nats.

    Smoothed as ``kl``; it punishes the window for leaving reference bins empty.
    Default threshold 0.1.
    """

    name = "kl_reverse"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.1
    description = "KL divergence of the reference from the window (nats, smoothed)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """``KL(reference || window)``."""
        p, q = smoothed(*proportions(reference, window))
        return Score(value=float(np.sum(p * np.log(p / q))))


class JensenShannon(Measure):
    """Jensen–Shannon distance (base 2, in [0, 1]) between binned or category proportions.

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``. Default threshold 0.1.
    """

    name = "jensen_shannon"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.1
    description = "Jensen-Shannon distance (base 2) over reference-quantile bins or categories"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The Jensen–Shannon distance."""
        return Score(value=math.sqrt(js_divergence(*proportions(reference, window))))


class JensenShannonDivergence(Measure):
    """Jensen–Shannon divergence (base 2, in [0, 1]): the square of ``jensen_shannon``.

    Default threshold 0.01, the square of the distance's 0.1.
    """

    name = "js_divergence"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.01
    description = "Jensen-Shannon divergence (base 2) over reference-quantile bins or categories"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The Jensen–Shannon divergence."""
        return Score(value=js_divergence(*proportions(reference, window)))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits of two aligned proportion vectors."""
    m = (p + q) / 2
    divergence = (_relative_entropy(p, m) + _relative_entropy(q, m)) / 2
    return max(divergence, 0.0) / math.log(2)


def _relative_entropy(p: np.ndarray, m: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / m[mask])))


class Hellinger(Measure):
    """Hellinger distance ``sqrt(sum((sqrt(p) - sqrt(q))^2) / 2)`` in [0, 1].

    Over reference-quantile bins or categories; no smoothing is needed. Default threshold 0.1.
    """

    name = "hellinger"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.1
    description = "Hellinger distance over reference-quantile bins or categories"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The Hellinger distance."""
        p, q = proportions(reference, window)
        return Score(value=math.sqrt(float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / 2))
