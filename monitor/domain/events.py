"""The events a monitor announces, and what each carries: written to the outbox in the transaction
that caused them, delivered after the commit to plugin hooks and notifiers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from monitor.domain.records import WindowRecord

WINDOW_EVALUATED = "window_evaluated"
DRIFT_DETECTED = "drift_detected"
ADAPTATION_FINISHED = "adaptation_finished"
#: Every kind of event, in the order a tick produces them.
EVENT_KINDS = (WINDOW_EVALUATED, DRIFT_DETECTED, ADAPTATION_FINISHED)
#: The plugin hook each kind of event calls, and the name of its mapping argument.
HOOKS = {WINDOW_EVALUATED: ("driftd_window_evaluated", "window"),
         DRIFT_DETECTED: ("driftd_drift_detected", "event"),
         ADAPTATION_FINISHED: ("driftd_adaptation_finished", "adaptation")}

#: Destination prefixes: one plugin's event hook, or one configured notifier.
HOOK_TARGET, NOTIFIER_TARGET = "hook:", "notifier:"


@dataclass(frozen=True)
class Routes:
    """Where one monitor's events go: destination names (``hook:PLUGIN``, ``notifier:NAME``) by kind."""

    by_kind: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def targets(self, kind: str) -> tuple[str, ...]:
        """The destinations of ``kind`` (none: the event is not written at all)."""
        return tuple(self.by_kind.get(kind, ()))


NO_ROUTES = Routes()


def json_safe(value: Any) -> Any:
    """``value`` with NaN as None and infinities as ``"Infinity"``/``"-Infinity"``, as the API serves them
    (JSON, and PostgreSQL's json type, have neither)."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def window_payload(record: WindowRecord) -> dict[str, Any]:
    """The ``window`` mapping ``driftd_window_evaluated`` receives."""
    return json_safe({
        "seq": record.seq, "rows": record.rows, "state": record.state, "drift_share": record.drift_share,
        "drifted_features": list(record.drifted_features), "missing_features": list(record.missing_features),
        "failed_measures": dict(record.failed_measures), "diagnoses": list(record.diagnoses),
        "segments": list(record.segments),
        "results": [vars(result).copy() for result in record.results],
        "performance": record.performance,
    })


def drift_payload(record: WindowRecord, drift_event_id: int) -> dict[str, Any]:
    """The ``event`` mapping ``driftd_drift_detected`` receives."""
    return json_safe({"id": drift_event_id, "window_seq": record.seq, "drift_share": record.drift_share,
                      "features": list(record.drifted_features), "diagnoses": list(record.diagnoses),
                      "drifted_segments": record.drifted_segments, "performance": record.performance})
