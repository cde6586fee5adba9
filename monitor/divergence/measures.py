"""The measure contract and the built-in numpy measures.

Every measure reads the reference side from its summary (sorted values, quantile bins, category
counts) and the window side from a prepared window (sorted once, counted once), so nothing that
depends only on the reference is recomputed per window.
"""

from __future__ import annotations

import math
import warnings
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
from scipy import special, stats

from monitor.divergence.backend import NUMPY, Backend
from monitor.divergence.summary import CategoricalSummary, FeatureSummary, NumericSummary
from monitor.divergence.window import CategoricalWindow, FeatureWindow, NumericWindow


#: ``ks_2samp(method="auto")`` is exact up to this sample size and asymptotic beyond it.
_KS_EXACT_MAX_N = 10_000

#: The proportion that stands in for an empty bin or category in PSI and KL.
EPS = 1e-4


#: Below this many window values in all, features are scored one after the other.
_PARALLEL_MIN_VALUES = 200_000


@functools.cache
def _feature_pool() -> ThreadPoolExecutor:
    """The process-wide pool that scores large features in parallel."""
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="driftd-measure")


@dataclass(frozen=True)
class Score:
    """A measure's value for one feature and window, and its p-value when it is a test."""

    value: float
    p_value: float | None = None


class Measure:
    """Base class of a divergence measure (plugins subclass it too)."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    is_test: ClassVar[bool]
    #: Whether a larger ``value`` means more drift (tests still decide on the p-value).
    higher_is_drift: ClassVar[bool] = True
    default_threshold: ClassVar[float]
    description: ClassVar[str]
    backends: ClassVar[frozenset[str]] = frozenset({"numpy"})

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """Score a non-empty prepared window against the reference summary."""
        raise NotImplementedError

    #: Whether ``score`` may run for several features at once (False: it touches process state).
    thread_safe: ClassVar[bool] = True

    def score_many(
        self, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]], backend: Backend = NUMPY
    ) -> list[Score]:
        """Score many (reference, window) pairs; measures without a ``backend`` path run on numpy.

        Large features are scored on a small shared thread pool (numpy releases the GIL while
        it sorts and searches), so one window uses every core.
        """
        if not self.thread_safe or len(pairs) < 2 or sum(window.n for _, window in pairs) < _PARALLEL_MIN_VALUES:
            return [self.score(reference, window) for reference, window in pairs]
        return list(_feature_pool().map(lambda pair: self.score(*pair), pairs))

    def drifted(self, score: Score, threshold: float) -> bool:
        """Whether a score means drift: ``p < threshold`` for tests, else value past threshold."""
        if self.is_test:
            if score.p_value is None:
                raise ValueError(f"measure {self.name!r} is a test but its score has no p-value")
            return score.p_value < threshold
        return score.value > threshold if self.higher_is_drift else score.value < threshold


# --- numeric tests -------------------------------------------------------------------------


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
        ref, win = _numeric(self, reference, window)
        if max(ref.n, win.n) <= _KS_EXACT_MAX_N:
            # The exact regime (its statistic snapped to the n1*n2 lattice, its fallback when
            # the exact computation fails) is scipy's; at these sizes that is cheap.
            result = stats.ks_2samp(ref.sorted_values, win.values, method="auto")
            return Score(value=float(result.statistic), p_value=float(result.pvalue))
        return _asymptotic_ks(ks_statistic(ref.sorted_values, win), ref.n, win.n)

    def score_many(
        self, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]], backend: Backend = NUMPY
    ) -> list[Score]:
        """On torch, the statistics of the asymptotic regime are computed in one batch."""
        large = [i for i, (ref, win) in enumerate(pairs) if max(ref.n, win.n) > _KS_EXACT_MAX_N]
        if backend.name != "torch" or not large:
            return super().score_many(pairs, backend)
        scores: list[Score | None] = [None if i in set(large) else self.score(*pair)
                                      for i, pair in enumerate(pairs)]
        for i, (d, _) in zip(large, _batched(self, [pairs[i] for i in large], backend)):
            scores[i] = _asymptotic_ks(d, pairs[i][0].n, pairs[i][1].n)
        return [score for score in scores if score is not None]


def _asymptotic_ks(d: float, n1: int, n2: int) -> Score:
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return Score(value=d, p_value=ks_asymptotic_p_value(d, int(np.round(m * n / (m + n)))))


def _batched(measure: Measure, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]],
             backend: Backend) -> list[tuple[float, float]]:
    """(KS statistic, Wasserstein-1) of every pair, on the torch backend in batches."""
    from monitor.divergence.torch_ops import ks_wasserstein_batched  # torch stays optional

    checked = [_numeric(measure, ref, win) for ref, win in pairs]
    return ks_wasserstein_batched([ref.sorted_values for ref, _ in checked],
                                  [win.sorted for _, win in checked], backend)


def ks_statistic(sorted_ref: np.ndarray, window: NumericWindow) -> float:
    """The two-sided KS statistic, bit for bit as scipy computes it (ties included).

    ``F_ref - F_win`` peaks at a reference point and ``F_win - F_ref`` at a window point;
    inside a run of ties the rank undercounts, which can only lower the candidate there.
    """
    gaps = window.gaps(sorted_ref)
    return float(max(gaps.ref_diffs.max(), gaps.win_diffs.max()))


def ks_asymptotic_p_value(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, with its slowest branch summed in numpy.

    Where scipy evaluates ``2 * smirnov(n, d)`` (n > 140, 2.2 <= n d^2 < 370) in double-double
    arithmetic, about 0.1 s at n = 50 000, the Birnbaum–Tingey sum is taken here in log space:
    within 1e-9 relative of scipy for p-values above 1e-300 and n up to 500 000.
    """
    if n > 140 and 1.0 < n * d < n - 1 and d < 0.5 and 2.2 <= n * d * d < 370.0:
        return min(1.0, 2.0 * _smirnov_upper_tail(n, d))
    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))


def _smirnov_upper_tail(n: int, d: float) -> float:
    """``P(D+_n >= d)`` by the Birnbaum–Tingey sum."""
    j = np.arange(math.floor(n * (1 - d)) + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_terms = (
            special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
            + special.xlogy(n - j, 1 - d - j / n) + (j - 1) * np.log(d + j / n)
        )
    return d * math.exp(special.logsumexp(log_terms))


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
        ref, win = _numeric(self, reference, window)
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
        ref, win = _numeric(self, reference, window)
        if ref.n < 2 or win.n < 2:
            return Score(value=math.nan, p_value=math.nan)
        result = stats.cramervonmises_2samp(ref.sorted_values, win.sorted, method="auto")
        return Score(value=float(result.statistic), p_value=float(result.pvalue))


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
        ref, win = _numeric(self, reference, window)
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


# --- distances between numeric CDFs ---------------------------------------------------------


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
        ref, win = _numeric(self, reference, window)
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
        ref, win = _numeric(self, reference, window)
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
        ref, win = _numeric(self, reference, window)
        return Score(value=math.sqrt(2.0 * cdf_distance(ref.sorted_values, win, power=2)))


def cdf_distance(sorted_ref: np.ndarray, window: NumericWindow, power: int) -> float:
    """``integral |F_ref - F_win|^power`` over the real line (power 1 or 2)."""
    gaps = window.gaps(sorted_ref)
    total = 0.0
    for diffs, widths in ((gaps.ref_diffs, gaps.ref_widths), (gaps.win_diffs, gaps.win_widths)):
        terms = np.abs(diffs) if power == 1 else diffs * diffs
        total += float(np.sum(terms * widths))
    return total


# --- binned and categorical divergences ------------------------------------------------------


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
        p, q = _smoothed(*proportions(reference, window))
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
        p, q = _smoothed(*proportions(reference, window))
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
        p, q = _smoothed(*proportions(reference, window))
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
        ref, win = _categorical(self, reference, window)
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
        table = np.vstack(category_counts(*_categorical(self, reference, window))).astype(float)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return Score(value=0.0, p_value=1.0)
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        return Score(value=statistic, p_value=float(stats.chi2.sf(statistic, table.shape[1] - 1)))


# --- shared helpers ---------------------------------------------------------------------------


def proportions(
    reference: FeatureSummary, window: FeatureWindow
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned reference and window proportions: per quantile bin, or per category (union)."""
    if isinstance(reference, NumericSummary) and isinstance(window, NumericWindow):
        _check_not_empty(window)
        return reference.probs, window_bin_counts(reference.edges, window) / window.n
    if isinstance(reference, CategoricalSummary) and isinstance(window, CategoricalWindow):
        _check_not_empty(window)
        ref_counts, window_counts = category_counts(reference, window)
        return ref_counts / ref_counts.sum(), window_counts / window.n
    raise TypeError(
        f"reference {type(reference).__name__} and window {type(window).__name__} do not match"
    )


def window_bin_counts(edges: np.ndarray, window: NumericWindow) -> np.ndarray:
    """Window counts in the right-closed bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    at_or_below = np.searchsorted(window.sorted, edges, side="right")
    return np.diff(at_or_below, prepend=0, append=window.n)


def category_counts(
    reference: CategoricalSummary, window: CategoricalWindow
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and window counts over the reference categories then unseen window ones."""
    index = reference.index
    positions = np.empty(len(window.categories), dtype=np.intp)
    size = len(index)
    for k, category in enumerate(window.categories):
        position = index.get(category)
        if position is None:
            position, size = size, size + 1
        positions[k] = position
    ref_counts = np.zeros(size, dtype=np.int64)
    ref_counts[: len(index)] = reference.counts
    aligned = np.zeros(size, dtype=np.int64)
    aligned[positions] = window.counts
    return ref_counts, aligned


def _smoothed(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)


def _check_not_empty(window: FeatureWindow) -> None:
    if window.n == 0:
        raise ValueError("cannot score an empty window")


def _numeric(
    measure: Measure, reference: FeatureSummary, window: FeatureWindow
) -> tuple[NumericSummary, NumericWindow]:
    if not isinstance(reference, NumericSummary) or not isinstance(window, NumericWindow):
        raise TypeError(
            f"measure {measure.name!r} needs a numeric feature, got "
            f"{type(reference).__name__} and {type(window).__name__}"
        )
    _check_not_empty(window)
    return reference, window


def _categorical(
    measure: Measure, reference: FeatureSummary, window: FeatureWindow
) -> tuple[CategoricalSummary, CategoricalWindow]:
    if not isinstance(reference, CategoricalSummary) or not isinstance(window, CategoricalWindow):
        raise TypeError(
            f"measure {measure.name!r} needs a categorical feature, got "
            f"{type(reference).__name__} and {type(window).__name__}"
        )
    _check_not_empty(window)
    return reference, window
