"""Measures over the two empirical CDFs: KS, Anderson–Darling, Cramér–von Mises, Wasserstein, energy."""

from __future__ import annotations

import functools
import math
import warnings
from typing import Sequence

import numpy as np
from scipy import special, stats

from monitor.divergence.backend import NUMPY, Backend
from monitor.divergence.base import Measure, Score, map_features, numeric_pair
from monitor.divergence.summary import FeatureSummary
from monitor.divergence.window import FeatureWindow, NumericWindow

try:  # ks_2samp's own exact two-sample distribution, called without re-sorting what is sorted
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - a scipy that moved it: ks_2samp is called instead
    _attempt_exact_2kssamp = None

#: ``ks_2samp(method="auto")`` is exact up to this sample size and asymptotic beyond it.
_KS_EXACT_MAX_N = 10_000


class KolmogorovSmirnov(Measure):
    """Two-sample Kolmogorov–Smirnov test; agrees with ``scipy.stats.ks_2samp(method="auto")``.

    Up to 10 000 values on both sides scipy computes the exact p-value; beyond that the
    statistic comes from the window's cross ranks against the sorted reference and the p-value
    from ``kstwo.sf(d, round(m * n / (m + n)))``, as scipy's asymptotic method does.
    Default threshold: p < 0.05.
    """

    name = "ks"
    backends = frozenset({"numpy", "torch"})
    kinds = frozenset({"numeric"})
    is_test = True
    default_threshold = 0.05
    description = "Two-sample Kolmogorov-Smirnov test (p-value compared with the threshold)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The KS statistic and its two-sided p-value."""
        ref, win = numeric_pair(self, reference, window)
        if max(ref.n, win.n) <= _KS_EXACT_MAX_N:
            return _exact_ks(ref.sorted_values, win)
        return _asymptotic_ks(ks_statistic(ref.sorted_values, win), ref.n, win.n)

    def score_many(
        self, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]], backend: Backend = NUMPY
    ) -> list[Score]:
        """The asymptotic regime's statistics per feature (on torch in one batch), their p-values in one call."""
        large = [i for i, (ref, win) in enumerate(pairs) if max(ref.n, win.n) > _KS_EXACT_MAX_N]
        if not large:
            return super().score_many(pairs, backend)
        chosen = [pairs[i] for i in large]
        if backend.name == "torch":
            statistics = [d for d, _ in _batched(self, chosen, backend)]
        else:
            statistics = map_features(lambda pair: ks_statistic(numeric_pair(self, *pair)[0].sorted_values, pair[1]),
                                      chosen, sum(window.n for _, window in chosen))
        sizes = [_effective_n(ref.n, win.n) for ref, win in chosen]
        scores: list[Score | None] = [None] * len(pairs)
        for i, d, p_value in zip(large, statistics, ks_asymptotic_p_values(statistics, sizes)):
            scores[i] = Score(value=float(d), p_value=p_value)
        small = [i for i in range(len(pairs)) if scores[i] is None]
        for i, score in zip(small, super().score_many([pairs[i] for i in small], backend)):
            scores[i] = score
        return [score for score in scores if score is not None]


def _exact_ks(sorted_ref: np.ndarray, window: NumericWindow) -> Score:
    """scipy's exact regime: the statistic snapped to the ``lcm(n1, n2)`` lattice and its exact p-value.

    The statistic comes from the window's shared sort (no second sort of the reference, no
    argument checks); the p-value is scipy's own exact computation, kept per lattice point.
    Where scipy's exact computation fails (it then warns and goes asymptotic), ``ks_2samp``
    itself is called, so that case stays scipy's too.
    """
    n1, n2 = int(sorted_ref.size), window.n
    p_value = None
    if n1 and n2:
        lcm = math.lcm(n1, n2)
        h = int(np.round(window.ks(sorted_ref) * lcm))
        p_value = _exact_p_value(n1, n2, h)
    if p_value is None:
        result = stats.ks_2samp(sorted_ref, window.values, method="auto")
        return Score(value=float(result.statistic), p_value=float(result.pvalue))
    return Score(value=h / lcm, p_value=p_value)


@functools.lru_cache(maxsize=8192)
def _exact_p_value(n1: int, n2: int, h: int) -> float | None:
    """``ks_2samp``'s exact two-sided p-value of the statistic ``h / lcm(n1, n2)``; None where scipy's fails.

    Monitors of one size meet the same few lattice points again and again (scipy's computation is
    a Python loop over up to n terms), hence the cache.
    """
    if _attempt_exact_2kssamp is None:  # a scipy without it: ks_2samp computes it
        return None
    success, _, p_value = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), h / math.lcm(n1, n2), "two-sided")
    return float(np.clip(p_value, 0.0, 1.0)) if success else None


def _effective_n(n1: int, n2: int) -> int:
    """scipy's ``round(m * n / (m + n))`` of the two sample sizes (larger first, as ``ks_2samp`` orders them)."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return int(np.round(m * n / (m + n)))


def _asymptotic_ks(d: float, n1: int, n2: int) -> Score:
    return Score(value=d, p_value=ks_asymptotic_p_value(d, _effective_n(n1, n2)))


def _batched(measure: Measure, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]],
             backend: Backend) -> list[tuple[float, float]]:
    """(KS statistic, Wasserstein-1) of every pair, on the torch backend in batches."""
    from monitor.divergence.torch_ops import (
        ks_wasserstein_batched,  # torch stays optional
    )

    checked = [numeric_pair(measure, ref, win) for ref, win in pairs]
    return ks_wasserstein_batched([ref.sorted_values for ref, _ in checked],
                                  [win.sorted for _, win in checked], backend)


def ks_statistic(sorted_ref: np.ndarray, window: NumericWindow) -> float:
    """The two-sided KS statistic, bit for bit as scipy computes it (ties included).

    The ECDFs differ most at the end of some run of equal pooled values: where a gap follows
    (after the last pooled value both ECDFs are 1, so 0 is a floor).
    """
    return window.ks(sorted_ref)


def ks_asymptotic_p_value(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, with its slowest branch summed in numpy.

    Where scipy evaluates ``2 * smirnov(n, d)`` (n > 140, 2.2 <= n d^2 < 370) in double-double
    arithmetic, about 0.1 s at n = 50 000, the Birnbaum–Tingey sum is taken here in log space:
    within 1e-9 relative of scipy for p-values above 1e-300 and n up to 500 000. A NaN stays NaN
    (it never becomes p = 1).
    """
    return ks_asymptotic_p_values([d], [n])[0]


def _summed(d: float, n: int) -> bool:
    """Whether scipy would take its slow double-double ``smirnov`` branch (summed here instead)."""
    return n > 140 and 1.0 < n * d < n - 1 and d < 0.5 and 2.2 <= n * d * d < 370.0


def ks_asymptotic_p_values(statistics: Sequence[float], sizes: Sequence[int]) -> list[float]:
    """``ks_asymptotic_p_value`` of each (statistic, effective size), scipy's branch in one vectorised call."""
    p_values = [math.nan] * len(statistics)
    rest = []
    for i, (d, n) in enumerate(zip(statistics, sizes)):
        if _summed(d, n):
            p_values[i] = float(np.clip(2.0 * _smirnov_upper_tail(n, d), 0.0, 1.0))
        else:
            rest.append(i)
    if rest:
        d = np.array([statistics[i] for i in rest], dtype=np.float64)
        n = np.array([sizes[i] for i in rest], dtype=np.float64)
        for i, p_value in zip(rest, np.clip(np.atleast_1d(stats.kstwo.sf(d, n)), 0.0, 1.0)):
            p_values[i] = float(p_value)
    return p_values


@functools.lru_cache(maxsize=16)
def _log_binomials(n: int) -> np.ndarray:
    """``log C(n, j)`` for j = 0..n (a monitor scores every window at the same few sizes)."""
    j = np.arange(n + 1, dtype=np.float64)
    return special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)


def _smirnov_upper_tail(n: int, d: float) -> float:
    """``P(D+_n >= d)`` by the Birnbaum–Tingey sum over j = 0 .. floor(n (1 - d)).

    The base ``1 - d - j/n`` is taken as ``((n - j) - n d) / n`` and clipped at 0: where
    ``n (1 - d)`` is a whole number the last term's base is exactly 0 (the term vanishes), and
    the rounding of ``1 - d - j/n`` there must not turn it into the log of a tiny negative number.
    """
    j = np.arange(math.floor(n * (1 - d)) + 1, dtype=np.float64)
    base = np.maximum(((n - j) - n * d) / n, 0.0)
    with np.errstate(divide="ignore"):
        log_terms = _log_binomials(n)[: j.size] + special.xlogy(n - j, base) + (j - 1) * np.log(d + j / n)
    # log-sum-exp by hand: scipy's generic one costs more than the sum (the largest term is finite: j = 0)
    top = float(log_terms.max())
    log_terms -= top
    return d * math.exp(top + math.log(float(np.exp(log_terms, out=log_terms).sum())))


class AndersonDarling(Measure):
    """Anderson–Darling k-sample test (midrank); equals ``scipy.stats.anderson_ksamp``.

    The p-value is scipy's interpolation of Scholz & Stephens' table, which scipy caps to
    0.001..0.25: a window far out reports 0.001 and one close in reports 0.25, so the test
    decides correctly at any threshold inside that range. A pooled sample with a single
    distinct value (where scipy raises) scores 0 with p-value 1; fewer than 4 pooled values
    score NaN (the statistic's variance is undefined). Default threshold: p < 0.05.
    """

    thread_safe = False  # it silences scipy's capping warning, and warning filters are process-wide
    name = "anderson_darling"
    kinds = frozenset({"numeric"})
    is_test = True
    default_threshold = 0.05
    description = "Anderson-Darling k-sample test (p-value capped to 0.001..0.25 as scipy does)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The standardised AD statistic and its interpolated p-value."""
        ref, win = numeric_pair(self, reference, window)
        if ref.n + win.n < 4:
            return Score(value=math.nan, p_value=math.nan)
        if ref.sorted_values[0] == ref.sorted_values[-1] == win.sorted[0] == win.sorted[-1]:
            return Score(value=0.0, p_value=1.0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="p-value (capped|floored)")
            result = stats.anderson_ksamp([ref.sorted_values, win.sorted], variant="midrank")
        return Score(value=float(result.statistic), p_value=float(result.pvalue))


class CramerVonMises(Measure):
    """Cramér–von Mises two-sample test; equals ``scipy.stats.cramervonmises_2samp``.

    scipy's ``method="auto"``: the exact p-value when both sides have at most 20 values, the
    asymptotic one otherwise. A side with one value scores NaN, as in scipy (without its
    warning). Default threshold: p < 0.05.
    """

    name = "cramer_von_mises"
    kinds = frozenset({"numeric"})
    is_test = True
    default_threshold = 0.05
    description = "Cramer-von Mises two-sample test (p-value compared with the threshold)"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The CvM statistic T and its p-value."""
        ref, win = numeric_pair(self, reference, window)
        if ref.n < 2 or win.n < 2:
            return Score(value=math.nan, p_value=math.nan)
        result = stats.cramervonmises_2samp(ref.sorted_values, win.sorted, method="auto")
        return Score(value=float(result.statistic), p_value=float(result.pvalue))


class Wasserstein(Measure):
    """Wasserstein-1 distance divided by the reference std (by 1 when that std is 0).

    Default threshold 0.1: the window's mass moved a tenth of a reference standard deviation.
    """

    name = "wasserstein"
    backends = frozenset({"numpy", "torch"})
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.1
    description = "Wasserstein-1 distance normalised by the reference standard deviation"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The normalised Wasserstein-1 distance."""
        ref, win = numeric_pair(self, reference, window)
        distance = cdf_distance(ref.sorted_values, win, power=1)
        return Score(value=distance / (ref.std if ref.std > 0 else 1.0))

    def score_many(
        self, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]], backend: Backend = NUMPY
    ) -> list[Score]:
        """On torch, every feature's distance is computed in one batch."""
        if backend.name != "torch" or not pairs:
            return super().score_many(pairs, backend)
        return [Score(value=w1 / (ref.std if ref.std > 0 else 1.0))
                for (ref, _), (_, w1) in zip(pairs, _batched(self, pairs, backend))]


class WassersteinRaw(Measure):
    """Wasserstein-1 distance in the feature's own units; equals ``wasserstein_distance``.

    Default threshold 0.1, in the feature's units: set one per feature unless it is scaled.
    """

    name = "wasserstein_raw"
    backends = frozenset({"numpy", "torch"})
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.1
    description = "Wasserstein-1 distance in the feature's own units"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The Wasserstein-1 distance."""
        ref, win = numeric_pair(self, reference, window)
        return Score(value=cdf_distance(ref.sorted_values, win, power=1))

    def score_many(
        self, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]], backend: Backend = NUMPY
    ) -> list[Score]:
        """On torch, every feature's distance is computed in one batch."""
        if backend.name != "torch" or not pairs:
            return super().score_many(pairs, backend)
        return [Score(value=w1) for _, w1 in _batched(self, pairs, backend)]


class Energy(Measure):
    """1-D energy distance ``sqrt(2 * integral (F_ref - F_win)^2)``; equals ``energy_distance``.

    Unnormalised (it scales with the square root of the feature's units). Default threshold
    0.1: about a 0.13-standard-deviation mean shift of a unit-variance normal feature.
    """

    name = "energy"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.1
    description = "Energy distance between the reference and window distributions"

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The energy distance."""
        ref, win = numeric_pair(self, reference, window)
        return Score(value=math.sqrt(2.0 * cdf_distance(ref.sorted_values, win, power=2)))


def cdf_distance(sorted_ref: np.ndarray, window: NumericWindow, power: int) -> float:
    """``integral |F_ref - F_win|^power`` over the real line (power 1 or 2)."""
    return window.w1(sorted_ref) if power == 1 else window.distances(sorted_ref).w2
