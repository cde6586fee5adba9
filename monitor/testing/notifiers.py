"""The notifier kit: a sample event as driftd hands it over, and the bad-options check."""

from __future__ import annotations

from typing import Any, Iterable, Mapping


from monitor.notifier import Notifier, NotifierError


def sample_event(kind: str = "drift_detected", event_id: str = "00000000-0000-4000-8000-000000000001",
                 attempt: int = 1) -> dict[str, Any]:
    """An event as driftd hands it to ``Notifier.notify`` (``data`` as the matching hook receives it)."""
    data = {"drift_detected": {"id": 7, "window_seq": 3, "drift_share": 0.5, "features": ["a"], "event_uid": event_id},
            "window_evaluated": {"seq": 3, "rows": 100, "state": "drift", "drift_share": 0.5,
                                 "drifted_features": ["a"], "missing_features": [], "results": [],
                                 "event_uid": event_id},
            "adaptation_finished": {"id": 2, "event_id": 7, "adapter": "label_shift", "state": "promoted",
                                    "reason": "passed the gate", "metrics": None, "artifact": None,
                                    "model_version": 2, "event_uid": event_id}}[kind]
    return {"id": event_id, "type": kind, "monitor": "m", "created_at": "2026-01-31T12:00:00Z",
            "attempt": attempt, "data": data}


def check_notifier_bad_options(notifier_class: type[Notifier],
                               bad_options: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Assert each ``(option, options)`` pair is refused when the notifier is built, by a NotifierError
    naming ``option`` (the configuration check reports it with the notifier's name)."""
    for option, options in bad_options:
        try:
            notifier = notifier_class(options)
        except NotifierError as error:
            assert option in str(error), f"{options!r}: the error does not name option {option!r}: {error}"
        except Exception as error:  # noqa: BLE001 - any other failure breaks the contract
            raise AssertionError(
                f"{options!r}: expected NotifierError naming {option!r}, got {type(error).__name__}: {error}"
            ) from error
        else:
            notifier.close()
            raise AssertionError(f"{options!r}: accepted, expected NotifierError naming {option!r}")
