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
    """Classifier two-sample test: the held-out AUC of a reference-vs-window classifier.

    The larger side is sub-sampled (seeded) to the smaller one's size; each side is split
    (seeded) into a training part and a held-out ``holdout`` share. numpy fits an L2-regularised
    logistic regression on the standardised features and their squares (L-BFGS); torch trains a
    one-hidden-layer MLP. The p-value is the one-sided Mann–Whitney U test of the held-out window
    scores greater than the held-out reference scores: the held-out rows never trained the
    classifier, so under no drift their scores are exchangeable and the test holds its size.
    (Pooling cross-fitted folds into one Mann–Whitney test does not: each fold's model learned
    from the other folds' rows, which ties the folds' AUCs together, and the false-positive rate
    at 0.05 was about 0.08.)
    """

    name = "c2st"
    is_test = True
    higher_is_drift = True
    default_threshold = 0.05
    description = "Classifier two-sample test: held-out AUC and its Mann-Whitney p-value"
    backends = frozenset({"numpy", "torch"})

    def __init__(
        self,
        holdout: float = 0.5,
        l2: float = 1e-2,
        hidden: int = 32,
        epochs: int = 10,
        seed: int = 0,
    ) -> None:
        if not 0 < holdout < 1 or l2 < 0 or hidden < 1 or epochs < 1:
            raise ValueError("need 0 < holdout < 1, l2 >= 0, hidden >= 1 and epochs >= 1")
        self.holdout = holdout
        self.l2 = l2
        self.hidden = hidden
        self.epochs = epochs
        self.seed = seed

    def score(
        self, reference: MultivariateSummary, window: np.ndarray, backend: Backend = NUMPY
    ) -> Score:
        """The held-out AUC (0.5: indistinguishable) and its p-value."""
        rng = np.random.default_rng(self.seed)
        size = min(len(reference.sample), len(window))
        held = int(round(size * self.holdout))
        if held < 2 or size - held < 2:
            raise ValueError(f"c2st needs at least {int(np.ceil(2 / min(self.holdout, 1 - self.holdout)))} "
                             f"rows on each side, got {size}")
        x = reference.sample[rng.permutation(len(reference.sample))[:size]]
        y = standardized_rows(reference, window, size, rng)
        features = np.concatenate([x, y])
        labels = np.repeat([0.0, 1.0], size)
        test = np.zeros(2 * size, dtype=bool)
        test[rng.permutation(size)[:held]] = True
        test[size + rng.permutation(size)[:held]] = True
        train = ~test
        backend = supported_backend(self, backend)
        if backend.name == "torch":
            import monitor.divergence.torch_ops as torch_ops  # torch stays optional

            scores = torch_ops.mlp_scores(features[train], labels[train], features[test], backend,
                                          hidden=self.hidden, epochs=self.epochs, seed=self.seed)
        else:
            scores = logistic_scores(features[train], labels[train], features[test], self.l2)
        held_labels = labels[test]
        result = stats.mannwhitneyu(scores[held_labels == 1.0], scores[held_labels == 0.0], alternative="greater")
        return Score(value=float(result.statistic) / held**2, p_value=float(result.pvalue))


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
