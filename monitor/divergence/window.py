"""Prepared windows: each feature column converted, sorted and counted once for every measure."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

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
        self._scalars: dict[str, tuple[np.ndarray, float]] = {}
        self._binned: tuple[np.ndarray, np.ndarray] | None = None

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

    def release(self) -> None:
        """Drop the sorted copy (its scalars stay): a later use of ``sorted`` sorts again."""
        self._sorted = None

    def gaps(self, sorted_reference: np.ndarray) -> CdfGaps:
        """The ECDF comparison with a sorted reference: one linear merge of the two sorted arrays."""
        return merged_gaps(sorted_reference, self.sorted)

    def distances(self, sorted_reference: np.ndarray) -> CdfDistances:
        """KS, W1 and W2 against a sorted reference from one full merge, kept for the latest reference array.

        Only the energy distance (W2) needs the whole merge: KS and W1 alone come cheaper from
        :meth:`ks` and :meth:`w1`. Only three numbers are kept, not the merge's arrays (a window
        holds every feature until all measures have run).
        """
        if self._distances is not None and self._distances[0] is sorted_reference:
            return self._distances[1]
        distances = CdfDistances.of(self.gaps(sorted_reference))
        self._distances = (sorted_reference, distances)
        return distances

    def bin_counts(self, edges: np.ndarray) -> np.ndarray:
        """Counts in the right-closed bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``, kept for the latest edges
        (PSI, KL and Jensen–Shannon count the same bins)."""
        kept = self._binned
        if kept is not None and kept[0] is edges:
            return kept[1]
        at_or_below = np.searchsorted(self.sorted, edges, side="right")
        counts = np.diff(at_or_below, prepend=0, append=self.n)
        counts.flags.writeable = False  # shared by every measure that reads it
        self._binned = (edges, counts)
        return counts

    def ks(self, sorted_reference: np.ndarray) -> float:
        """``max |F_ref - F_win|`` (bit for bit the merge's), kept for the latest reference array."""
        return self._kept("ks", sorted_reference, lambda: ks_two_sorted(sorted_reference, self.sorted))

    def w1(self, sorted_reference: np.ndarray) -> float:
        """``integral |F_ref - F_win|`` (the Wasserstein-1 distance), kept for the latest reference array."""
        return self._kept("w1", sorted_reference, lambda: w1_two_sorted(sorted_reference, self.sorted))

    def _kept(self, key: str, sorted_reference: np.ndarray, compute: Callable[[], float]) -> float:
        if self._distances is not None and self._distances[0] is sorted_reference:
            return float(getattr(self._distances[1], key))
        kept = self._scalars.get(key)
        if kept is not None and kept[0] is sorted_reference:
            return kept[1]
        value = compute()
        self._scalars[key] = (sorted_reference, value)
        return value


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


#: Below this many pooled values the whole merge costs less than probing it.
_PROBED_MIN = 4_096
#: ``ks_two_sorted`` compares the ECDFs at every this-many-th window value first.
_PROBE_STRIDE = 32


def ks_two_sorted(sorted_x: np.ndarray, sorted_y: np.ndarray) -> float:
    """``max |F_x - F_y|`` of two non-empty sorted samples, equal bit for bit to ``merged_gaps``'s.

    The ECDFs are compared at every 32nd value of ``sorted_y`` first. Between two such probes
    each count stays between its values at the probes, which bounds ``|F_x - F_y|`` there (rounding
    included: a count divided by a size is monotone); only the stretches whose bound passes the
    largest difference found are compared at every value. Where too much of the data is in such
    stretches (or the samples are small) the whole merge is taken.
    """
    n, m = sorted_x.size, sorted_y.size
    if n + m < _PROBED_MIN:
        return CdfDistances.of(merged_gaps(sorted_x, sorted_y)).ks
    at = _probe_positions(m)
    probes = sorted_y[at]
    if _apart(sorted_y, at):  # no probe has a tie in the window: its counts there are its position
        y_at, y_under = (at + 1) / m, at
    else:
        probes = np.unique(probes)
        y_at = np.searchsorted(sorted_y, probes, side="right") / m
        y_under = np.searchsorted(sorted_y, probes, side="left")
    x_count = np.searchsorted(sorted_x, probes, side="right")
    x_at = x_count / n  # F_x at each probe, as the merge divides
    x_under = _below(sorted_x, probes, x_count)  # values strictly below each probe
    # below the window's minimum F_y is 0, so |F_x - F_y| peaks at the count of x under it
    best = max(float(np.abs(x_at - y_at).max()), int(x_under[0]) / n - 0 / m)
    # on [P_a, P_a+1) both counts lie between their values at P_a and just below P_a+1
    x_high, y_high = x_under[1:], y_under[1:]
    bound = np.maximum(x_high / n - y_at[:-1], y_high / m - x_at[:-1])
    open_ = np.flatnonzero(bound > best)
    if open_.size == 0:
        return best
    x_from, y_from = x_under[open_], y_under[open_]
    if int((x_high[open_] - x_from).sum() + (y_high[open_] - y_from).sum()) > (n + m) // 4:
        return CdfDistances.of(merged_gaps(sorted_x, sorted_y)).ks
    # each stretch value's count on its own side is its position (the end of its run of ties):
    # only the other side is searched
    x_index, y_index = _ranges(x_from, x_high[open_]), _ranges(y_from, y_high[open_])
    x_points, y_points = sorted_x[x_index], sorted_y[y_index]
    x_side = _own_counts(sorted_x, x_index) / n - np.searchsorted(sorted_y, x_points, side="right") / m
    y_side = np.searchsorted(sorted_x, y_points, side="right") / n - _own_counts(sorted_y, y_index) / m
    return max(best, float(np.abs(x_side).max(initial=0.0)), float(np.abs(y_side).max(initial=0.0)))


@functools.lru_cache(maxsize=8)
def _probe_positions(m: int) -> np.ndarray:
    """Every ``_PROBE_STRIDE``-th position of a sorted sample of ``m`` values, and its last (kept per size)."""
    at = np.append(np.arange(0, m - 1, _PROBE_STRIDE), m - 1)
    at.flags.writeable = False
    return at


def _own_counts(sorted_values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``searchsorted(sorted_values, sorted_values[index], side="right")``: each position + 1, searched only where
    the next value ties."""
    counts = index + 1
    last = sorted_values.size - 1
    tied = sorted_values[np.minimum(counts, last)] == sorted_values[index]
    tied &= index < last
    if tied.any():
        counts[tied] = np.searchsorted(sorted_values, sorted_values[index[tied]], side="right")
    return counts


def _below(sorted_values: np.ndarray, points: np.ndarray, at_or_below: np.ndarray) -> np.ndarray:
    """``searchsorted(sorted_values, points, side="left")`` given the ``side="right"`` counts: the same
    where no point equals a value (searched again only where one does)."""
    last = np.maximum(at_or_below - 1, 0)
    tied = (at_or_below > 0) & (sorted_values[last] == points)
    if not tied.any():
        return at_or_below
    below = at_or_below.copy()
    below[tied] = np.searchsorted(sorted_values, points[tied], side="left")
    return below


def _apart(sorted_values: np.ndarray, at: np.ndarray) -> bool:
    """Whether each value at the increasing positions ``at`` (the first 0, the last the final one) differs from
    both its neighbours."""
    values = sorted_values[at]
    return bool(np.all(values[:-1] < sorted_values[at[:-1] + 1]) and np.all(sorted_values[at[1:] - 1] < values[1:]))


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated ``arange(start, stop)`` of each pair."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.intp)
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(total)


#: Grids of at most this many steps are kept (two at most: about 10 MB), larger ones rebuilt per call.
_KEPT_STEPS = 400_000


def _quantile_steps(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The steps of the merged quantile grid ``{i/n} U {j/m}``, and each side's order statistic on each step."""
    return _kept_quantile_steps(n, m) if n + m <= _KEPT_STEPS else _build_quantile_steps(n, m)


def _build_quantile_steps(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys = np.union1d(np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n)
    return np.diff(keys, prepend=0) / (n * m), (keys + m - 1) // m - 1, (keys + n - 1) // n - 1


_kept_quantile_steps = functools.lru_cache(maxsize=2)(_build_quantile_steps)


def w1_two_sorted(sorted_x: np.ndarray, sorted_y: np.ndarray) -> float:
    """``integral |F_x - F_y|`` of two non-empty sorted samples, as ``integral_0^1 |Q_x - Q_y|``.

    The area between the two ECDFs equals the area between the two quantile functions, whose
    steps do not depend on the values: equal sizes pair the order statistics; other sizes walk
    the merged grid of ``i/n`` and ``j/m`` (kept per pair of sizes). No merge of the values.
    """
    n, m = sorted_x.size, sorted_y.size
    if n == m:
        difference = np.subtract(sorted_x, sorted_y)
        return float(np.abs(difference, out=difference).sum()) / n
    widths, x_index, y_index = _quantile_steps(n, m)
    return float(np.einsum("i,i->", widths, np.abs(sorted_x[x_index] - sorted_y[y_index])))


class CategoricalWindow:
    """A window's category counts of one categorical feature (categories sorted, nulls dropped)."""

    def __init__(self, categories: tuple[str, ...], counts: np.ndarray) -> None:
        self.categories = categories
        self.counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if len(categories) != self.counts.size:
            raise ValueError("categories and counts differ in length")
        #: The counts aligned with the latest reference's categories (``counts.category_counts``), and that reference.
        self.aligned: tuple[object, tuple[np.ndarray, np.ndarray]] | None = None

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
