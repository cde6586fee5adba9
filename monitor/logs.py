"""Logging set-up: plain text for people, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Literal

from monitor.redact import mask_urls

LogFormat = Literal["text", "json"]


class TextFormatter(logging.Formatter):
    """Plain text lines; a password in any URL of a message or traceback is masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and any exception.

    A password in any URL of the message or the exception is masked.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_urls(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask_urls(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, log_format: LogFormat = "text") -> None:
    """Configure the root logger; quiet the chatty libraries."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
