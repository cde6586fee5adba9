"""Performance metrics: realized ones from labels (scikit-learn's), expected ones from calibrated probabilities.

The expected (CBPE) forms treat each row's calibrated probability of a class as the chance that the
row's label is that class, so a confusion matrix's cells become sums of probabilities.
"""

from __future__ import annotations

import numpy as np

#: Metrics for classifiers and for regressors, in the order they are reported.
CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
#: Metrics where a lower value is better (a drop in performance is a rise of these).
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


def realized_classification(metric: str, labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None,
                            classes: np.ndarray, positive: object) -> float:
    """``metric`` computed from true labels by scikit-learn (NaN when it is undefined on these rows)."""
    from sklearn import metrics as sk

    if metric == "accuracy":
        return float(sk.accuracy_score(labels, predicted))
    if metric in ("f1", "precision", "recall"):
        function = {"f1": sk.f1_score, "precision": sk.precision_score, "recall": sk.recall_score}[metric]
        truth, guess = labels == positive, predicted == positive
        if metric != "recall" and not guess.any() or metric != "precision" and not truth.any():
            return float("nan")
        return float(function(truth, guess, zero_division=np.nan))
    if metric == "roc_auc":
        if scores is None:
            return float("nan")
        present = np.isin(classes, labels)
        if len(classes) == 2:
            truth = labels == classes[1]
            return float(sk.roc_auc_score(truth, scores[:, 1])) if 0 < truth.sum() < len(truth) else float("nan")
        if not present.all():
            return float("nan")
        return float(sk.roc_auc_score(labels, scores, multi_class="ovr", average="macro", labels=classes))
    raise ValueError(f"unknown classification metric {metric!r}")


def realized_regression(metric: str, targets: np.ndarray, predicted: np.ndarray) -> float:
    """``metric`` (MAE or RMSE) from true targets."""
    error = np.asarray(targets, dtype=float) - np.asarray(predicted, dtype=float)
    if metric == "mae":
        return float(np.mean(np.abs(error)))
    if metric == "rmse":
        return float(np.sqrt(np.mean(error ** 2)))
    raise ValueError(f"unknown regression metric {metric!r}")


def expected_classification(metric: str, calibrated: np.ndarray, predicted_index: np.ndarray, scores: np.ndarray | None,
                            positive_index: int) -> float:
    """``metric`` expected under calibrated probabilities (rows × classes) for these predictions."""
    rows = np.arange(len(predicted_index))
    if metric == "accuracy":
        return float(np.mean(calibrated[rows, predicted_index]))
    if metric in ("f1", "precision", "recall"):
        chance = calibrated[:, positive_index]
        guessed = predicted_index == positive_index
        true_positive = float(chance[guessed].sum())
        predicted_positive, actual_positive = float(guessed.sum()), float(chance.sum())
        if metric == "precision":
            return true_positive / predicted_positive if predicted_positive else float("nan")
        if metric == "recall":
            return true_positive / actual_positive if actual_positive > 0 else float("nan")
        total = predicted_positive + actual_positive
        return 2 * true_positive / total if total > 0 else float("nan")
    if metric == "roc_auc":
        if scores is None:
            return float("nan")
        if calibrated.shape[1] == 2:
            return _expected_auc(scores[:, 1], calibrated[:, 1])
        return float(np.mean([_expected_auc(scores[:, k], calibrated[:, k]) for k in range(calibrated.shape[1])]))
    raise ValueError(f"unknown classification metric {metric!r}")


def _expected_auc(score: np.ndarray, chance: np.ndarray) -> float:
    """ROC AUC with soft labels: Σ pᵢ(1-pⱼ)·[sᵢ > sⱼ] (ties half) over Σp·Σ(1-p)."""
    order = np.argsort(score, kind="mergesort")
    score, positive = score[order], chance[order]
    negative = 1.0 - positive
    unique, start = np.unique(score, return_index=True)
    group_pos = np.add.reduceat(positive, start)
    group_neg = np.add.reduceat(negative, start)
    below_neg = np.concatenate(([0.0], np.cumsum(group_neg)[:-1]))
    pairs = float(np.sum(group_pos * (below_neg + 0.5 * group_neg)))
    total = float(positive.sum()) * float(negative.sum())
    return pairs / total if total > 0 else float("nan")
