"""The adaptation loop in one process: drift queues adapter runs in the same transaction as the event;
the service runs them, the gate decides, a winner becomes a new model version, and it all stays in SQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Mapping

import pytest
from click.testing import CliRunner

from monitor.adaptation import AdaptationContext, AdaptationResult, Adapter
from monitor.store.adaptations import AdaptationRecords
from monitor.daemon.adapting import AdaptationService
from monitor.cli import main
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.hookspecs import hookimpl
from monitor.plugins import PluginManager
from tests.adaptation_scenario import Scenario, build_scenario

pytest.importorskip("sklearn")


class Slow(Adapter):
    """Sleeps in small steps until cancelled (to test timeouts and shutdown)."""

    type_name = "slow"
    started = threading.Event()

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        Slow.started.set()
        for _ in range(600):
            ctx.check_cancelled()
            time.sleep(0.05)
        raise AssertionError("never cancelled")


class Broken(Adapter):
    """Raises inside adapt."""

    type_name = "broken"

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        raise ZeroDivisionError("a bug in a plugin")


class Keeper(Adapter):
    """Hands the event over (no model needed) and keeps a report in its artifacts folder."""

    type_name = "keeper"
    needs_model = False
    seen: dict[str, Path] = {}

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        assert ctx.artifacts is not None
        (ctx.workdir / "scratch.bin").write_bytes(b"temporary")
        report = ctx.artifacts / "report.json"
        report.write_text('{"rows": %d}' % ctx.target.rows)
        Keeper.seen.update(workdir=ctx.workdir, artifacts=ctx.artifacts)
        return AdaptationResult(remedy="external", assumption="none", artifact=str(report), reason="kept a report")


class RecordingPlugin:
    """Registers the test adapters and records the finished hook."""

    def __init__(self) -> None:
        self.finished: list[dict[str, Any]] = []

    @hookimpl
    def driftd_adapters(self) -> Mapping[str, type]:
        return {"slow": Slow, "broken": Broken, "keeper": Keeper}

    @hookimpl
    def driftd_adaptation_finished(self, monitor: str, adaptation: Mapping[str, Any]) -> None:
        self.finished.append({"monitor": monitor, **adaptation})


def _daemon(scenario: Scenario, adapters: list[Any], tmp_path: Path, **adaptation: Any) -> tuple[Daemon, RecordingPlugin]:
    raw = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
           "monitors": [scenario.monitor(adapters, **adaptation)]}
    plugins = PluginManager(environ={}, load_entry_points=False)
    plugin = RecordingPlugin()
    plugins.register(plugin, "test-adapters")
    daemon = Daemon(build_config(raw, "test", environ={}), plugins)
    daemon.prepare()
    return daemon, plugin


def _drift(daemon: Daemon, scenario: Scenario, labels: int = 0) -> None:
    """A quiet window, then shifted ones until the event is committed with its queued runs."""
    scenario.write_live("a.csv", shifted=False, rows=500)
    assert daemon.tick_all()["adapt"].state == "ok"
    scenario.write_live("b.csv", shifted=True, rows=1500, labels=labels)
    assert daemon.tick_all()["adapt"].state == "drift"


def _runs(daemon: Daemon) -> dict[str, Any]:
    return {run.adapter: run for run in daemon.store.adaptation_page(50, monitor="adapt").items}


def _metric(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


def test_drift_adapts_promotes_a_new_version_and_rolls_back(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    daemon, plugin = _daemon(scenario, ["importance_weighting", "feature_alignment", "label_shift", "rebaseline"],
                             tmp_path)
    try:
        _drift(daemon, scenario)
        queued = _runs(daemon)
        assert {run.state for run in queued.values()} == {"pending"}  # queued with the event, same transaction
        daemon.adaptation.run_pending("adapt")
        daemon.outbox.drain()  # the hooks hear of each run's end from the outbox
    finally:
        daemon.stop()
    runs = _runs(daemon)
    assert runs["feature_alignment"].state == "promoted", runs["feature_alignment"].reason
    assert runs["feature_alignment"].model_version == 2
    assert runs["feature_alignment"].metrics["scores"]["gain"] > 0.05
    assert runs["importance_weighting"].state in {"rejected", "succeeded"}
    assert runs["rebaseline"].state == "succeeded" and runs["rebaseline"].artifact == "reference:2"
    assert all(run.reason and run.finished_at for run in runs.values())
    assert all(run.replica == daemon.replica for run in runs.values())

    records = AdaptationRecords(daemon.store)
    versions = records.model_versions("adapt")
    assert [(v.version, v.active) for v in versions] == [(1, False), (2, True)]
    folder = Path(versions[1].path)
    assert (folder / "manifest.json").is_file() and (folder / "model.pkl").is_file()
    assert (scenario.directory / "models" / "adapt" / "current").resolve() == folder
    assert Path(scenario.model_path).is_file()  # the configured model is never overwritten

    # the promoted version, loaded back as the daemon would, is better on the target than the original
    service = AdaptationService(daemon.store, daemon.plugins, daemon.metrics, "check")
    config = daemon.config.monitors[0].model
    truth = scenario.task.target_labels[:1500]
    rows = scenario.task.target.features[:1500]
    before = (service.models.load(versions[0].path, config).predict(rows) == truth).mean()
    after = (service.models.load(versions[1].path, config).predict(rows) == truth).mean()
    assert after > before + 0.1

    assert _metric(daemon, "driftd_adaptations_total", monitor="adapt", adapter="feature_alignment",
                   outcome="promoted") == 1
    assert _metric(daemon, "driftd_model_version", monitor="adapt") == 2
    assert _metric(daemon, "driftd_adaptation_duration_seconds_count", monitor="adapt",
                   adapter="feature_alignment") == 1
    assert {(f["adapter"], f["state"]) for f in plugin.finished} == {(name, run.state) for name, run in runs.items()}

    url = daemon.config.storage.url
    config_path = tmp_path / "driftd.yaml"
    import yaml
    config_path.write_text(yaml.safe_dump({"storage": {"url": url}, "monitors": [scenario.monitor(["label_shift"])]}))
    result = CliRunner().invoke(main, ["adaptations", "rollback", "adapt", "-c", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "model version 1 is active again (was 2)" in result.output
    assert [(v.version, v.active) for v in records.model_versions("adapt")] == [(1, True), (2, False)]
    assert records.run(runs["feature_alignment"].id).state == "rolled_back"
    assert (scenario.directory / "models" / "adapt" / "current").resolve() == Path(scenario.model_path).resolve()
    listing = CliRunner().invoke(main, ["adaptations", "-c", str(config_path), "--monitor", "adapt"])
    assert "rolled_back" in listing.output and "feature_alignment" in listing.output
    again = CliRunner().invoke(main, ["adaptations", "rollback", "adapt", "-c", str(config_path)])
    assert again.exit_code != 0 and "cannot roll back" in again.output


def test_an_adapter_without_a_model_keeps_its_artifacts_and_its_workdir_is_temporary(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    daemon, _ = _daemon(scenario, ["keeper", "feature_alignment"], tmp_path,
                        artifacts=str(tmp_path / "artifacts"))
    try:
        _drift(daemon, scenario)
        daemon.adaptation.run_pending("adapt")
    finally:
        daemon.stop()
    runs = _runs(daemon)
    keeper = runs["keeper"]
    assert keeper.state == "succeeded", keeper.reason
    # in a folder of its own run under adaptation.artifacts, which outlives the run
    assert Keeper.seen["artifacts"] == tmp_path / "artifacts" / "adapt" / f"adaptation-{keeper.id}"
    assert keeper.artifact == str(Keeper.seen["artifacts"] / "report.json")
    assert Path(keeper.artifact).read_text().startswith('{"rows": ')
    assert not Keeper.seen["workdir"].exists()  # the workdir is gone with the run
    assert runs["feature_alignment"].state in {"promoted", "rejected", "succeeded"}


def test_a_failing_or_slow_adapter_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    adapters = [{"type": "broken"}, {"type": "slow", "timeout": "1s"}, "feature_alignment"]
    daemon, _ = _daemon(scenario, adapters, tmp_path)
    try:
        _drift(daemon, scenario)
        daemon.adaptation.run_pending("adapt")
    finally:
        daemon.stop()
    runs = _runs(daemon)
    assert runs["broken"].state == "failed"
    assert "ZeroDivisionError: a bug in a plugin" in runs["broken"].reason
    assert runs["slow"].state == "failed" and "timed out after 1s" in runs["slow"].reason
    assert runs["feature_alignment"].state == "promoted"
    assert _metric(daemon, "driftd_adaptations_total", monitor="adapt", adapter="slow", outcome="failed") == 1


def test_a_run_interrupted_by_a_stop_is_failed_with_the_reason_at_the_next_start(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    daemon, _ = _daemon(scenario, [{"type": "slow", "timeout": "1h"}], tmp_path)
    _drift(daemon, scenario)
    Slow.started.clear()
    worker = threading.Thread(target=daemon.adaptation.run_pending, args=("adapt",))
    worker.start()
    assert Slow.started.wait(30)
    assert _runs(daemon)["slow"].state == "running"
    daemon.stop()  # cancels the run: it records why
    worker.join(30)
    assert _runs(daemon)["slow"].state == "failed"
    assert "driftd is stopping" in _runs(daemon)["slow"].reason

    # a process killed outright leaves "running" behind: the next start explains it
    records = AdaptationRecords(daemon.store)
    event_id = records.latest_event_id("adapt")
    [run_id] = records.queue("adapt", event_id, [("slow", "slow")])
    records.start(run_id, "host:123:gone")
    restarted, plugin = _daemon(scenario, [{"type": "slow", "timeout": "1h"}], tmp_path)
    restarted.outbox.drain()
    restarted.stop()
    run = records.run(run_id)
    assert run.state == "failed" and "interrupted" in run.reason and "host:123:gone" in run.reason
    # the restarted daemon's hooks hear of both ends from the outbox: the run cancelled at the stop (its event
    # was committed as the process stopped, not delivered yet) and the one a killed process left behind
    assert sorted((f["id"], f["state"]) for f in plugin.finished) == [(run_id - 1, "failed"), (run_id, "failed")]


def test_cooldown_holds_drift_runs_an_operator_request_does_not_wait_and_newer_events_supersede(
        tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    daemon, _ = _daemon(scenario, ["label_shift"], tmp_path, cooldown="1h")
    records = AdaptationRecords(daemon.store)
    try:
        _drift(daemon, scenario)
        daemon.adaptation.run_pending("adapt")
        daemon.adaptation.start()  # as `driftd run` does: from now on drift starts runs by itself
        first_event = records.latest_event_id("adapt")
        older = _queue_like_drift(daemon, first_event)
        newer_event = _second_event(daemon, first_event)
        held = _queue_like_drift(daemon, newer_event)
        daemon.adaptation.notify("adapt")  # inside the cooldown: nothing starts
        time.sleep(0.5)
        assert records.run(held).state == records.run(older).state == "pending"

        [requested] = records.queue("adapt", newer_event, [("label_shift", "label_shift")])  # an operator asks
        daemon.adaptation.notify("adapt")
        _wait(lambda: records.run(requested).state not in {"pending", "running"})
    finally:
        daemon.stop()
    superseded = records.run(older)
    assert superseded.state == "failed" and superseded.reason == f"superseded by the later drift event {newer_event}"
    for run_id in (held, requested):
        assert records.run(run_id).state in {"promoted", "rejected", "succeeded"}


def _queue_like_drift(daemon: Daemon, event_id: int) -> int:
    """A pending run as a drift event queues it (not an operator's request)."""
    from monitor.store.schema import Adaptation

    with daemon.store._session() as session, session.begin():
        run = Adaptation(event_id=event_id, adapter="label_shift", adapter_type="label_shift", state="pending")
        session.add(run)
        session.flush()
        return run.id


def _second_event(daemon: Daemon, like: int) -> int:
    """Another drift event of the monitor (as a later episode would leave), with the same rows."""
    from monitor.store.schema import DriftEvent

    with daemon.store._session() as session, session.begin():
        old = session.get(DriftEvent, like)
        event = DriftEvent(monitor_id=old.monitor_id, window_id=old.window_id, drift_share=old.drift_share,
                           features=old.features, target_sample=old.target_sample)
        session.add(event)
        session.flush()
        return event.id


def _wait(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_bad_adaptation_config_names_the_monitor_and_the_adapter(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    for adapters, expected in (
        (["no_such_adapter"], "unknown adapter type 'no_such_adapter'"),
        ([{"type": "importance_weighting", "options": {"method": "magic"}}], "adapter 'importance_weighting'"),
    ):
        raw = {"storage": {"url": f"sqlite:///{tmp_path / 'bad.db'}"}, "server": {"enabled": False},
               "monitors": [scenario.monitor(adapters)]}
        daemon = Daemon(build_config(raw, "test", environ={}), PluginManager(environ={}, load_entry_points=False))
        daemon.prepare()
        daemon.stop()
        assert "adapt" in daemon.broken and expected in daemon.broken["adapt"]
        assert daemon.broken["adapt"].startswith("monitor 'adapt': adaptation")


def test_the_python_api_decides_as_the_daemon_did_and_keep_rejected_keeps_the_losers(tmp_path: Path) -> None:
    from monitor.adaptation import adapt
    from monitor.daemon.adaptation_run import table_domain
    from monitor.domain.reference import read_table, table_from_bytes
    from plugins.adapters.feature_alignment import FeatureAlignment
    from plugins.adapters.importance_weighting import ImportanceWeighting
    from plugins.adapters.label_shift import LabelShift

    scenario = build_scenario(tmp_path / "data", "affine")
    daemon, _ = _daemon(scenario, ["importance_weighting", "feature_alignment", "label_shift"], tmp_path,
                        keep_rejected=True)
    try:
        _drift(daemon, scenario, labels=100)
        event = AdaptationRecords(daemon.store).next_event("adapt")
        assert event is not None and event.target_sample
        daemon.adaptation.run_pending("adapt")
        champion = AdaptationService(daemon.store, daemon.plugins, daemon.metrics, "check").models.load(
            str(scenario.model_path), daemon.config.monitors[0].model)
    finally:
        daemon.stop()
    runs = _runs(daemon)
    features = list(scenario.features)
    source = table_domain(read_table(str(scenario.training_path)), features, "label", champion, "training data")
    target = table_domain(table_from_bytes(event.target_sample), features, "label", champion, "target rows")
    assert target.labelled_rows == 100
    decision = adapt(champion, source, target, [ImportanceWeighting({}), FeatureAlignment({}), LabelShift({})])
    assert decision.winner == "feature_alignment" and runs["feature_alignment"].state == "promoted"
    for challenger in decision.challengers:
        recorded = runs[challenger.name].metrics["scores"]
        assert challenger.scores == pytest.approx(recorded), challenger.name
        assert "label_check" in recorded or not challenger.passed  # the held-out labels checked every pass
    store = scenario.directory / "models" / "adapt"
    for name in ("importance_weighting", "label_shift"):
        assert runs[name].state in {"rejected", "succeeded"}
        kept = Path(runs[name].artifact)
        assert kept == (store / f"rejected-{runs[name].id}").resolve()
        assert (kept / "manifest.json").is_file()
    assert not (store / f"rejected-{runs['feature_alignment'].id}").exists()
