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


def test_a_reload_that_cannot_build_a_monitor_changes_nothing(tmp_path: Path) -> None:
    from monitor.daemon import ReloadRefused

    write_csv(tmp_path / "one" / "part.csv", sample_table(1500, seed=1))
    daemon = Daemon(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one"))), "test", environ={}))
    daemon.prepare()
    daemon.start()
    try:
        kept, before = daemon.runners["one"], daemon.config
        bad = {**_monitor("bad", str(tmp_path / "one")), "source": {"type": "no-such-connector"}}
        with pytest.raises(ReloadRefused, match="monitor 'bad'.*no-such-connector"):
            daemon.reload(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one"), rows=100), bad),
                                       "test", environ={}))
        assert daemon.runners == {"one": kept} and daemon.config is before, "the running configuration is kept"
        assert kept.config.window.rows == 500 and "bad" not in dict(daemon.metrics.snapshots())
        assert daemon.scheduler is not None and daemon.scheduler.running
    finally:
        daemon.stop()


LAUGHS = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]) + "\n"


def test_sighup_with_any_bad_file_keeps_the_running_daemon_and_its_configuration(tmp_path: Path) -> None:
    import httpx

    from tests.e2e.conftest import free_port

    write_csv(tmp_path / "one" / "part.csv", sample_table(1500, seed=1))
    port = free_port()
    good = {**_config(tmp_path, _monitor("one", str(tmp_path / "one"))), "server": {"port": port}}
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(good))
    log = tmp_path / "driftd.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DRIFTD_")}
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "-c", str(path)], cwd=tmp_path,
                                   stdout=output, stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})

    def refusals() -> int:
        return log.read_text().count("reload refused, keeping the running configuration")

    def wait(condition: Any, what: str) -> None:
        for _ in range(200):
            if condition():
                return
            assert process.poll() is None, f"driftd died ({what}):\n{log.read_text()}"
            time.sleep(0.1)
        pytest.fail(f"{what}:\n{log.read_text()}")

    changed_one = _monitor("one", str(tmp_path / "one"), rows=100)
    bad_files = [
        yaml.safe_dump({**good, "monitors": [{**_monitor("one", str(tmp_path / "one")),
                                              "schedule": {"interval": float("inf")}}]}),  # validation
        LAUGHS,  # unbounded alias expansion
        yaml.safe_dump({**good, "monitors": [changed_one, {**_monitor("two", str(tmp_path / "one")),  # building
                                                           "source": {"type": "no-such-connector"}}]}),
        yaml.safe_dump({**good, "monitors": [changed_one, {**_monitor("three", str(tmp_path / "one")),  # a plugin
                                                           "source": {"type": "sql", "options": {"url": "nope"}}}]}),
    ]
    try:
        wait(lambda: "running 1 monitor(s)" in log.read_text(), "the daemon did not start")
        for count, text in enumerate(bad_files, start=1):
            path.write_text(text)
            process.send_signal(signal.SIGHUP)
            wait(lambda: refusals() == count, f"reload {count} was not refused")
        monitors = httpx.get(f"http://127.0.0.1:{port}/api/v1/monitors", timeout=10).json()["monitors"]
        assert [(m["name"], m["running"], m["config"]["window"]["rows"]) for m in monitors] == [("one", True, 500)]
        lines = [line for line in log.read_text().splitlines() if "reload refused" in line]
        assert len(lines) == 4 and all(len(line) < 1200 for line in lines), lines
        assert "Traceback" not in log.read_text()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0 and time.monotonic() - started < 15
    finally:
        if process.poll() is None:
            process.kill()


def test_a_replaced_monitor_keeps_exporting_its_lease(tmp_path: Path) -> None:
    write_csv(tmp_path / "one" / "part.csv", sample_table(1500, seed=1))
    daemon = Daemon(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one"))), "test", environ={}))
    daemon.prepare()
    try:
        daemon.reload(build_config(_config(tmp_path, _monitor("one", str(tmp_path / "one"), rows=100)), "test",
                                   environ={}))
        assert daemon.metrics.registry.get_sample_value("driftd_lease_held", {"monitor": "one"}) == 1.0, "SQLite: this process evaluates it"
        assert dict(daemon.metrics.snapshots())["one"].error is None
    finally:
        daemon.stop()
