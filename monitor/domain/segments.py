"""Segments: each segment of a window (``features.segment_by``) measured against the same segment of the reference.

Every measure's p-values are corrected across all segments and features together (the monitor's
``drift.correction``), so with 20 segments the chance of a false "segment drifted" stays at the
test's level, not twenty times it. A distance has no p-value: it flags a segment by its threshold
(and ``min_rows``), so many segments raise its false alarms; prefer tests with segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from monitor.divergence import NUMPY, Backend, MultivariateMeasure, ReferenceSummary, Score, adjust_p_values
from monitor.domain.evaluate import MeasureSetting, evaluate_window
from monitor.domain.records import ResultRecord
from monitor.domain.segment_keys import segment_keys


@dataclass(frozen=True)
class SegmentOutcome:
    """One segment of one window: its rows, the features that drifted in it, and those it could not measure."""

    segment: str
    rows: int
    drifted_features: list[str]
    missing_features: list[str]
    in_reference: bool = True

    @property
    def drifted(self) -> bool:
        """Whether any feature drifted in the segment."""
        return bool(self.drifted_features)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"segment": self.segment, "rows": self.rows, "drifted": self.drifted,
                "drifted_features": list(self.drifted_features), "missing_features": list(self.missing_features),
                "in_reference": self.in_reference}


def evaluate_segments(rows: pa.Table, kinds: Mapping[str, str], summary: ReferenceSummary,
                      settings: Sequence[MeasureSetting], correction: str, segment_by: Sequence[str], *,
                      backend: Backend = NUMPY, min_rows: int = 0) -> list[SegmentOutcome]:
    """Each reference segment's outcome in this window (most frequent in the reference first), then the
    window's segments the reference does not have (not measured: listed with their rows).

    ``min_rows``: a segment with fewer rows is listed as not measured (its features in ``missing_features``).
    """
    if not summary.segments:
        return []
    keys = segment_keys(rows, segment_by)
    order = np.argsort(keys, kind="stable")  # one sort, then each segment is a slice: linear in segments
    names, starts, counts = np.unique(keys[order], return_index=True, return_counts=True)
    spans = {str(name): (int(start), int(count)) for name, start, count in zip(names, starts, counts)}
    ordered = rows.take(pa.array(order))
    per_feature = [setting for setting in settings if not isinstance(setting.measure, MultivariateMeasure)]
    scored: dict[str, list[ResultRecord]] = {}
    outcomes: dict[str, SegmentOutcome] = {}
    for name, reference in summary.segments.items():
        start, count = spans.get(name, (0, 0))
        present = {feature: kind for feature, kind in kinds.items() if feature in reference.features}
        if count < max(min_rows, 2):
            outcomes[name] = SegmentOutcome(name, count, [], sorted(kinds))
            continue
        evaluation = evaluate_window(ordered.slice(start, count), present, reference, per_feature, "none",
                                     backend=backend, min_rows=min_rows)
        scored[name] = evaluation.results
        missing = sorted({*evaluation.missing, *(set(kinds) - set(present))})
        outcomes[name] = SegmentOutcome(name, count, [], missing)
    drifted = _corrected(scored, per_feature, correction)
    found = [SegmentOutcome(o.segment, o.rows, sorted(drifted.get(o.segment, set())), o.missing_features)
             for o in outcomes.values()]
    found += [SegmentOutcome(name, count, [], sorted(kinds), in_reference=False)
              for name, (_, count) in sorted(spans.items()) if name not in summary.segments]
    return found


def _corrected(scored: dict[str, list[ResultRecord]], settings: Sequence[MeasureSetting],
               correction: str) -> dict[str, set[str]]:
    """Per segment, the features some measure flags once each test's p-values are corrected across all segments."""
    by_name = {setting.measure.name: setting for setting in settings}
    drifted: dict[str, set[str]] = {}
    for measure, setting in by_name.items():
        found = [(segment, result) for segment, results in scored.items() for result in results
                 if result.measure == measure]
        if setting.measure.is_test:
            tested = [(segment, result) for segment, result in found if result.p_value is not None]
            adjusted = adjust_p_values([float(result.p_value) for _, result in tested], correction)  # type: ignore[arg-type]
            flags = [(segment, result.feature, setting.decide(result.feature, Score(result.value, p))[1])
                     for (segment, result), p in zip(tested, adjusted)]
        else:
            flags = [(segment, result.feature, result.drifted) for segment, result in found]
        for segment, feature, flagged in flags:
            if flagged:
                drifted.setdefault(segment, set()).add(feature)
    return drifted
