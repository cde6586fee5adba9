"""Kernel two-sample tests: MMD² and energy distance by permutation over ONE pooled matrix, and linear-time MMD²."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import stats

from monitor.divergence.backend import NUMPY, Backend, PairFunction
from monitor.divergence.base import Score
from monitor.divergence.multivariate import (
    MultivariateMeasure,
    standardized_rows,
    supported_backend,
)
from monitor.divergence.pooled import add_tile
from monitor.divergence.summary import MultivariateSummary

#: Side of the square tiles the pooled kernel matrix is computed in.
DEFAULT_BLOCK_ROWS = 2_048


def permutation_indicators(
    m: int, n: int, permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """A boolean (m + n) x (permutations + 1) matrix of reference membership per pooled row.

    Column 0 is the observed split (the first ``m`` pooled rows are the reference); each other
    column is a uniformly random split of the pooled rows into ``m`` and ``n`` drawn from
    ``rng``. Passing the same matrix to every backend makes their p-values comparable exactly.
    """
    observed = np.arange(m + n) < m
    shuffled = rng.permuted(np.tile(observed, (permutations, 1)), axis=1)
    return np.column_stack([observed, shuffled.T])


@dataclass(frozen=True)
class PermutationTest:
    """The statistic of every split (index 0: observed) and the permutation p-value."""

    statistics: np.ndarray
    p_value: float

    @property
    def statistic(self) -> float:
        """The observed statistic."""
        return float(self.statistics[0])


def permutation_test(
    pair: PairFunction,
    x: np.ndarray,
    y: np.ndarray,
    indicators: np.ndarray,
    backend: Backend = NUMPY,
    bandwidth: float = 1.0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> PermutationTest:
    """Two-sample permutation test of ``x`` (m rows) against ``y`` (n rows) from ONE pooled matrix.

    ``gaussian`` gives the unbiased MMD², ``distance`` the squared energy distance (V-statistic).
    Each split u (a column of ``indicators``) needs only uᵀKu and uᵀK1 of the pooled matrix K
    with zeroed diagonal, and 1ᵀK1: the statistic is ``a·uᵀKu + b·uᵀK1 + c·1ᵀK1``.
    The p-value is ``(k + 1) / (B + 1)`` with k the permuted statistics at least the observed
    one; those within float64 rounding of it (8 epsilons of its terms) count as ties, so a
    split equal to the observed one counts whatever order its sums were taken in.
    """
    pooled = np.concatenate([x, y])
    if backend.name == "torch":
        import monitor.divergence.torch_ops as torch_ops  # torch stays optional

        forms = torch_ops.pooled_forms(pooled, indicators, pair, bandwidth, backend, block_rows)
    else:
        forms = pooled_forms(pooled, indicators, pair, bandwidth, backend.dtype, block_rows)
    weighting = _mmd_weights if pair == "gaussian" else _energy_weights
    weights = weighting(len(x), len(y))
    quadratic, linear, total = (weight * form for weight, form in zip(weights, forms, strict=True))
    statistics = quadratic + linear + total
    scale = abs(quadratic[0]) + abs(linear[0]) + abs(total[0])
    tolerance = 8 * np.finfo(np.float64).eps * scale
    exceed = int(np.count_nonzero(statistics[1:] >= statistics[0] - tolerance))
    return PermutationTest(statistics=statistics, p_value=(exceed + 1) / statistics.size)


def _mmd_weights(m: int, n: int) -> tuple[float, float, float]:
    # With q = uᵀKu, r = uᵀK1, T = 1ᵀK1: XX = q, XY = r - q, YY = T - 2r + q, and
    # the unbiased MMD² is XX/(m(m-1)) + YY/(n(n-1)) - 2XY/(mn).
    xx, yy, xy = 1 / (m * (m - 1)), 1 / (n * (n - 1)), 1 / (m * n)
    return xx + yy + 2 * xy, -2 * (yy + xy), yy


def _energy_weights(m: int, n: int) -> tuple[float, float, float]:
    # The same blocks with V-statistic means: 2 XY/(mn) - XX/m² - YY/n².
    xy, xx, yy = 1 / (m * n), 1 / m**2, 1 / n**2
    return -(2 * xy + xx + yy), 2 * (xy + yy), -yy


def pooled_forms(
    pooled: np.ndarray,
    indicators: np.ndarray,
    pair: PairFunction,
    bandwidth: float,
    dtype: str,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uᵀKu and uᵀK1 per indicator column u, and 1ᵀK1, for the pooled matrix K (zero diagonal).

    K is visited in square tiles over its upper triangle: every entry is computed once, one
    tile and its product with the indicators are held at a time, and each tile meets all the
    splits in a single matrix product. Whatever ``dtype`` the tiles have, everything after
    that product is summed in float64: in float32 the statistic, a small difference of large
    sums, would otherwise lose about two digits.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    z = np.ascontiguousarray(pooled, dtype=dtype)
    norms = np.einsum("ij,ij->i", z, z)
    with_ones = np.ones((len(z), indicators.shape[1] + 1), dtype=dtype)
    with_ones[:, :-1] = indicators
    split = with_ones[:, :-1].astype(np.float64, copy=False)
    forms = (np.zeros(split.shape[1]), np.zeros(split.shape[1]), np.zeros(1))
    buffer = np.empty(min(block_rows, len(z)) ** 2, dtype=dtype)
    for start in range(0, len(z), block_rows):
        rows = slice(start, start + block_rows)
        for col in range(start, len(z), block_rows):
            cols = slice(col, col + block_rows)
            a, b = z[rows], z[cols]
            tile = np.matmul(a, b.T, out=buffer[: len(a) * len(b)].reshape(len(a), len(b)))
            _to_pair_values(tile, norms[rows], norms[cols], pair, bandwidth, col == start)
            product = (tile @ with_ones[cols]).astype(np.float64, copy=False)
            inner = np.einsum("ib,ib->b", split[rows], product[:, :-1])
            add_tile(forms, inner, split[rows], product, col == start)
    return forms


def _to_pair_values(
    tile: np.ndarray,
    a_norms: np.ndarray,
    b_norms: np.ndarray,
    pair: PairFunction,
    bandwidth: float,
    diagonal: bool,
) -> None:
    # In place: the Gram tile a·bᵀ becomes k(a, b) or |a - b|.
    tile *= -2
    tile += a_norms[:, None]
    tile += b_norms[None, :]
    np.maximum(tile, 0, out=tile)
    if pair == "gaussian":
        tile *= -0.5 / bandwidth**2
        np.exp(tile, out=tile)
    else:
        np.sqrt(tile, out=tile)
    if diagonal:
        np.fill_diagonal(tile, 0)


def gaussian_kernel_rows(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    """``k(a_i, b_i)`` row by row for the Gaussian kernel of the given bandwidth."""
    return np.exp(-np.sum((a - b) ** 2, axis=1) / (2 * bandwidth**2))


class PermutationMeasure(MultivariateMeasure):
    """A two-sample permutation test over one pooled kernel or distance matrix.

    The window is standardised and sub-sampled (seeded) to at most ``max_window`` rows,
    2,000 by default like the reference sample: the pooled matrix has (m + n)² entries.
    """

    pair: ClassVar[PairFunction]
    is_test = True
    higher_is_drift = True
    default_threshold = 0.05
    backends = frozenset({"numpy", "torch"})

    def __init__(
        self,
        permutations: int = 100,
        max_window: int = 2_000,
        seed: int = 0,
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        if permutations < 1 or max_window < 2 or block_rows < 1:
            raise ValueError("need permutations >= 1, max_window >= 2 and block_rows >= 1")
        self.permutations = permutations
        self.max_window = max_window
        self.seed = seed
        self.block_rows = block_rows

    def permutation_test(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> PermutationTest:
        """The observed and permuted statistics of the window against the reference sample."""
        rng = np.random.default_rng(self.seed)
        y = standardized_rows(reference, window, self.max_window, rng)
        x = reference.sample
        return permutation_test(
            self.pair,
            x,
            y,
            permutation_indicators(len(x), len(y), self.permutations, rng),
            supported_backend(self, backend),
            reference.bandwidth,
            self.block_rows,
        )


class MMD(PermutationMeasure):
    """Unbiased MMD² with a Gaussian kernel (reference bandwidth) and a permutation p-value."""

    name = "mmd"
    pair = "gaussian"
    description = "Unbiased MMD² (Gaussian kernel, median-heuristic bandwidth), permutation test"

    def score(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> Score:
        """MMD² of the window against the reference sample, and its permutation p-value."""
        test = self.permutation_test(reference, window, backend)
        return Score(value=test.statistic, p_value=test.p_value)


class EnergyDistance(PermutationMeasure):
    """Multivariate energy distance (Székely–Rizzo) with a permutation p-value.

    The value is ``sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|)`` with every mean over all pairs,
    i.e. ``scipy.stats.energy_distance`` in one dimension; the E-statistic is
    ``m n / (m + n)`` times its square.
    """

    name = "energy_mv"
    pair = "distance"
    description = "Multivariate energy distance on standardised features, permutation test"

    def score(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> Score:
        """The energy distance of the window to the reference sample, and its p-value."""
        test = self.permutation_test(reference, window, backend)
        return Score(value=float(np.sqrt(max(test.statistic, 0.0))), p_value=test.p_value)


class LinearMMD(MultivariateMeasure):
    """Linear-time MMD² (Gretton et al. 2012, section 6) with its asymptotic normal p-value.

    Pairs consecutive rows: ``h_i = k(x_2i, x_2i+1) + k(y_2i, y_2i+1) - k(x_2i, y_2i+1)
    - k(x_2i+1, y_2i)`` over ``min(m, n) // 2`` pairs (the window's rows in seeded random
    order); the value is the mean of h, the p-value ``P(N(0, 1) > sqrt(pairs) mean / sd)``.
    The reference side is the stored sample, so its size bounds the pairs.
    """

    name = "mmd_linear"
    is_test = True
    higher_is_drift = True
    default_threshold = 0.05
    description = "Linear-time MMD² (Gaussian kernel) with an asymptotic normal p-value"
    backends = frozenset({"numpy"})

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> Score:
        """The linear-time MMD² estimate and its one-sided p-value."""
        pairs = min(len(reference.sample), len(window)) // 2
        if pairs < 2:
            raise ValueError("mmd_linear needs at least 4 rows on each side")
        y = standardized_rows(reference, window, 2 * pairs, np.random.default_rng(self.seed))
        x = reference.sample[: 2 * pairs]
        h = linear_mmd_terms(x, y, reference.bandwidth)
        mean, sd = float(h.mean()), float(h.std(ddof=1))
        if sd == 0:
            return Score(value=mean, p_value=1.0 if mean <= 0 else 0.0)
        return Score(value=mean, p_value=float(stats.norm.sf(np.sqrt(pairs) * mean / sd)))


def linear_mmd_terms(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """The ``h_i`` of the linear-time MMD² over consecutive row pairs of equal-size x and y."""
    x1, x2, y1, y2 = x[0::2], x[1::2], y[0::2], y[1::2]
    return (
        gaussian_kernel_rows(x1, x2, bandwidth)
        + gaussian_kernel_rows(y1, y2, bandwidth)
        - gaussian_kernel_rows(x1, y2, bandwidth)
        - gaussian_kernel_rows(x2, y1, bandwidth)
    )
