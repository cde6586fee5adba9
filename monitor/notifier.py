"""The notifier contract: what a notification plugin gives driftd.

A notifier is built from its configured ``options`` and has ``notify(event)``. driftd calls it
from the outbox after the transaction that produced the event committed, at least once: a
notifier that raises is called again later (capped backoff), and after a crash an event may come
twice. ``event["id"]`` is the same on every attempt: send it along (webhooks: the
``Idempotency-Key`` and ``X-Driftd-Event-Id`` headers) so the receiver can drop duplicates.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.connector import describe_options_error

ModelT = TypeVar("ModelT", bound=BaseModel)

#: The event kinds a notifier can subscribe to.
NOTIFIER_EVENTS = ("drift_detected", "window_evaluated", "adaptation_finished")


class NotifierError(Exception):
    """A notification could not be delivered now (it is retried)."""


class NotifierOptionsError(NotifierError):
    """A notifier was given options it cannot work with."""


class Notifier:
    """Base class for notifiers: built from ``options``; ``notify`` delivers one event.

    ``event`` is a mapping: ``id`` (stable across retries), ``type`` (``drift_detected``,
    ``window_evaluated`` or ``adaptation_finished``), ``monitor``, ``created_at`` (ISO 8601 UTC),
    ``attempt`` (1 on the first try) and ``data`` (what the matching plugin hook receives).
    """

    #: The type name users write in a notifier's ``type``.
    type_name: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def notify(self, event: Mapping[str, Any]) -> None:
        """Deliver ``event``; raise (NotifierError) when it could not be, so it is tried again."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the notifier is not used afterwards."""


def parse_notifier_options(model: type[ModelT], options: Mapping[str, Any], type_name: str) -> ModelT:
    """Validate notifier options with a pydantic model; NotifierOptionsError names each bad option
    (never quoting a text value: it may be a secret)."""
    try:
        return model.model_validate(options)
    except ValidationError as error:
        raise NotifierOptionsError(f"{type_name} notifier: "
                                   + describe_options_error(model, error, hide_text=True)) from None


def event_summary(event: Mapping[str, Any]) -> str:
    """One line a person reads: what happened to which monitor."""
    data, monitor = event.get("data") or {}, event.get("monitor")
    kind = event.get("type")
    if kind == "drift_detected":
        features = ", ".join(data.get("features") or []) or "none listed"
        return (f"driftd: DRIFT on monitor {monitor} in window {data.get('window_seq')} "
                f"({_percent(data.get('drift_share'))} of features: {features})")
    if kind == "window_evaluated":
        return (f"driftd: monitor {monitor} window {data.get('seq')}: {data.get('state')} "
                f"({_percent(data.get('drift_share'))} of features drifted, {data.get('rows')} rows)")
    if kind == "adaptation_finished":
        return (f"driftd: monitor {monitor} adaptation {data.get('id')} ({data.get('adapter')}) "
                f"{data.get('state')}: {data.get('reason') or ''}".rstrip(": "))
    return f"driftd: monitor {monitor}: {kind}"


def event_changes(event: Mapping[str, Any]) -> list[str]:
    """What changed, one line each: the event's shift diagnoses, then its drifted segments (none: empty)."""
    data = event.get("data") or {}
    lines = [str(d.get("sentence")) for d in data.get("diagnoses") or [] if isinstance(d, Mapping)]
    segments = data.get("drifted_segments") or []
    return lines + ([f"segments drifted: {', '.join(map(str, segments))}"] if segments else [])


def _percent(share: Any) -> str:
    return f"{100 * share:.0f}%" if isinstance(share, (int, float)) else "?"
