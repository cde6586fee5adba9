"""The classifier two-sample test (C2ST): can a classifier tell window rows from reference rows?"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats

from monitor.divergence.backend import NUMPY, Backend
from monitor.divergence.base import Score
from monitor.divergence.multivariate import (
    MultivariateMeasure,
    standardized_rows,
    supported_backend,
)
from monitor.divergence.summary import MultivariateSummary


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
        backend = supported_backend(self, backend)
        for fold in range(self.folds):
            test = fold_of == fold
            train = ~test
            if backend.name == "torch":
                import monitor.divergence.torch_ops as torch_ops  # torch stays optional

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
