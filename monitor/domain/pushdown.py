"""Push-down windows: scoring the counts a source made of each window (see the contract in
``monitor.connector``: ``pushdown_column`` and ``aggregate(cursor, plan) -> AggregateBatch``).

The engine scores such a window with the measures that read nothing but these counts (PSI, KL,
Jensen–Shannon, Hellinger, chi-square, total variation, L-infinity, unseen share): each measure's
own ``score`` runs on the counts, so the values are the ones the pulled rows would give. Measures
that need the rows themselves (KS, Wasserstein, Anderson–Darling, MMD, …) are refused when the
monitor is built.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from monitor.config import MonitorConfig
from monitor.connector import AggregatePlan, WindowAggregate
from monitor.divergence import (
    BUILTIN_MEASURES,
    NUMPY,
    Backend,
    CategoricalSummary,
    CategoricalWindow,
    MultivariateMeasure,
    NumericSummary,
    ReferenceSummary,
)
from monitor.divergence.summary import bin_indices
from monitor.domain.evaluate import MeasureSetting, Tally, WindowEvaluation

#: Built-in measures whose score reads only bin proportions or category counts, so a window's
#: counts give exactly the value its rows would.
COUNT_MEASURES = frozenset({
    "psi", "kl", "kl_reverse", "jensen_shannon", "js_divergence", "hellinger",
    "chi_square", "total_variation", "linf", "unseen_share",
})


def counts_only(measure: object) -> bool:
    """Whether a measure's score needs nothing but binned or category counts.

    The built-ins in ``COUNT_MEASURES``; a plugin measure opts in with a class attribute
    ``counts_only = True`` (its ``score`` must read the window only through
    ``proportions`` / ``category_counts``).
    """
    if isinstance(measure, MultivariateMeasure):
        return False
    builtin = BUILTIN_MEASURES.get(getattr(measure, "name", ""))
    if builtin is not None:
        return measure.name in COUNT_MEASURES and type(measure) is type(builtin)
    return getattr(measure, "counts_only", False) is True


def pushdown_problems(config: MonitorConfig, settings: list[MeasureSetting], column: str) -> list[str]:
    """Why a monitor cannot run on a push-down source (an empty list when it can)."""
    problems = []
    refused = [s.measure.name for s in settings if not counts_only(s.measure)]
    if refused:
        problems.append(
            f"measure(s) {', '.join(map(repr, refused))} need the window's rows, which a push-down source "
            f"never transfers; use measures computed from counts ({', '.join(sorted(COUNT_MEASURES))}) "
            "or turn push-down off")
    window = config.window
    if window.span is None or window.timestamp != column:
        problems.append(f"window must be 'span' over the cursor column (window: {{span: ..., timestamp: {column}}}), "
                        "so the database can cut the windows itself")
    elif window.span != math.floor(window.span):
        problems.append(f"window.span must be a whole number (seconds of a timestamp cursor, or ids), "
                        f"got {window.span:g}")
    if config.adaptation is not None:
        problems.append("adaptation needs the rows of the drifted windows, which a push-down source never transfers")
    return problems


class CountReference:
    """One reference version seen as counts: each numeric feature's bins as a category table.

    A numeric feature's reference bins become the categories of a ``CategoricalSummary`` (their
    counts recomputed from the sorted reference sample, so the proportions are the summary's own
    ``probs``) and the window's bin counts a ``CategoricalWindow`` over the same categories, in
    bin order. The measures then see the same two aligned proportion vectors as for pulled rows.
    """

    def __init__(self, summary: ReferenceSummary) -> None:
        self.summary = summary
        self._bins: dict[str, tuple[CategoricalSummary, tuple[str, ...]]] = {}
        for name, feature in summary.features.items():
            if isinstance(feature, NumericSummary):
                labels = tuple(f"bin {i}" for i in range(feature.edges.size + 1))
                counts = np.bincount(bin_indices(feature.edges, feature.sorted_values), minlength=len(labels))
                self._bins[name] = (CategoricalSummary(labels, counts.astype(np.int64)), labels)

    def plan(self, kinds: Mapping[str, str], span: float) -> AggregatePlan:
        """What to count for features of these kinds that the reference holds with the same kind."""
        numeric = {name: self.summary.features[name].edges for name, kind in kinds.items()  # type: ignore[union-attr]
                   if kind == "numeric" and name in self._bins}
        categorical = tuple(name for name, kind in kinds.items() if kind == "categorical"
                            and isinstance(self.summary.features.get(name), CategoricalSummary))
        return AggregatePlan(span=span, numeric=numeric, categorical=categorical)

    def reference(self, name: str) -> CategoricalSummary:
        """The reference side a measure scores feature ``name`` against."""
        if name in self._bins:
            return self._bins[name][0]
        summary = self.summary.features[name]
        assert isinstance(summary, CategoricalSummary)
        return summary

    def window(self, name: str, kind: str, aggregate: WindowAggregate) -> CategoricalWindow | str:
        """The window side of feature ``name``, or why it cannot be measured."""
        if name not in self.summary.features:
            return "not in the active reference version"
        if name in aggregate.missing:
            return aggregate.missing[name]
        if kind == "numeric":
            if name not in self._bins:
                return "the active reference version holds it as categorical"
            labels = self._bins[name][1]
            counted = aggregate.numeric.get(name)
            if counted is None:
                return "the source did not count it"
            if counted.counts.size != len(labels):
                return f"the source counted {counted.counts.size} bins, the reference has {len(labels)}"
            return CategoricalWindow(labels, counted.counts)
        if not isinstance(self.summary.features[name], CategoricalSummary):
            return "the active reference version holds it as numeric"
        categories = aggregate.categorical.get(name)
        if categories is None:
            return "the source did not count it"
        names = sorted(categories.counts)
        return CategoricalWindow(tuple(names), np.array([categories.counts[n] for n in names], dtype=np.int64))


def evaluate_aggregate(
    aggregate: WindowAggregate,
    kinds: Mapping[str, str],
    reference: CountReference,
    settings: list[MeasureSetting],
    correction: str,
    *,
    backend: Backend = NUMPY,
    min_rows: int = 0,
) -> WindowEvaluation:
    """Score a counted window as ``evaluate_window`` scores rows: same measures, order, corrections.

    As there, a distance computed from fewer than ``min_rows`` values is recorded but does not vote.
    """
    windows: dict[str, CategoricalWindow] = {}
    missing: dict[str, str] = {}
    for name, kind in kinds.items():
        window = reference.window(name, kind, aggregate)
        if isinstance(window, str):
            missing[name] = window
        elif window.n == 0:
            missing[name] = "no usable values in the window (all null, NaN or inf)"
        else:
            windows[name] = window

    tally = Tally(windows)
    for setting in settings:
        names = [name for name in windows if kinds[name] in setting.measure.kinds]
        if not counts_only(setting.measure):  # refused when the monitor is built; kept off here all the same
            tally.fail(setting, "needs the window's rows, which a push-down source does not transfer", names)
            continue
        tally.per_feature(setting, [(name, reference.reference(name), windows[name]) for name in names],
                          correction, backend, min_rows)
    return tally.evaluation(missing)
