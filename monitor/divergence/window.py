"""Prepared windows: each feature column converted, sorted and counted once for every measure."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class CdfGaps:
    """Two sorted samples' ECDFs compared on every gap between consecutive pooled points.

    ``ref_diffs[i]`` is ``F_ref - F_win`` at the i-th reference point and ``win_diffs[j]`` is
    ``F_win - F_ref`` at the j-th window point; each widths entry is the length of the gap that
    point starts. Within runs of ties, and at window points tied with a reference point (whose
    gap the reference point already starts), the width is 0.
    """

    ref_diffs: np.ndarray
    ref_widths: np.ndarray
    win_diffs: np.ndarray
    win_widths: np.ndarray


class NumericWindow:
    """A window's finite float64 values of one numeric feature, sorted once on demand."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64).reshape(-1)
        self._gaps: tuple[np.ndarray, CdfGaps] | None = None

    @property
    def n(self) -> int:
        """The number of values."""
        return int(self.values.size)

    @cached_property
    def sorted(self) -> np.ndarray:
        """The values in ascending order."""
        return np.sort(self.values)

    def gaps(self, sorted_reference: np.ndarray) -> CdfGaps:
        """The ECDF comparison with a sorted reference, kept for the latest reference array.

        Two ``searchsorted(side="right")`` calls on sorted inputs, then O(n) work; KS,
        Wasserstein and energy distance share the result.
        """
        if self._gaps is not None and self._gaps[0] is sorted_reference:
            return self._gaps[1]
        window_le_ref = np.searchsorted(self.sorted, sorted_reference, side="right")
        ref_le_window = np.searchsorted(sorted_reference, self.sorted, side="right")
        ref_diffs, ref_widths = _gaps_after(sorted_reference, self.sorted, window_le_ref)
        win_diffs, win_widths = _gaps_after(self.sorted, sorted_reference, ref_le_window)
        # Index -1 (no reference point at or below) wraps to the reference maximum, which
        # then exceeds the window value, so no separate mask is needed.
        win_widths[sorted_reference[ref_le_window - 1] == self.sorted] = 0.0
        gaps = CdfGaps(ref_diffs, ref_widths, win_diffs, win_widths)
        self._gaps = (sorted_reference, gaps)
        return gaps


def _gaps_after(
    x: np.ndarray, y: np.ndarray, y_le_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``F_x - F_y`` at each point of x and the distance to the next point of x or y."""
    following = np.empty_like(x)
    following[:-1] = x[1:]
    following[-1] = np.inf
    before_y_ends = int(np.searchsorted(y_le_x, y.size))
    following[:before_y_ends] = np.minimum(following[:before_y_ends], y[y_le_x[:before_y_ends]])
    if before_y_ends < x.size:
        following[-1] = x[-1]
    diffs = np.arange(1, x.size + 1) / x.size - y_le_x / y.size
    return diffs, following - x


class CategoricalWindow:
    """A window's category counts of one categorical feature (categories sorted, nulls dropped)."""

    def __init__(self, categories: tuple[str, ...], counts: np.ndarray) -> None:
        self.categories = categories
        self.counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if len(categories) != self.counts.size:
            raise ValueError("categories and counts differ in length")

    @property
    def n(self) -> int:
        """The number of values."""
        return int(self.counts.sum())

    @classmethod
    def from_values(cls, values: np.ndarray) -> CategoricalWindow:
        """Count an array of strings."""
        categories, counts = np.unique(np.asarray(values, dtype=object), return_counts=True)
        return cls(tuple(str(c) for c in categories), counts)

    @classmethod
    def from_arrow(cls, column: pa.ChunkedArray | pa.Array) -> CategoricalWindow:
        """Count a string (or dictionary-of-string) Arrow column with ``value_counts``."""
        counted = pc.value_counts(column)
        categories = counted.field("values")
        counts = counted.field("counts")
        if categories.null_count:
            valid = pc.is_valid(categories)
            categories, counts = categories.filter(valid), counts.filter(valid)
        names = categories.to_pylist()
        order = sorted(range(len(names)), key=names.__getitem__)
        return cls(tuple(names[i] for i in order), counts.to_numpy(zero_copy_only=False)[order])


FeatureWindow = NumericWindow | CategoricalWindow


def prepare_window(values: np.ndarray, kind: str) -> FeatureWindow:
    """A prepared window of clean ``values`` (finite floats, or strings) of a feature kind."""
    if kind == "numeric":
        return NumericWindow(values)
    if kind == "categorical":
        return CategoricalWindow.from_values(values)
    raise ValueError(f"unknown feature kind {kind!r}; use 'numeric' or 'categorical'")
