"""The measure contract and the built-in numpy measures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import stats

from monitor.divergence.summary import (
    CategoricalSummary,
    FeatureSummary,
    NumericSummary,
    bin_indices,
)

#: ``ks_2samp(method="auto")`` is exact up to this sample size and asymptotic beyond it.
_KS_EXACT_MAX_N = 10_000


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
    default_threshold: ClassVar[float]
    description: ClassVar[str]

    def score(self, reference: FeatureSummary, values: np.ndarray) -> Score:
        """Score non-empty clean window ``values`` against the reference summary."""
        raise NotImplementedError

    def drifted(self, score: Score, threshold: float) -> bool:
        """Whether a score means drift: ``p < threshold`` for tests, ``value > threshold`` else."""
        if not self.is_test:
            return score.value > threshold
        if score.p_value is None:
            raise ValueError(f"measure {self.name!r} is a test but its score has no p-value")
        return score.p_value < threshold


class KolmogorovSmirnov(Measure):
    """Two-sample Kolmogorov–Smirnov test; agrees with ``scipy.stats.ks_2samp(method="auto")``.

    Up to 10 000 values on both sides scipy computes the exact p-value; beyond that the
    statistic comes from the sorted reference by ``searchsorted`` and the p-value from
    ``kstwo.sf(d, round(m * n / (m + n)))``, as scipy's asymptotic method does.
    """

    name = "ks"
    kinds = frozenset({"numeric"})
    is_test = True
    default_threshold = 0.05
    description = "Two-sample Kolmogorov-Smirnov test (p-value compared with the threshold)"

    def score(self, reference: FeatureSummary, values: np.ndarray) -> Score:
        """The KS statistic and its two-sided p-value."""
        ref = _numeric(self, reference)
        window = _window(values).astype(np.float64, copy=False)
        n1, n2 = ref.n, window.size
        if max(n1, n2) <= _KS_EXACT_MAX_N:
            # The exact regime (its statistic snapped to the n1*n2 lattice, its fallback when
            # the exact computation fails) is scipy's; at these sizes that is cheap.
            result = stats.ks_2samp(ref.sorted_values, window, method="auto")
            return Score(value=float(result.statistic), p_value=float(result.pvalue))
        d = ks_statistic(ref.sorted_values, np.sort(window))
        m, n = sorted([float(n1), float(n2)], reverse=True)
        p = stats.kstwo.sf(d, np.round(m * n / (m + n)))
        return Score(value=d, p_value=float(np.clip(p, 0.0, 1.0)))


def ks_statistic(sorted_ref: np.ndarray, sorted_window: np.ndarray) -> float:
    """The two-sided KS statistic of two sorted samples, ties handled as scipy does."""
    points = np.concatenate([sorted_ref, sorted_window])
    cdf_ref = np.searchsorted(sorted_ref, points, side="right") / sorted_ref.size
    cdf_window = np.searchsorted(sorted_window, points, side="right") / sorted_window.size
    diffs = cdf_ref - cdf_window
    return float(max(diffs.max(), np.clip(-diffs.min(), 0.0, 1.0)))


class PopulationStabilityIndex(Measure):
    """Population Stability Index ``sum((q - p) * ln(q / p))``, p reference, q window.

    Numeric features use the reference-quantile bins; categorical ones the union of reference
    and window categories. Zero proportions on either side are replaced by ``EPS = 1e-4`` and
    the proportions are not renormalised afterwards.
    """

    EPS: ClassVar[float] = 1e-4
    name = "psi"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.2
    description = "Population Stability Index over reference-quantile bins or categories"

    def score(self, reference: FeatureSummary, values: np.ndarray) -> Score:
        """The PSI of the window's proportions against the reference's."""
        p, q = proportions(reference, _window(values))
        p = np.where(p == 0, self.EPS, p)
        q = np.where(q == 0, self.EPS, q)
        return Score(value=float(np.sum((q - p) * np.log(q / p))))


class JensenShannon(Measure):
    """Jensen–Shannon distance (base 2, in [0, 1]) between binned or category proportions."""

    name = "jensen_shannon"
    kinds = frozenset({"numeric", "categorical"})
    is_test = False
    default_threshold = 0.1
    description = "Jensen-Shannon distance (base 2) over reference-quantile bins or categories"

    def score(self, reference: FeatureSummary, values: np.ndarray) -> Score:
        """Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
        p, q = proportions(reference, _window(values))
        m = (p + q) / 2
        divergence = (_relative_entropy(p, m) + _relative_entropy(q, m)) / 2
        return Score(value=float(np.sqrt(max(divergence, 0.0) / np.log(2))))


def _relative_entropy(p: np.ndarray, m: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / m[mask])))


class Wasserstein(Measure):
    """Wasserstein-1 distance divided by the reference std (by 1 when that std is 0)."""

    name = "wasserstein"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.1
    description = "Wasserstein-1 distance normalised by the reference standard deviation"

    def score(self, reference: FeatureSummary, values: np.ndarray) -> Score:
        """The normalised Wasserstein-1 distance."""
        ref = _numeric(self, reference)
        window = np.sort(_window(values).astype(np.float64, copy=False))
        distance = wasserstein_1(ref.sorted_values, window)
        return Score(value=distance / (ref.std if ref.std > 0 else 1.0))


def wasserstein_1(sorted_u: np.ndarray, sorted_v: np.ndarray) -> float:
    """Wasserstein-1 distance of two sorted samples: the integral of |F_u - F_v|."""
    merged = _merge_sorted(sorted_u, sorted_v)
    u_cdf = np.searchsorted(sorted_u, merged[:-1], side="right") / sorted_u.size
    v_cdf = np.searchsorted(sorted_v, merged[:-1], side="right") / sorted_v.size
    return float(np.dot(np.abs(u_cdf - v_cdf), np.diff(merged)))


def _merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    positions = np.searchsorted(a, b, side="right") + np.arange(b.size)
    merged = np.empty(a.size + b.size, dtype=np.float64)
    from_a = np.ones(merged.size, dtype=bool)
    from_a[positions] = False
    merged[positions] = b
    merged[from_a] = a
    return merged


class ChiSquare(Measure):
    """Chi-square test of homogeneity on the 2 x K reference-vs-window category table.

    Categories unseen in the reference are columns too; columns empty on both sides are dropped.
    Agrees with ``scipy.stats.chi2_contingency(table, correction=False)``.
    """

    name = "chi_square"
    kinds = frozenset({"categorical"})
    is_test = True
    default_threshold = 0.05
    description = "Chi-square test of homogeneity of category counts (p-value vs threshold)"

    def score(self, reference: FeatureSummary, values: np.ndarray) -> Score:
        """The chi-square statistic and its p-value (0 and 1 when only one category occurs)."""
        ref_counts, window_counts = category_counts(_categorical(self, reference), _window(values))
        table = np.vstack([ref_counts, window_counts]).astype(np.float64)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return Score(value=0.0, p_value=1.0)
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        return Score(value=statistic, p_value=float(stats.chi2.sf(statistic, table.shape[1] - 1)))


def proportions(reference: FeatureSummary, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aligned reference and window proportions: per quantile bin, or per category (union)."""
    if isinstance(reference, NumericSummary):
        window = np.asarray(values, dtype=np.float64)
        counts = np.bincount(bin_indices(reference.edges, window), minlength=reference.probs.size)
        return reference.probs, counts / window.size
    if not isinstance(reference, CategoricalSummary):
        raise TypeError(f"not a feature summary: {type(reference).__name__}")
    ref_counts, window_counts = category_counts(reference, values)
    return ref_counts / ref_counts.sum(), window_counts / window_counts.sum()


def category_counts(
    reference: CategoricalSummary, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and window counts over the reference categories then unseen window ones."""
    window_categories, window_counts = np.unique(
        np.asarray(values, dtype=object), return_counts=True
    )
    index = {category: i for i, category in enumerate(reference.categories)}
    for category in window_categories:
        index.setdefault(str(category), len(index))
    ref_counts = np.zeros(len(index), dtype=np.int64)
    ref_counts[: len(reference.categories)] = reference.counts
    aligned = np.zeros(len(index), dtype=np.int64)
    aligned[[index[str(c)] for c in window_categories]] = window_counts
    return ref_counts, aligned


def _window(values: np.ndarray) -> np.ndarray:
    window = np.asarray(values)
    if window.size == 0:
        raise ValueError("cannot score an empty window")
    return window


def _numeric(measure: Measure, reference: FeatureSummary) -> NumericSummary:
    if not isinstance(reference, NumericSummary):
        raise TypeError(
            f"measure {measure.name!r} needs a numeric feature, got {type(reference).__name__}"
        )
    return reference


def _categorical(measure: Measure, reference: FeatureSummary) -> CategoricalSummary:
    if not isinstance(reference, CategoricalSummary):
        raise TypeError(
            f"measure {measure.name!r} needs a categorical feature, got {type(reference).__name__}"
        )
    return reference
