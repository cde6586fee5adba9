"""The errors a monitor's tick reports, and their one-line causes."""

from __future__ import annotations

from monitor.adaptation.contract import AdapterError
from monitor.connector import ConnectorError
from monitor.notifier import NotifierError
from monitor.redact import safe_line


class MonitorError(Exception):
    """A monitor cannot run; the message names the monitor and the cause."""


class SourceDown(MonitorError):
    """The monitor's source could not be read this tick."""


def reason(error: BaseException | None) -> str:
    """A one-line cause: our own errors as they are, others with their type; URL passwords masked, cut short."""
    if error is None:
        return "unknown error"
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, (MonitorError, ConnectorError, AdapterError, NotifierError)):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    return safe_line(text, 500) or type(error).__name__
