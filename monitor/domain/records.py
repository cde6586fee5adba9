"""The plain records one tick produces: what the store persists and the faces show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The feature name of results about all features jointly (multivariate measures).
ALL_FEATURES = "*"


@dataclass(frozen=True)
class ResultRecord:
    """One measure of one feature in one window."""

    feature: str
    measure: str
    value: float
    p_value: float | None
    p_value_adjusted: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class WindowRecord:
    """An evaluated window and everything it produced."""

    seq: int
    reference_id: int
    rows: int
    started_at: datetime | None
    ended_at: datetime | None
    state: str
    drift_share: float
    drifted_features: list[str]
    missing_features: list[str]
    results: list[ResultRecord]
    starts_event: bool
    statistic: float | None = None
    #: Each measure that failed on some feature of the window, and why (never a "not drifted").
    failed_measures: dict[str, str] = field(default_factory=dict)
    #: With ``starts_event``: the recent target rows (Arrow IPC) kept with the event, and the
    #: adapters (recorded name, type) whose runs are queued as pending in the same transaction.
    target_sample: bytes | None = field(default=None, repr=False)
    adapters: tuple[tuple[str, str], ...] = ()
    #: The model's performance estimated on the window (``WindowEstimate.to_json()`` plus ``alerts``: the
    #: metrics whose drop raised the state); None when the monitor has no ``performance`` or it could not be made.
    performance: dict[str, Any] | None = None
    #: With a label source: the window's row keys and model outputs (Arrow IPC), kept to join labels to later.
    performance_outputs: bytes | None = field(default=None, repr=False)
    #: What kind of change each feature shows (``monitor.domain.diagnosis``), as JSON-ready mappings.
    diagnoses: list[dict[str, object]] = field(default_factory=list)
    #: Each segment's outcome (``monitor.domain.segments``), as JSON-ready mappings.
    segments: list[dict[str, object]] = field(default_factory=list)

    @property
    def drifted_segments(self) -> list[str]:
        """The segments in which some feature drifted."""
        return [str(s["segment"]) for s in self.segments if s.get("drifted")]


@dataclass(frozen=True)
class NewReference:
    """A reference domain about to be stored."""

    summary: bytes
    rows: int
    features: dict[str, str]
    origin: str
