"""Counting a window into the reference's bins and categories: the proportions the binned measures compare."""

from __future__ import annotations

import numpy as np

from monitor.divergence.base import check_not_empty
from monitor.divergence.summary import (
    CategoricalSummary,
    FeatureSummary,
    NumericSummary,
)
from monitor.divergence.window import CategoricalWindow, FeatureWindow, NumericWindow

#: The proportion that stands in for an empty bin or category in PSI and KL.
EPS = 1e-4


def proportions(
    reference: FeatureSummary, window: FeatureWindow
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned reference and window proportions: per quantile bin, or per category (union)."""
    if isinstance(reference, NumericSummary) and isinstance(window, NumericWindow):
        check_not_empty(window)
        return reference.probs, window_bin_counts(reference.edges, window) / window.n
    if isinstance(reference, CategoricalSummary) and isinstance(window, CategoricalWindow):
        check_not_empty(window)
        ref_counts, window_counts = category_counts(reference, window)
        return ref_counts / ref_counts.sum(), window_counts / window.n
    raise TypeError(
        f"reference {type(reference).__name__} and window {type(window).__name__} do not match"
    )


def window_bin_counts(edges: np.ndarray, window: NumericWindow) -> np.ndarray:
    """Window counts in the right-closed bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    return window.bin_counts(edges)


def category_counts(
    reference: CategoricalSummary, window: CategoricalWindow
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and window counts over the reference categories then unseen window ones (kept on the window
    for the latest reference: every categorical measure aligns the same counts)."""
    if window.aligned is not None and window.aligned[0] is reference:
        return window.aligned[1]
    index = reference.index
    positions = np.empty(len(window.categories), dtype=np.intp)
    size = len(index)
    for k, category in enumerate(window.categories):
        position = index.get(category)
        if position is None:
            position, size = size, size + 1
        positions[k] = position
    ref_counts = np.zeros(size, dtype=np.int64)
    ref_counts[: len(index)] = reference.counts
    aligned = np.zeros(size, dtype=np.int64)
    aligned[positions] = window.counts
    ref_counts.flags.writeable = aligned.flags.writeable = False  # shared by every measure that reads them
    window.aligned = (reference, (ref_counts, aligned))
    return ref_counts, aligned


def smoothed(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both proportion vectors with empty entries replaced by ``EPS`` (not renormalised)."""
    return np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)
