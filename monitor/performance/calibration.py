"""Probability calibration fitted on the reference, where labels are known (isotonic, one class against the rest)."""

from __future__ import annotations

import numpy as np


class Calibrator:
    """Maps a model's class probabilities to calibrated ones: isotonic per class, rows renormalised."""

    def __init__(self, scores: np.ndarray, label_index: np.ndarray) -> None:
        from sklearn.isotonic import IsotonicRegression

        classes = scores.shape[1]
        fitted = [1] if classes == 2 else range(classes)
        self._maps: dict[int, IsotonicRegression] = {}
        for k in fitted:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
            iso.fit(scores[:, k], (label_index == k).astype(float))
            self._maps[k] = iso
        self._classes = classes

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, rows summing to one."""
        if self._classes == 2:
            positive = self._maps[1].predict(scores[:, 1])
            return np.column_stack([1.0 - positive, positive])
        calibrated = np.column_stack([self._maps[k].predict(scores[:, k]) for k in range(self._classes)])
        totals = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / self._classes)
        return np.where(totals > 0, calibrated / np.where(totals > 0, totals, 1.0), uniform)
