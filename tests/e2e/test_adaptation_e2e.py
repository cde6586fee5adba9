"""The real daemon adapts: drift on a files source queues the adapters, the gate's decision, scores and
artifact land in SQL, the API and the metrics; killing the daemon mid-adaptation leaves a clean record."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.adaptation_scenario import build_scenario
from tests.e2e.conftest import Driftd, query, run_cli, wait_for, write_config

pytest.importorskip("sklearn")

SLEEPER = [sys.executable, "-c", "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _state(db: Path, adapter: str) -> str | None:
    rows = query(db, "SELECT state FROM adaptations WHERE adapter = ? ORDER BY id DESC", adapter)
    return rows[0][0] if rows else None


def test_drift_adapts_and_a_kill_mid_adaptation_is_explained_after_restart(
        tmp_path: Path, driftd_process: Callable[..., Driftd]) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    monitor = scenario.monitor(["feature_alignment", "label_shift",
                                {"type": "command", "name": "retrain", "timeout": "10m",
                                 "options": {"argv": [*SLEEPER, str(tmp_path / "retrain.pid")]}}])
    monitor["schedule"] = {"interval": "1s"}
    db = tmp_path / "driftd.db"
    daemon = driftd_process(["--config", "driftd.yaml"])
    write_config(tmp_path / "driftd.yaml", daemon.port, [monitor], db=db)
    daemon.start()
    daemon.wait_http()
    scenario.write_live("a.csv", shifted=False, rows=500)
    wait_for(lambda: query(db, "SELECT count(*) FROM windows")[0][0] >= 1, 30, process=daemon)
    scenario.write_live("b.csv", shifted=True, rows=1500)
    wait_for(lambda: _state(db, "retrain") == "running", 90, message="the command adapter running", process=daemon)

    # the gate already decided for the adapters that ran before the command
    [(state, reason, metrics, artifact, version)] = query(
        db, "SELECT state, reason, metrics, artifact, model_version FROM adaptations WHERE adapter = 'feature_alignment'")
    assert state == "promoted" and version == 2, reason
    scores = json.loads(metrics)["scores"]
    assert scores["gain"] > scores["noise"] > 0
    assert Path(artifact, "manifest.json").is_file()
    body = daemon.get("/metrics").text
    assert 'driftd_adaptations_total{adapter="feature_alignment",monitor="adapt",outcome="promoted"} 1.0' in body
    assert 'driftd_model_version{monitor="adapt"} 2.0' in body
    assert 'driftd_adaptation_running{monitor="adapt"} 1.0' in body

    wait_for(lambda: (tmp_path / "retrain.pid").exists(), 10, process=daemon)
    pid = int((tmp_path / "retrain.pid").read_text())
    daemon.kill()  # SIGKILL: no chance to record anything
    assert _state(db, "retrain") == "running"
    wait_for(lambda: not _alive(pid), 10, message="the retrain command to die with driftd")
    daemon.start()
    daemon.wait_http()
    wait_for(lambda: _state(db, "retrain") == "failed", 30, message="the interrupted run marked failed", process=daemon)
    [(reason,)] = query(db, "SELECT reason FROM adaptations WHERE adapter = 'retrain'")
    assert reason.startswith("interrupted: the driftd process running it") and "it was not resumed" in reason
    runs = {run["adapter"]: run for run in daemon.get("/api/v1/adaptations?monitor=adapt").json()["items"]}
    assert runs["retrain"]["state"] == "failed" and runs["feature_alignment"]["state"] == "promoted"
    assert all(run["state"] not in {"pending", "running"} for run in runs.values())
    versions = daemon.get("/api/v1/monitors/adapt/models").json()["items"]
    assert [(v["version"], v["active"]) for v in versions] == [(1, False), (2, True)]
    wait_for(lambda: 'driftd_model_version{monitor="adapt"} 2.0' in daemon.get("/metrics").text, 15, process=daemon)
    assert daemon.terminate() == 0


def test_force_runs_the_adapters_through_the_running_daemon_without_a_drift_event(
        tmp_path: Path, driftd_process: Callable[..., Driftd]) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    monitor = scenario.monitor(["feature_alignment", "label_shift"])
    monitor["schedule"] = {"interval": "1s"}
    db = tmp_path / "driftd.db"
    daemon = driftd_process(["--config", "driftd.yaml"])
    write_config(tmp_path / "driftd.yaml", daemon.port, [monitor], db=db)

    stopped = run_cli(["adaptations", "run", "adapt", "--force", "--config", "driftd.yaml"], tmp_path)
    assert stopped.returncode == 1  # nobody evaluates the monitor: said so, the request kept
    assert "no running driftd daemon evaluates it" in stopped.stderr, stopped.stderr

    daemon.start()
    daemon.wait_http()
    scenario.write_live("a.csv", shifted=False, rows=1000)  # no drift: the kept request runs on these rows
    wait_for(lambda: query(db, "SELECT count(*) FROM adaptations WHERE state NOT IN ('pending', 'running')")[0][0]
             == 2, 90, message="the requested runs finished", process=daemon)
    assert query(db, "SELECT forced FROM drift_events") == [(1,)]
    again = run_cli(["adaptations", "run", "adapt", "--force", "--config", "driftd.yaml"], tmp_path)
    assert again.returncode == 0 and "requested; the daemon evaluating it queues" in again.stdout, again.stderr
    wait_for(lambda: query(db, "SELECT count(*) FROM adaptations WHERE state NOT IN ('pending', 'running')")[0][0]
             == 4, 90, message="the second request's runs finished", process=daemon)
    assert query(db, "SELECT forced, count(*) FROM drift_events GROUP BY forced") == [(1, 2)]
    runs = daemon.get("/api/v1/adaptations?monitor=adapt").json()["items"]
    assert {run["state"] for run in runs} <= {"rejected", "succeeded"}  # unshifted rows: nothing to promote
    assert daemon.get("/api/v1/monitors/adapt/events").json()["items"] == []  # not drift
    assert 'driftd_drift_events_total{monitor="adapt"} 0.0' in daemon.get("/metrics").text
    assert daemon.terminate() == 0
