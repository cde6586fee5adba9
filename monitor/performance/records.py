"""What an estimate says: a value, its interval, the reference's own band, and whether it can be trusted."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricEstimate:
    """One metric for one window, estimated without labels.

    ``lower``/``upper`` bound the realized value expected for a window of this size (the estimate ± 3
    standard deviations of the metric across reference chunks, scaled to the window's rows);
    ``reference_lower``/``reference_upper`` are the band the metric kept on the reference itself.
    """

    metric: str
    value: float
    lower: float
    upper: float
    reference_value: float
    reference_lower: float
    reference_upper: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (NaN as null)."""
        return {name: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for name, value in self.__dict__.items()}


@dataclass(frozen=True)
class WindowEstimate:
    """Every metric estimated for one window, with the assumption check's verdict.

    ``reliable`` is False when the window lies off the reference's support: then the values are the
    estimator's best guess but driftd cannot know the performance without labels, and says so in
    ``reason``.
    """

    rows: int
    outside_share: float
    reliable: bool
    reason: str | None
    metrics: tuple[MetricEstimate, ...] = field(default_factory=tuple)

    def get(self, metric: str) -> MetricEstimate | None:
        """The estimate of ``metric``, if it was estimated."""
        return next((m for m in self.metrics if m.metric == metric), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"rows": self.rows, "outside_share": self.outside_share, "reliable": self.reliable,
                "reason": self.reason, "metrics": [m.to_json() for m in self.metrics]}


def band(values: list[float], chunk_rows: int) -> tuple[float, float]:
    """Mean and per-row-scaled standard deviation (σ·√chunk_rows) of a metric over reference chunks."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return (finite[0] if finite else float("nan")), float("nan")
    mean = sum(finite) / len(finite)
    spread = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
    return mean, spread * math.sqrt(chunk_rows)


def interval(centre: float, unit_spread: float, rows: int, sigmas: float = 3.0) -> tuple[float, float]:
    """centre ± sigmas·σ for a window of ``rows`` rows (NaN bounds when the spread is unknown)."""
    if not math.isfinite(unit_spread) or rows <= 0:
        return float("nan"), float("nan")
    half = sigmas * unit_spread / math.sqrt(rows)
    return centre - half, centre + half
