"""Multiple-testing corrections of p-values across features."""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np


def adjust_p_values(
    p_values: Sequence[float], method: Literal["none", "bonferroni", "bh"]
) -> np.ndarray:
    """Adjusted p-values: unchanged, Bonferroni ``min(1, p * m)``, or Benjamini–Hochberg."""
    p = np.array(p_values, dtype=np.float64).reshape(-1)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    if method == "none" or m == 0:
        return p
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    if method == "bh":
        order = np.argsort(p)
        ranked = p[order] * (m / np.arange(1, m + 1))
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = ranked
        return np.clip(adjusted, 0.0, 1.0)
    raise ValueError(f"unknown correction method {method!r}; use 'none', 'bonferroni' or 'bh'")
