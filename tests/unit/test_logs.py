"""Log output: JSON lines on request."""

from __future__ import annotations

import json
import logging

import pytest

from monitor.logs import JsonFormatter


def test_json_formatter_writes_one_parseable_object_per_record() -> None:
    record = logging.LogRecord("driftd.engine", logging.WARNING, __file__, 1, "monitor %s: DRIFT in window %d",
                               ("m", 5), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "driftd.engine"
    assert entry["message"] == "monitor m: DRIFT in window 5" and entry["time"].endswith("+00:00")


def test_json_formatter_keeps_the_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("driftd", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_readiness_needs_a_current_schema(sqlite_url: str, tmp_path: pytest.TempPathFactory) -> None:
    from monitor.config import build_config
    from monitor.daemon import Daemon
    from monitor.store.migrate import upgrade

    daemon = Daemon(build_config({"storage": {"url": sqlite_url}}, "test", environ={}))
    assert "database schema is not current: run `driftd db upgrade`" in daemon.readiness()
    upgrade(daemon.store.engine)
    assert daemon.readiness() == ["scheduler not running"]
