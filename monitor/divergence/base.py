"""The measure contract: a score, and the base class every per-feature measure (plugins too) subclasses.

Every measure reads the reference side from its summary (sorted values, quantile bins, category
counts) and the window side from a prepared window (sorted once, counted once), so nothing that
depends only on the reference is recomputed per window.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence, TypeVar

from monitor.divergence.backend import NUMPY, Backend
from monitor.divergence.summary import (
    CategoricalSummary,
    FeatureSummary,
    NumericSummary,
)
from monitor.divergence.window import CategoricalWindow, FeatureWindow, NumericWindow

T = TypeVar("T")
R = TypeVar("R")

#: Below this many window values in all, features are scored one after the other.
_PARALLEL_MIN_VALUES = 200_000
#: Features are handed to the pool in about this many runs per worker (the runs balance uneven features).
_CHUNKS_PER_WORKER = 4


@functools.cache
def _feature_pool() -> ThreadPoolExecutor:
    """The process-wide pool that scores large features in parallel."""
    return ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="driftd-measure")


def _spare_core() -> bool:
    """Whether a thread would find a core to run on: the 1-minute load average leaves one idle.

    On a machine already busy (other processes, or the daemon's other monitors) a second thread only
    waits for a core, and every measure's hand-over to the pool then costs wall time instead of saving it.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return True
    return (os.cpu_count() or 1) - load >= 1.0


def _workers() -> int:
    """The feature pool's threads: one per core, four at most."""
    return min(4, os.cpu_count() or 1)


def map_features(function: Callable[[T], R], items: Sequence[T], values: int) -> list[R]:
    """``function`` over ``items`` in order: on the shared pool when there are ``values`` enough to pay for it
    and a core to spare."""
    if len(items) < 2 or values < _PARALLEL_MIN_VALUES or not _spare_core():
        return [function(item) for item in items]
    # a few runs of features per worker, not one task per feature: a feature whose sort or merge
    # is already done costs less than handing it to a thread
    size = max(1, -(-len(items) // (_CHUNKS_PER_WORKER * _workers())))
    runs = [items[start:start + size] for start in range(0, len(items), size)]
    return [result for run in _feature_pool().map(lambda run: [function(item) for item in run], runs)
            for result in run]


@dataclass(frozen=True)
class Score:
    """A measure's value for one feature and window, and its p-value when it is a test."""

    value: float
    p_value: float | None = None


class Measure:
    """Base class of a divergence measure (plugins subclass it too)."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    is_test: ClassVar[bool]
    #: Whether a larger ``value`` means more drift (tests still decide on the p-value).
    higher_is_drift: ClassVar[bool] = True
    default_threshold: ClassVar[float]
    description: ClassVar[str]
    backends: ClassVar[frozenset[str]] = frozenset({"numpy"})

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """Score a non-empty prepared window against the reference summary."""
        raise NotImplementedError

    #: Whether ``score`` may run for several features at once (False: it touches process state).
    thread_safe: ClassVar[bool] = True

    def score_many(
        self, pairs: Sequence[tuple[FeatureSummary, FeatureWindow]], backend: Backend = NUMPY
    ) -> list[Score]:
        """Score many (reference, window) pairs; measures without a ``backend`` path run on numpy.

        Large features are scored on a small shared thread pool (numpy releases the GIL while
        it sorts and searches), so one window uses every core.
        """
        if not self.thread_safe:
            return [self.score(reference, window) for reference, window in pairs]
        return map_features(lambda pair: self.score(*pair), pairs, sum(window.n for _, window in pairs))

    def drifted(self, score: Score, threshold: float) -> bool:
        """Whether a score means drift: ``p < threshold`` for tests, else value past threshold."""
        if self.is_test:
            if score.p_value is None:
                raise ValueError(f"measure {self.name!r} is a test but its score has no p-value")
            return score.p_value < threshold
        return score.value > threshold if self.higher_is_drift else score.value < threshold


def check_not_empty(window: FeatureWindow) -> None:
    """ValueError for an empty window (the engine never scores one)."""
    if window.n == 0:
        raise ValueError("cannot score an empty window")


def numeric_pair(
    measure: Measure, reference: FeatureSummary, window: FeatureWindow
) -> tuple[NumericSummary, NumericWindow]:
    """The pair as numeric types; TypeError naming the measure when it is not numeric, ValueError when empty."""
    if not isinstance(reference, NumericSummary) or not isinstance(window, NumericWindow):
        raise TypeError(
            f"measure {measure.name!r} needs a numeric feature, got "
            f"{type(reference).__name__} and {type(window).__name__}"
        )
    check_not_empty(window)
    return reference, window


def categorical_pair(
    measure: Measure, reference: FeatureSummary, window: FeatureWindow
) -> tuple[CategoricalSummary, CategoricalWindow]:
    """The pair as categorical types; TypeError naming the measure when it is not categorical."""
    if not isinstance(reference, CategoricalSummary) or not isinstance(window, CategoricalWindow):
        raise TypeError(
            f"measure {measure.name!r} needs a categorical feature, got "
            f"{type(reference).__name__} and {type(window).__name__}"
        )
    check_not_empty(window)
    return reference, window
