"""The ``jsonl_file`` notifier: appends each event to a JSON-lines file, once per event id.

driftd delivers events at least once: after a crash between a delivery and its record, the same
event comes again with the same ``event["id"]``. This notifier shows how a receiver drops such a
duplicate: it remembers the ids it wrote (read back from the file when it starts).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field

from monitor.plugin import Notifier, NotifierError, parse_notifier_options


class JsonLinesOptions(BaseModel):
    """Options of the ``jsonl_file`` notifier."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="the file events are appended to")


class JsonLinesNotifier(Notifier):
    """Appends ``{"id", "type", "monitor", "created_at", "data"}`` per event; a repeated id is skipped."""

    type_name = "jsonl_file"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.path = Path(parse_notifier_options(JsonLinesOptions, self.options, self.type_name).path)
        self.seen: set[str] = set()
        if self.path.exists():
            self.seen = {json.loads(line)["id"] for line in self.path.read_text(encoding="utf-8").splitlines() if line}

    def notify(self, event: Mapping[str, Any]) -> None:
        """Append the event unless its id was written before; NotifierError when the file cannot be written."""
        if event["id"] in self.seen:
            return
        line = json.dumps({key: event[key] for key in ("id", "type", "monitor", "created_at", "data")},
                          sort_keys=True) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise NotifierError(f"jsonl_file: cannot write {self.path}: {error.strerror}") from None
        self.seen.add(event["id"])
