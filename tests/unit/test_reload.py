"""Reloading the configuration (SIGHUP): monitors added, changed and removed; bad configs refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import build_config, load_config
from monitor.daemon import Daemon
from tests.helpers import sample_table, write_csv


def _monitor(name: str, folder: str, rows: int = 500) -> dict[str, Any]:
    return {"name": name, "source": {"type": "files", "options": {"path": folder}},
            "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": rows},
            "reference": {"first_rows": 1000}, "schedule": {"interval": "1h"}}


def _config(tmp_path: Path, *monitors: dict[str, Any]) -> dict[str, Any]:
    return {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
            "monitors": list(monitors)}


def test_reload_adds_replaces_and_removes_monitors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for folder in ("one", "two", "three"):
        write_csv(tmp_path / folder / "part.csv", sample_table(1500, seed=1))
    daemon = Daemon(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one")),
                                         _monitor("two", str(tmp_path / "two"))), "test", environ={}))
    daemon.prepare()
    daemon.start()
    try:
        kept = daemon.runners["one"]
        daemon.reload(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one")),
                                           _monitor("three", str(tmp_path / "three"), rows=250)), "test", environ={}))
        assert set(daemon.runners) == {"one", "three"}
        assert daemon.runners["one"] is kept, "an unchanged monitor keeps running as it was"
        assert "two" not in dict(daemon.metrics.snapshots())
        daemon.reload(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one"), rows=100),
                                           _monitor("three", str(tmp_path / "three"), rows=250)), "test", environ={}))
        assert daemon.runners["one"] is not kept and daemon.runners["one"].config.window.rows == 100
        for _ in range(3):  # the scheduler may already have run its first tick
            daemon.trigger("three")
        assert daemon.store.count_rows("three") == 500, "1,000 reference rows, then two windows of 250"
    finally:
        daemon.stop()


def test_sighup_reloads_and_a_bad_config_is_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "one" / "part.csv", sample_table(1500, seed=1))
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, _monitor("one", str(tmp_path / "one")))))
    log = tmp_path / "driftd.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DRIFTD_")}
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "-c", str(path)], cwd=tmp_path,
                                   stdout=output, stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        def wait_log(text: str) -> None:
            for _ in range(150):
                if text in log.read_text():
                    return
                time.sleep(0.1)
            pytest.fail(f"no {text!r} in the log:\n{log.read_text()}")

        wait_log("running 1 monitor(s)")
        path.write_text("monitors: [")
        process.send_signal(signal.SIGHUP)
        wait_log("reload refused, keeping the running configuration")
        config = _config(tmp_path, _monitor("one", str(tmp_path / "one")), _monitor("two", str(tmp_path / "one")))
        path.write_text(yaml.safe_dump(config))
        load_config(path)  # valid
        process.send_signal(signal.SIGHUP)
        wait_log("reloaded the configuration: 2 monitor(s) running")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
