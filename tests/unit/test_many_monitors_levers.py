"""Many monitors on one machine: first runs spread over the interval, the summary budget shared by workers."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from monitor.cli.workers import Supervisor, worker_config
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.daemon.engine import MonitorRunner
from monitor.daemon.scheduler import STAGGER_STEP, stagger
from monitor.domain import diagnosis
from monitor.metrics import series
from monitor.store.schema import Result, Window
from tests.helpers import make_runner, monitor_config, sample_table, write_csv


def _config(tmp_path: Path, monitors: int, interval: str = "1m", **storage: Any) -> dict[str, Any]:
    return {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}", **storage},
            "server": {"enabled": False, "port": 9000},
            "monitors": [{"name": f"m{i}", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}},
                          "features": {"numeric": ["a", "b"]}, "window": {"rows": 500},
                          "reference": {"first_rows": 1000}, "schedule": {"interval": interval}}
                         for i in range(monitors)]}


def test_first_runs_are_spread_at_most_one_step_apart_and_within_the_interval() -> None:
    assert stagger([60.0]) == [0.0], "a single monitor starts at once"
    few = stagger([60.0] * 3)
    assert few == [0.0, STAGGER_STEP, 2 * STAGGER_STEP]
    many = stagger([60.0] * 1000)
    gaps = {round(b - a, 9) for a, b in zip(many, many[1:])}
    assert gaps == {0.06} and many[-1] < 60.0, "1,000 monitors of a minute: one every 60 ms, across the minute"


def test_the_daemon_schedules_the_first_runs_spread(tmp_path: Path) -> None:
    write_csv(tmp_path / "data" / "part.csv", sample_table(1500, seed=1))
    daemon = Daemon(build_config(_config(tmp_path, 4), "test", environ={}))
    daemon.prepare()
    daemon.start()
    try:
        assert daemon.scheduler is not None
        jobs = {job.id: job.next_run_time for job in daemon.scheduler._scheduler.get_jobs()}
        soonest = min(jobs.values())  # a first run that happened already is due again one interval later
        firsts = sorted(t - timedelta(minutes=1) if (t - soonest).total_seconds() > 30 else t for t in jobs.values())
        gaps = [(b - a).total_seconds() for a, b in zip(firsts, firsts[1:])]
        assert len(jobs) == 4 and all(abs(gap - STAGGER_STEP) < 0.05 for gap in gaps), gaps
    finally:
        daemon.stop()


def test_each_worker_gets_its_share_of_the_summary_budget_and_its_port(tmp_path: Path) -> None:
    config = build_config(_config(tmp_path, 1, reference_cache_mib=512), "test", environ={})
    alone = worker_config(config, 0)
    assert alone.storage.reference_cache_mib == 512 and alone.server.port == 9000
    second = worker_config(config, 1, 2)
    assert second.storage.reference_cache_mib == 256 and second.server.port == 9001
    assert worker_config(config, 2, 3).storage.reference_cache_mib == 170
    assert config.storage.reference_cache_mib == 512, "the loaded configuration is not changed"


def test_the_supervisor_tells_each_worker_how_many_there_are(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "driftd.yaml", 3, "text")
    for index, worker in enumerate(supervisor.workers):
        assert worker.command[:3] == [sys.executable, "-m", "monitor.cli"]
        assert worker.command[-4:] == ["--worker-index", str(index), "--worker-of", "3"]


def _stored_results(runner: MonitorRunner) -> list[tuple[object, ...]]:
    with runner.store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(Window.seq, Result.feature, Result.measure, Result.value, Result.p_value, Result.p_value_adjusted,
                   Result.threshold, Result.drifted).join(Window, Window.id == Result.window_id)
            .order_by(Result.id)).all()]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_ticks_results_are_stored_as_evaluated_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          request: pytest.FixtureRequest, database: str) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(1500, seed=1))
    write_csv(tmp_path / "data" / "part-2.csv", sample_table(1000, seed=2, shift=0.4, start_id=1500))
    url = f"sqlite:///{tmp_path / 'd.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    runner = make_runner(monitor_config(max_rows=5000), url)
    windows = [window for _ in range(3) for window in runner.tick().windows]  # the reference, then windows
    evaluated = [(window.seq, r.feature, r.measure, r.value, r.p_value, r.p_value_adjusted, r.threshold, r.drifted)
                 for window in windows for r in window.results]
    assert len(windows) == 3 and _stored_results(runner) == evaluated, "every field, to the bit, in order"
    assert any(r[5] is not None and r[5] != r[4] for r in evaluated), "adjusted p-values differ from the raw ones"
    runner.store.close()


def test_the_first_scrape_after_a_start_formats_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_csv(tmp_path / "data" / "part.csv", sample_table(1500, seed=1))
    daemon = Daemon(build_config(_config(tmp_path, 5), "test", environ={}))
    daemon.prepare()  # each monitor's new series are formatted as it is built
    try:
        expected = generate_latest(daemon.metrics.registry)

        def refuse(*_: object) -> None:
            raise AssertionError("formatted in the scrape")

        monkeypatch.setattr(series, "_format", refuse)
        monkeypatch.setattr(daemon.metrics, "_drift_samples", refuse)
        assert daemon.metrics.exposition() == expected
    finally:
        daemon.stop()


def test_a_ticks_diagnosis_reuses_the_evaluations_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(1000, seed=1))
    write_csv(tmp_path / "data" / "part-2.csv", sample_table(1000, seed=2, shift=1.0, start_id=1000))
    read_again: list[str] = []
    original = diagnosis._numeric
    monkeypatch.setattr(diagnosis, "_numeric", lambda column: read_again.append("numeric") or original(column))
    runner = make_runner(monitor_config(max_rows=5000), f"sqlite:///{tmp_path / 'd.db'}")
    windows = [window for _ in range(2) for window in runner.tick().windows]
    assert len(windows) == 2 and any(window.diagnoses for window in windows), "the shift of a is diagnosed"
    assert read_again == [], "no numeric column converted a second time for the diagnosis"
    runner.store.close()
