"""Measures over the moments of a feature: Welch's t-test of the means."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from monitor.divergence.base import Measure, Score, numeric_pair
from monitor.divergence.summary import FeatureSummary
from monitor.divergence.window import FeatureWindow


class WelchT(Measure):
    """Welch's unequal-variance t-test on the means; ``scipy.stats.ttest_ind(equal_var=False)``.

    The value is ``|t|``; the p-value is two-sided. Reference moments come from the summary.
    With no spread on either side, equal means score 0 with p-value 1 (scipy gives NaN) and
    different means score infinity with p-value 0. A side with one value scores NaN (no
    variance), as in scipy. Default threshold: p < 0.05.
    """

    name = "welch_t"
    kinds = frozenset({"numeric"})
    is_test = True
    default_threshold = 0.05
    description = "Welch's t-test of equal means (p-value compared with the threshold)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """``|t|`` and its two-sided p-value."""
        ref, win = numeric_pair(self, reference, window)
        m, n = ref.n, win.n
        if m < 2 or n < 2:
            return Score(value=math.nan, p_value=math.nan)
        ref_var = ref.std**2 * m / (m - 1)
        window_var = float(np.var(win.values, ddof=1))
        window_mean = float(np.mean(win.values))
        a, b = ref_var / m, window_var / n
        if a + b == 0:
            return Score(0.0, 1.0) if ref.mean == window_mean else Score(math.inf, 0.0)
        t = (ref.mean - window_mean) / math.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (m - 1) + b**2 / (n - 1))
        return Score(value=abs(t), p_value=float(2 * stats.t.sf(abs(t), df)))
