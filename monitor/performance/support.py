"""The assumption check: does a window lie where the reference has rows?

An estimate made without labels carries the reference's relation between inputs and outcomes over
to the window. That holds under covariate shift inside the reference's support, and cannot be known
outside it: there the reference has no rows to learn the relation from. A window row is *outside*
when its nearest reference row (features scaled by the reference's spread) is farther away than
all but ``quantile`` of the reference's own nearest-neighbour distances, when a numeric feature is
missing, or when a categorical feature takes a value the reference never had.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: Reference rows the neighbour search keeps (a seeded sample above this).
MAX_REFERENCE_ROWS = 20_000


class Support:
    """The reference's support over the numeric and categorical features, fitted once per reference."""

    def __init__(self, numeric: np.ndarray, categorical: Mapping[str, np.ndarray], quantile: float = 0.999,
                 seed: int = 0) -> None:
        from scipy.spatial import cKDTree

        numeric = np.asarray(numeric, dtype=float).reshape(len(numeric), -1)
        complete = numeric[np.isfinite(numeric).all(axis=1)]
        if numeric.shape[1] and len(complete) < 10:
            raise ValueError("the reference has fewer than 10 complete rows over the numeric features")
        if len(complete) > MAX_REFERENCE_ROWS:
            keep = np.random.default_rng(seed).choice(len(complete), MAX_REFERENCE_ROWS, replace=False)
            complete = complete[keep]
        self._centre = complete.mean(axis=0) if numeric.shape[1] else np.zeros(0)
        spread = complete.std(axis=0) if numeric.shape[1] else np.zeros(0)
        self._scale = np.where(spread > 0, spread, 1.0)
        self._tree = cKDTree((complete - self._centre) / self._scale) if numeric.shape[1] else None
        if self._tree is not None:
            own, _ = self._tree.query(self._tree.data, k=2)
            self.radius = float(np.quantile(own[:, 1], quantile))
        else:
            self.radius = 0.0
        self._seen = {name: {str(v) for v in np.asarray(values, dtype=object).tolist()} for name, values in categorical.items()}

    def outside(self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]) -> np.ndarray:
        """A boolean per window row: True where the row lies outside the reference's support."""
        numeric = np.asarray(numeric, dtype=float).reshape(len(numeric), -1)
        rows = len(numeric) if numeric.shape[1] else len(next(iter(categorical.values()), []))
        out = np.zeros(rows, dtype=bool)
        if self._tree is not None:
            finite = np.isfinite(numeric).all(axis=1)
            out |= ~finite
            if finite.any():
                distance, _ = self._tree.query((numeric[finite] - self._centre) / self._scale, k=1)
                out[np.flatnonzero(finite)] |= distance > self.radius
        for name, seen in self._seen.items():
            values = np.asarray(categorical[name], dtype=object).tolist()
            out |= np.fromiter((str(value) not in seen for value in values), dtype=bool, count=len(values))
        return out
