"""Direct loss estimation (DLE) for regressors.

Fitted on the reference, where targets are known: gradient-boosted models that predict a row's
absolute and squared error from its features and the model's prediction. On a window, their mean
predictions estimate MAE and (square-rooted) RMSE.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .metrics import realized_regression
from .records import MetricEstimate, band, interval


class RegressorEstimator:
    """DLE fitted on a reference's inputs, predictions and targets."""

    def __init__(self, inputs: np.ndarray, predicted: np.ndarray, targets: np.ndarray, metrics: Sequence[str],
                 chunk_rows: int, seed: int = 0) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.metrics = tuple(metrics)
        error = np.asarray(targets, dtype=float) - np.asarray(predicted, dtype=float)
        design = _design(inputs, predicted)
        self._loss = {}
        for name, loss in (("mae", np.abs(error)), ("rmse", error ** 2)):
            if name in self.metrics:
                model = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, min_samples_leaf=40,
                                                      max_leaf_nodes=15, early_stopping=False, random_state=seed)
                with _one_thread():
                    self._loss[name] = model.fit(design, loss)
        self.reference: dict[str, tuple[float, float, float]] = {}
        chunks = [slice(start, start + chunk_rows) for start in range(0, len(error) - chunk_rows + 1, chunk_rows)]
        for metric in self.metrics:
            whole = realized_regression(metric, targets, predicted)
            _, spread = band([realized_regression(metric, targets[c], predicted[c]) for c in chunks], chunk_rows)
            self.reference[metric] = (whole, spread, float(len(error)))

    def realized(self, targets: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        """Each metric computed from true targets."""
        return {metric: realized_regression(metric, targets, predicted) for metric in self.metrics}

    def estimate(self, inputs: np.ndarray, predicted: np.ndarray) -> tuple[MetricEstimate, ...]:
        """Each metric expected on a window from its inputs and predictions."""
        design = _design(inputs, predicted)
        out = []
        for metric in self.metrics:
            with _one_thread():
                mean_loss = max(float(np.mean(self._loss[metric].predict(design))), 0.0)
            value = mean_loss if metric == "mae" else float(np.sqrt(mean_loss))
            whole, spread, _ = self.reference[metric]
            lower, upper = interval(value, spread, len(design))
            ref_lower, ref_upper = interval(whole, spread, len(design))
            out.append(MetricEstimate(metric, value, max(lower, 0.0), upper, whole, max(ref_lower, 0.0), ref_upper))
        return tuple(out)


def _one_thread() -> Any:
    """One OpenMP thread: the daemon runs many monitors at once, and oversubscribed threads stall each other."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _design(inputs: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    inputs = np.asarray(inputs, dtype=float).reshape(len(predicted), -1)
    return np.column_stack([inputs, np.asarray(predicted, dtype=float)])
