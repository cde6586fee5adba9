"""Prepared windows: each feature column converted, sorted and counted once for every measure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class CdfGaps:
    """Two sorted samples' ECDFs compared on every gap between consecutive pooled points.

    The pooled values in ascending order (reference before window among ties) give ``N - 1``
    gaps; ``diffs[k]`` is ``F_ref - F_win`` after the first ``k + 1`` pooled values and
    ``widths[k]`` the length of the gap that follows them (0 inside a run of ties). Where a
    width is positive, ``diffs`` is the difference of the two ECDFs at that pooled value, the
    very numbers ``ks_2samp`` and ``wasserstein_distance`` compare (in the same order).
    """

    diffs: np.ndarray
    widths: np.ndarray


@dataclass(frozen=True)
class CdfDistances:
    """What KS, Wasserstein and energy distance read from the ECDF comparison: three numbers.

    ``ks`` is ``max |F_ref - F_win|`` (at the ends of runs of equal pooled values, as ``ks_2samp``
    takes it), ``w1`` is ``integral |F_ref - F_win|`` and ``w2`` is ``integral (F_ref - F_win)^2``.
    """

    ks: float
    w1: float
    w2: float

    @classmethod
    def of(cls, gaps: CdfGaps) -> CdfDistances:
        """The three numbers of one comparison."""
        absolute = np.abs(gaps.diffs)
        ends = absolute[gaps.widths > 0]
        # einsum, not np.dot: BLAS threads cost more than they save at these sizes
        return cls(ks=float(ends.max()) if ends.size else 0.0,
                   w1=float(np.einsum("i,i->", absolute, gaps.widths)),
                   w2=float(np.einsum("i,i,i->", gaps.diffs, gaps.diffs, gaps.widths)))


class NumericWindow:
    """A window's finite float64 values of one numeric feature, sorted once on demand."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64).reshape(-1)
        self._sorted: np.ndarray | None = None
        self._distances: tuple[np.ndarray, CdfDistances] | None = None

    @property
    def n(self) -> int:
        """The number of values."""
        return int(self.values.size)

    @property
    def sorted(self) -> np.ndarray:
        """The values in ascending order, sorted on first use.

        Not a ``functools.cached_property``: before Python 3.12 it holds one lock for every
        instance while it computes, which would run the features' sorts one at a time on the pool.
        """
        if self._sorted is None:
            self._sorted = np.sort(self.values)
        return self._sorted

    def gaps(self, sorted_reference: np.ndarray) -> CdfGaps:
        """The ECDF comparison with a sorted reference: one linear merge of the two sorted arrays."""
        return merged_gaps(sorted_reference, self.sorted)

    def distances(self, sorted_reference: np.ndarray) -> CdfDistances:
        """KS, W1 and W2 against a sorted reference, kept for the latest reference array.

        KS, Wasserstein and energy distance share one merge; only three numbers are kept, not
        the merge's arrays (a window holds every feature until all measures have run).
        """
        if self._distances is not None and self._distances[0] is sorted_reference:
            return self._distances[1]
        distances = CdfDistances.of(self.gaps(sorted_reference))
        self._distances = (sorted_reference, distances)
        return distances


def merged_gaps(sorted_x: np.ndarray, sorted_y: np.ndarray) -> CdfGaps:
    """``F_x - F_y`` after each pooled point and the gap to the next, from one merge of two sorted arrays.

    A stable argsort of the two concatenated runs is a merge (numpy's stable sort finds and
    merges runs in linear time); ties keep x before y, and their gaps are 0 either way.
    """
    n_x, n_y = sorted_x.size, sorted_y.size
    pooled = np.concatenate([sorted_x, sorted_y])
    order = np.argsort(pooled, kind="stable")
    widths = np.diff(pooled[order])
    del pooled
    x_seen = np.cumsum(order[:-1] < n_x)
    del order
    y_seen = np.arange(1, n_x + n_y, dtype=np.int64)
    y_seen -= x_seen
    diffs = x_seen / n_x
    del x_seen
    diffs -= y_seen / n_y
    return CdfGaps(diffs, widths)


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
