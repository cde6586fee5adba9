"""Confidence-based performance estimation (CBPE) for classifiers.

Fitted on the reference, where labels are known: an isotonic calibration of the model's
probabilities, and each metric's chunk-to-chunk spread. On a window, the calibrated probabilities
stand in for the missing labels and give each metric's expected value.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .calibration import Calibrator
from .metrics import expected_classification, realized_classification
from .records import MetricEstimate, band, interval


class ClassifierEstimator:
    """CBPE fitted on a reference's scores, predictions and labels."""

    def __init__(self, scores: np.ndarray, predicted: np.ndarray, labels: np.ndarray, classes: Sequence[object],
                 metrics: Sequence[str], positive: object, chunk_rows: int) -> None:
        self.classes = np.asarray(classes, dtype=object)
        self.metrics = tuple(metrics)
        self.positive = positive
        self.positive_index = self._index([positive])[0]
        label_index = self._index(labels)
        self._calibrate = Calibrator(scores, label_index)
        self.reference: dict[str, tuple[float, float, float]] = {}
        chunks = [slice(start, start + chunk_rows) for start in range(0, len(labels) - chunk_rows + 1, chunk_rows)]
        for metric in self.metrics:
            whole = self._realized(metric, labels, predicted, scores)
            per_chunk = [self._realized(metric, labels[c], predicted[c], scores[c]) for c in chunks]
            _, spread = band(per_chunk, chunk_rows)
            self.reference[metric] = (whole, spread, float(len(labels)))

    def _index(self, values: Sequence[object]) -> np.ndarray:
        lookup = {class_name(value): i for i, value in enumerate(self.classes.tolist())}
        try:
            return np.fromiter((lookup[class_name(v)] for v in np.asarray(values, dtype=object).tolist()), dtype=int)
        except KeyError as missing:
            raise ValueError(f"class {missing.args[0]!r} is not among the model's classes "
                             f"{self.classes.tolist()}") from None

    def _realized(self, metric: str, labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> float:
        return realized_classification(metric, self._index(labels), self._index(predicted), scores,
                                       np.arange(len(self.classes)), self.positive_index)

    def realized(self, labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None) -> dict[str, float]:
        """Each metric computed from true labels."""
        return {metric: self._realized(metric, labels, predicted, scores) for metric in self.metrics}

    def estimate(self, scores: np.ndarray, predicted: np.ndarray) -> tuple[MetricEstimate, ...]:
        """Each metric expected on a window from its scores and predictions."""
        calibrated = self._calibrate(scores)
        predicted_index = self._index(predicted)
        rows = len(predicted_index)
        out = []
        for metric in self.metrics:
            value = expected_classification(metric, calibrated, predicted_index, scores, self.positive_index)
            whole, spread, _ = self.reference[metric]
            lower, upper = interval(value, spread, rows)
            ref_lower, ref_upper = interval(whole, spread, rows)
            out.append(MetricEstimate(metric, value, _clip(lower), _clip(upper), whole, _clip(ref_lower),
                                      _clip(ref_upper)))
        return tuple(out)


def _clip(value: float) -> float:
    return float(min(max(value, 0.0), 1.0)) if np.isfinite(value) else value


def class_name(value: object) -> str:
    """A class as text, so that 1, 1.0, np.int64(1) and '1' are one class."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer, np.str_)):
        return str(value.item())
    return str(value)
