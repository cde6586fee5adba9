"""The ``alertmanager`` notifier: each event becomes an alert POSTed to Alertmanager's v2 API
(``POST {url}/api/v2/alerts``).

Labels: ``alertname`` (``DriftdDriftDetected``, ``DriftdWindowEvaluated`` or
``DriftdAdaptationFinished``), ``monitor``, ``severity`` and any ``labels`` configured;
annotations: ``summary``, ``event_id`` and the event's data as JSON. The alert starts at the
event's time and ends ``resolve_after`` later (Alertmanager then resolves it).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Mapping

from pydantic import Field, field_validator

from monitor.plugin import Notifier, event_summary, hookimpl, parse_duration
from plugins.notifiers.http import HttpNotifier, HttpNotifierOptions

ALERT_NAMES = {"drift_detected": "DriftdDriftDetected", "window_evaluated": "DriftdWindowEvaluated",
               "adaptation_finished": "DriftdAdaptationFinished"}


class AlertmanagerOptions(HttpNotifierOptions):
    """Options of the ``alertmanager`` notifier (``url``: Alertmanager's base URL)."""

    severity: str = "warning"
    labels: dict[str, str] = Field(default_factory=dict, description="extra labels on every alert")
    resolve_after: float = Field(default=3600.0, description="the alert ends this long after the event")
    generator_url: str | None = Field(default=None, description="a link back (e.g. driftd's page or Grafana)")

    @field_validator("resolve_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class AlertmanagerNotifier(HttpNotifier):
    """Sends each event to Alertmanager as one alert."""

    type_name = "alertmanager"
    options_model = AlertmanagerOptions

    def endpoint(self) -> str:
        base = self.config.url.rstrip("/")
        return base if base.endswith("/api/v2/alerts") else f"{base}/api/v2/alerts"

    def body(self, event: Mapping[str, Any]) -> Any:
        config: AlertmanagerOptions = self.config  # type: ignore[assignment]
        starts = datetime.fromisoformat(str(event["created_at"]).replace("Z", "+00:00"))
        alert: dict[str, Any] = {
            "labels": {**config.labels, "alertname": ALERT_NAMES.get(str(event["type"]), "DriftdEvent"),
                       "monitor": str(event["monitor"]), "severity": config.severity},
            "annotations": {"summary": event_summary(event), "event_id": str(event["id"]),
                            "data": json.dumps(event.get("data"), sort_keys=True)},
            "startsAt": _rfc3339(starts),
            "endsAt": _rfc3339(starts + timedelta(seconds=config.resolve_after)),
        }
        if config.generator_url:
            alert["generatorURL"] = config.generator_url
        return [alert]


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@hookimpl
def driftd_notifiers() -> Mapping[str, type[Notifier]]:
    """Register the ``alertmanager`` notifier."""
    return {"alertmanager": AlertmanagerNotifier}
