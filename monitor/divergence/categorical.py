"""Measures of categorical features only: chi-square, total variation, L-infinity, unseen share."""

from __future__ import annotations

import numpy as np
from scipy import special

from monitor.divergence.base import Measure, Score, categorical_pair
from monitor.divergence.counts import category_counts, proportions
from monitor.divergence.summary import FeatureSummary
from monitor.divergence.window import FeatureWindow


class TotalVariation(Measure):
    """Total variation distance ``sum(|p - q|) / 2`` of category frequencies, in [0, 1].

    The share of the window's mass that would have to move to match the reference.
    Default threshold 0.1.
    """

    name = "total_variation"
    kinds = frozenset({"categorical"})
    is_test = False
    default_threshold = 0.1
    description = "Total variation distance of category frequencies"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The total variation distance."""
        p, q = proportions(reference, window)
        return Score(value=float(np.sum(np.abs(p - q))) / 2)


class LInfinity(Measure):
    """L-infinity distance ``max |p - q|`` of category frequencies: the largest single change.

    Default threshold 0.1 (one category's share moved by ten percentage points).
    """

    name = "linf"
    kinds = frozenset({"categorical"})
    is_test = False
    default_threshold = 0.1
    description = "Largest change of one category's frequency (L-infinity distance)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The L-infinity distance."""
        p, q = proportions(reference, window)
        return Score(value=float(np.max(np.abs(p - q))))


class UnseenShare(Measure):
    """Share of window rows whose category does not occur in the reference.

    Default threshold 0.05: one row in twenty carries a category the model never saw.
    """

    name = "unseen_share"
    kinds = frozenset({"categorical"})
    is_test = False
    default_threshold = 0.05
    description = "Share of window rows with a category unseen in the reference"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The unseen share."""
        ref, win = categorical_pair(self, reference, window)
        ref_counts, window_counts = category_counts(ref, win)
        seen = ref_counts > 0
        return Score(value=float(window_counts[~seen].sum()) / win.n)


class ChiSquare(Measure):
    """Chi-square test of homogeneity on the 2 x K reference-vs-window category table.

    Categories unseen in the reference are columns too; columns empty on both sides are dropped.
    Agrees with ``scipy.stats.chi2_contingency(table, correction=False)``.
    Default threshold: p < 0.05.
    """

    name = "chi_square"
    kinds = frozenset({"categorical"})
    is_test = True
    default_threshold = 0.05
    description = "Chi-square test of homogeneity of category counts (p-value vs threshold)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The chi-square statistic and its p-value (0 and 1 when only one category occurs)."""
        table = np.vstack(category_counts(*categorical_pair(self, reference, window))).astype(float)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return Score(value=0.0, p_value=1.0)
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        # chi2.sf's own function, without the distribution's per-call argument checks
        return Score(value=statistic, p_value=float(special.chdtrc(table.shape[1] - 1, statistic)))
