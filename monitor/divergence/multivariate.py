"""The multivariate measure contract: all numeric features of a window at once, in the reference's
standardised coordinates (``(x - mean) / std``), against the reference sub-sample in a ``MultivariateSummary``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from monitor.divergence.backend import NUMPY, Backend
from monitor.divergence.base import Score
from monitor.divergence.summary import MultivariateSummary, as_rows


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


def standardized_rows(
    reference: MultivariateSummary, window: np.ndarray, rows: int, rng: np.random.Generator
) -> np.ndarray:
    """At most ``rows`` window rows in seeded random order, in the reference's standard units."""
    values = as_rows(window, len(reference.features))
    chosen = rng.permutation(len(values))[:rows]
    return (values[chosen] - reference.mean) / reference.std


def supported_backend(measure: MultivariateMeasure, backend: Backend) -> Backend:
    """``backend`` when the measure implements it, numpy otherwise."""
    return backend if backend.name in measure.backends else NUMPY
