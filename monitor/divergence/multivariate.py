"""Multivariate drift measures: MMD², linear-time MMD², a classifier two-sample test, energy.

Every measure works in the reference's standardised coordinates (``(x - mean) / std``) and
compares the window with the reference sub-sample stored in a ``MultivariateSummary``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from scipy import optimize, special, stats
from scipy.spatial.distance import pdist

from monitor.divergence.backend import NUMPY, Backend
from monitor.divergence.measures import Score

#: ``gaussian``: the kernel ``exp(-|x - y|² / (2 σ²))``; ``distance``: ``|x - y|``.
PairFunction = Literal["gaussian", "distance"]

#: The median-heuristic bandwidth looks at no more than this many sample rows.
BANDWIDTH_ROWS = 2_000
#: Side of the square tiles the pooled kernel matrix is computed in.
DEFAULT_BLOCK_ROWS = 2_048

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class MultivariateSummary:
    """The reference side of the multivariate measures, computed once per reference version."""

    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    sample: np.ndarray
    bandwidth: float

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numeric arrays (feature names as UTF-8 JSON bytes) that load without pickle."""
        names = json.dumps({"version": _FORMAT_VERSION, "features": list(self.features)})
        return {
            "features": np.frombuffer(names.encode("utf-8"), dtype=np.uint8),
            "mean": self.mean,
            "std": self.std,
            "sample": self.sample,
            "bandwidth": np.array([self.bandwidth], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MultivariateSummary:
        """Rebuild a summary from the arrays ``to_arrays`` wrote."""
        document = json.loads(np.asarray(arrays["features"], dtype=np.uint8).tobytes())
        if document.get("version") != _FORMAT_VERSION:
            version = document.get("version")
            raise ValueError(f"unsupported multivariate summary version {version!r}")
        return cls(
            features=tuple(document["features"]),
            mean=np.asarray(arrays["mean"], dtype=np.float64),
            std=np.asarray(arrays["std"], dtype=np.float64),
            sample=np.asarray(arrays["sample"], dtype=np.float64),
            bandwidth=float(np.asarray(arrays["bandwidth"])[0]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultivariateSummary):
            return NotImplemented
        return (
            self.features == other.features
            and np.array_equal(self.mean, other.mean)
            and np.array_equal(self.std, other.std)
            and np.array_equal(self.sample, other.sample)
            and self.bandwidth == other.bandwidth
        )


def summarize_multivariate(
    columns: np.ndarray,
    features: tuple[str, ...] | list[str],
    max_sample: int = 2_000,
    seed: int = 0,
) -> MultivariateSummary:
    """Summarise finite reference rows (n x d, columns in ``features`` order).

    Mean and std come from every row (a zero std becomes 1); the sample is a seeded random
    sub-sample of at most ``max_sample`` standardised rows in random order; the bandwidth is
    the median pairwise Euclidean distance among its first ``BANDWIDTH_ROWS`` rows (1 when
    that median is 0).
    """
    values = _rows(columns, len(features))
    if max_sample < 2:
        raise ValueError(f"max_sample must be at least 2, got {max_sample}")
    if not np.isfinite(values).all():
        raise ValueError("reference rows must be finite; drop rows with missing values first")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std == 0] = 1.0
    chosen = np.random.default_rng(seed).permutation(len(values))[:max_sample]
    sample = (values[chosen] - mean) / std
    median = float(np.median(pdist(sample[:BANDWIDTH_ROWS])))
    return MultivariateSummary(
        features=tuple(features),
        mean=mean,
        std=std,
        sample=sample,
        bandwidth=median if median > 0 else 1.0,
    )


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
        from monitor.divergence import torch_ops

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
    quadratic = np.zeros(split.shape[1])
    linear = np.zeros(split.shape[1])
    total = np.zeros(1)
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
            sums = product[:, -1]
            linear += split[rows].T @ sums
            if col == start:
                quadratic += inner
                total += sums.sum()
            else:
                quadratic += 2 * inner
                linear += product[:, :-1].sum(axis=0)
                total += 2 * sums.sum()
    return quadratic, linear, total


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


class MultivariateMeasure:
    """Base class of a measure over all numeric features of a window at once.

    A measure computes on ``backend`` when its name is in ``backends`` and with numpy otherwise.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset({"multivariate"})
    is_test: ClassVar[bool]
    higher_is_drift: ClassVar[bool]
    default_threshold: ClassVar[float]
    description: ClassVar[str]
    backends: ClassVar[frozenset[str]]

    def score(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> Score:
        """Score finite window rows (n x d raw values, the reference's column order)."""
        raise NotImplementedError

    def drifted(self, score: Score, threshold: float) -> bool:
        """Whether a score means drift: ``p < threshold`` for tests, ``value > threshold`` else."""
        if not self.is_test:
            return score.value > threshold
        if score.p_value is None:
            raise ValueError(f"measure {self.name!r} is a test but its score has no p-value")
        return score.p_value < threshold


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
            _supported(self, backend),
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


class ClassifierTest(MultivariateMeasure):
    """Classifier two-sample test: cross-fitted out-of-fold AUC of reference-vs-window.

    The larger side is sub-sampled (seeded) to the smaller one's size; folds are stratified
    and seeded. numpy fits an L2-regularised logistic regression on the standardised
    features and their squares (L-BFGS); torch trains a one-hidden-layer MLP. The p-value is
    the one-sided Mann–Whitney U test of window scores greater than reference scores.
    """

    name = "c2st"
    is_test = True
    higher_is_drift = True
    default_threshold = 0.05
    description = "Classifier two-sample test: out-of-fold AUC and Mann-Whitney p-value"
    backends = frozenset({"numpy", "torch"})

    def __init__(
        self,
        folds: int = 5,
        l2: float = 1e-2,
        hidden: int = 32,
        epochs: int = 10,
        seed: int = 0,
    ) -> None:
        if folds < 2 or l2 < 0 or hidden < 1 or epochs < 1:
            raise ValueError("need folds >= 2, l2 >= 0, hidden >= 1 and epochs >= 1")
        self.folds = folds
        self.l2 = l2
        self.hidden = hidden
        self.epochs = epochs
        self.seed = seed

    def score(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> Score:
        """The out-of-fold AUC (0.5: indistinguishable) and its p-value."""
        rng = np.random.default_rng(self.seed)
        size = min(len(reference.sample), len(window))
        if size < self.folds:
            raise ValueError(f"c2st needs at least {self.folds} rows on each side, got {size}")
        x = reference.sample[rng.permutation(len(reference.sample))[:size]]
        y = standardized_rows(reference, window, size, rng)
        features = np.concatenate([x, y])
        labels = np.repeat([0.0, 1.0], size)
        fold_of = stratified_folds(labels, self.folds, rng)
        scores = np.empty(len(labels))
        backend = _supported(self, backend)
        for fold in range(self.folds):
            test = fold_of == fold
            train = ~test
            if backend.name == "torch":
                from monitor.divergence import torch_ops

                scores[test] = torch_ops.mlp_scores(
                    features[train],
                    labels[train],
                    features[test],
                    backend,
                    hidden=self.hidden,
                    epochs=self.epochs,
                    seed=self.seed + fold,
                )
            else:
                scores[test] = logistic_scores(
                    features[train], labels[train], features[test], self.l2
                )
        result = stats.mannwhitneyu(scores[size:], scores[:size], alternative="greater")
        return Score(value=float(result.statistic) / size**2, p_value=float(result.pvalue))


def stratified_folds(labels: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per row, each class spread evenly over the folds in random order."""
    fold_of = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        fold_of[members[rng.permutation(len(members))]] = np.arange(len(members)) % folds
    return fold_of


def logistic_scores(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, l2: float
) -> np.ndarray:
    """Logits on ``test_x`` of an L2-regularised logistic regression on features and squares."""
    design = np.hstack([train_x, train_x**2])
    weights = optimize.minimize(
        _logistic_loss,
        np.zeros(design.shape[1] + 1),
        args=(design, train_y, l2),
        jac=True,
        method="L-BFGS-B",
    ).x
    return np.hstack([test_x, test_x**2]) @ weights[:-1] + weights[-1]


def _logistic_loss(
    weights: np.ndarray, design: np.ndarray, labels: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    # Mean log-loss plus l2/2 |w|²; the intercept (last weight) is not penalised.
    logits = design @ weights[:-1] + weights[-1]
    penalty = 0.5 * l2 * weights[:-1] @ weights[:-1]
    loss = np.mean(np.logaddexp(0.0, logits) - labels * logits) + penalty
    residual = (special.expit(logits) - labels) / len(labels)
    gradient = np.append(design.T @ residual + l2 * weights[:-1], residual.sum())
    return float(loss), gradient


def standardized_rows(
    reference: MultivariateSummary, window: np.ndarray, rows: int, rng: np.random.Generator
) -> np.ndarray:
    """At most ``rows`` window rows in seeded random order, in the reference's standard units."""
    values = _rows(window, len(reference.features))
    chosen = rng.permutation(len(values))[:rows]
    return (values[chosen] - reference.mean) / reference.std


def _rows(values: np.ndarray, columns: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"expected a 2-D array with {columns} columns, got shape {array.shape}")
    if len(array) < 2:
        raise ValueError(f"need at least 2 rows, got {len(array)}")
    return array


def _supported(measure: MultivariateMeasure, backend: Backend) -> Backend:
    return backend if backend.name in measure.backends else NUMPY


MULTIVARIATE_MEASURES: dict[str, MultivariateMeasure] = {
    measure.name: measure for measure in (MMD(), LinearMMD(), ClassifierTest(), EnergyDistance())
}
