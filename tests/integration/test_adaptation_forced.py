"""``driftd adaptations run MONITOR --force``: an operator's request becomes, in the tick of the process holding
the monitor, a forced event with the latest rows and pending runs; it is not drift (not counted, listed or sent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from monitor.cli import main
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.hookspecs import hookimpl
from monitor.plugins import PluginManager
from monitor.store.adaptations import AdaptationRecords
from monitor.store.schema import DriftEvent, OutboxMessage
from tests.adaptation_scenario import Scenario, build_scenario

pytest.importorskip("sklearn")


def _raw(scenario: Scenario, tmp_path: Path) -> dict[str, Any]:
    return {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
            "monitors": [scenario.monitor(["feature_alignment", "label_shift"])]}


class Listener:
    """Hears windows and drift events (so that both have a destination in the outbox)."""

    @hookimpl
    def driftd_window_evaluated(self, monitor: str, window: Any) -> None:
        pass

    @hookimpl
    def driftd_drift_detected(self, monitor: str, event: Any) -> None:
        pass


def _daemon(raw: dict[str, Any]) -> Daemon:
    plugins = PluginManager(environ={}, load_entry_points=False)
    plugins.register(Listener(), "listener")
    daemon = Daemon(build_config(raw, "test", environ={}), plugins)
    daemon.prepare()
    return daemon


def _force(raw: dict[str, Any], tmp_path: Path) -> Any:
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(raw))
    return CliRunner().invoke(main, ["adaptations", "run", "adapt", "--force", "-c", str(path)])


def _events(daemon: Daemon) -> list[tuple[int, bool]]:
    with daemon.store._session() as session:
        return [(event.id, event.forced) for event in session.scalars(select(DriftEvent).order_by(DriftEvent.id))]


def _outbox_kinds(daemon: Daemon) -> set[str]:
    with daemon.store._session() as session:
        return set(session.scalars(select(OutboxMessage.kind)))


def test_force_runs_the_adapters_on_the_latest_rows_without_drift_and_is_not_counted_as_drift(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    raw = _raw(scenario, tmp_path)
    daemon = _daemon(raw)
    records = AdaptationRecords(daemon.store)
    try:
        scenario.write_live("a.csv", shifted=False, rows=1000)
        assert daemon.tick_all()["adapt"].state == "ok"
        assert _events(daemon) == []

        result = _force(raw, tmp_path)
        assert result.exit_code == 0, result.output
        assert "requested; the daemon evaluating it queues the adapters" in result.output
        assert records.forced_request("adapt") is not None and _events(daemon) == []  # nothing until the tick

        assert daemon.tick_all()["adapt"].state == "ok"  # no new rows: the tick still takes the request
        [(event_id, forced)] = _events(daemon)
        assert forced and records.forced_request("adapt") is None
        runs = daemon.store.adaptation_page(10, monitor="adapt").items
        assert sorted((run.adapter, run.state, run.event_id) for run in runs) == [
            ("feature_alignment", "pending", event_id), ("label_shift", "pending", event_id)]
        assert records.next_event("adapt").target_sample  # the latest rows travel with the event

        daemon.tick_all()
        assert len(_events(daemon)) == 1  # the request was taken once

        # not drift: not counted, not listed, no drift_detected sent
        assert daemon.store.overview("adapt").events == 0
        assert daemon.store.event_page("adapt", 10).items == []
        assert _outbox_kinds(daemon) == {"window_evaluated"}  # no drift_detected, though it has a destination
        assert daemon.metrics.registry.get_sample_value("driftd_drift_events_total", {"monitor": "adapt"}) in (None, 0)

        daemon.adaptation.run_pending("adapt")  # run exactly as a drift event's runs are
    finally:
        daemon.stop()
    ended = {run.adapter: run for run in daemon.store.adaptation_page(10, monitor="adapt").items}
    assert {run.state for run in ended.values()} <= {"rejected", "succeeded"}, [r.reason for r in ended.values()]
    assert all(run.metrics and "scores" in run.metrics for run in ended.values())


def test_a_request_waits_for_rows_after_a_restart_and_without_a_daemon_the_cli_says_so(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    raw = _raw(scenario, tmp_path)
    daemon = _daemon(raw)
    daemon.stop()  # registered, never ticked: nobody evaluates the monitor

    result = _force(raw, tmp_path)
    assert result.exit_code == 1
    assert "monitor 'adapt': no running driftd daemon evaluates it (its last tick was never)" in result.output
    assert "the request is kept" in result.output

    daemon = _daemon(raw)  # the daemon starts: it has no rows yet, so the request waits
    records = AdaptationRecords(daemon.store)
    try:
        scenario.write_live("a.csv", shifted=False, rows=400)  # less than a window
        daemon.tick_all()
        assert _events(daemon) == [] and records.forced_request("adapt") is not None
        scenario.write_live("b.csv", shifted=False, rows=600)
        daemon.tick_all()
        [(_, forced)] = _events(daemon)
        assert forced and records.forced_request("adapt") is None
    finally:
        daemon.stop()


def test_force_takes_no_event(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    raw = _raw(scenario, tmp_path)
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["adaptations", "run", "adapt", "--force", "--event", "1", "-c", str(path)])
    assert result.exit_code == 2 and "--force runs on the latest rows; it takes no --event" in result.output


@pytest.mark.postgres
def test_on_postgres_the_replica_holding_the_lease_takes_the_request(tmp_path: Path, postgres_url: str) -> None:
    from monitor.store import Store
    from monitor.store.migrate import upgrade

    upgrade(Store(postgres_url).engine)  # migration 0010 on PostgreSQL
    scenario = build_scenario(tmp_path / "data", "affine")
    raw = {**_raw(scenario, tmp_path), "storage": {"url": postgres_url, "lease": "30s"}}
    holder, other = _daemon(raw), _daemon(raw)
    try:
        scenario.write_live("a.csv", shifted=False, rows=1000)
        assert holder.tick_all()["adapt"].owned
        result = _force(raw, tmp_path)
        assert result.exit_code == 0, result.output
        assert f"requested; replica {holder.replica} queues the adapters" in result.output
        assert not other.tick_all()["adapt"].owned
        assert _events(other) == []  # only the lease holder has the rows and takes the request
        holder.tick_all()
        [(event_id, forced)] = _events(holder)
        assert forced and AdaptationRecords(holder.store).forced_request("adapt") is None
        assert {run.event_id for run in holder.store.adaptation_page(10, monitor="adapt").items} == {event_id}
    finally:
        holder.stop()
        other.stop()


def test_a_cron_monitor_that_ticked_is_not_called_stopped(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    raw = _raw(scenario, tmp_path)
    raw["monitors"][0]["schedule"] = {"cron": "0 3 * * *"}
    daemon = _daemon(raw)
    try:
        scenario.write_live("a.csv", shifted=False, rows=500)
        daemon.tick_all()
    finally:
        daemon.stop()
    result = _force(raw, tmp_path)
    assert result.exit_code == 0 and "requested; the daemon evaluating it (cron schedule, last tick at" in result.output


def test_the_http_endpoint_requests_a_forced_adaptation_on_the_running_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /api/v1/monitors/NAME/adaptations/force on the daemon's own HTTP server (uvicorn, a real port): the
    bearer token of the write API is required; the request is what ``--force`` records, taken at the next tick."""
    import httpx

    from monitor.http.face import HttpFace

    scenario = build_scenario(tmp_path / "data", "affine")
    raw = _raw(scenario, tmp_path)
    plain = {key: value for key, value in raw["monitors"][0].items() if key not in ("adaptation", "model")}
    quiet = {"schedule": {"interval": "1h"}}  # the test ticks it itself
    raw = {**raw, "server": {"port": 0}, "monitors": [{**raw["monitors"][0], **quiet}, {**plain, "name": "plain"}]}
    monkeypatch.setenv("DRIFTD_API_TOKEN", "f0rce-t0ken")
    daemon = _daemon(raw)
    http = HttpFace.attach(daemon)
    daemon.start()
    records = AdaptationRecords(daemon.store)
    try:
        assert http.server is not None
        url = f"http://127.0.0.1:{http.port}/api/v1/monitors/adapt/adaptations/force"
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = httpx.post(url, headers=headers, timeout=10)
            assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
        assert records.forced_request("adapt") is None  # a refused call records nothing
        auth = {"Authorization": "Bearer f0rce-t0ken"}
        scenario.write_live("a.csv", shifted=False, rows=1000)
        daemon.trigger("adapt")
        answer = httpx.post(url, headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["monitor"] == "adapt" and body["taken"] is True and body["replica"] is None
        assert "requested; the daemon evaluating it queues the adapters" in body["message"]
        assert body["requested_at"].endswith("Z") and records.forced_request("adapt") is not None
        assert _events(daemon) == []  # nothing until the tick

        daemon.trigger("adapt")  # the tick takes the request: a forced event with its pending runs
        [(event_id, forced)] = _events(daemon)
        assert forced and records.forced_request("adapt") is None
        runs = daemon.store.adaptation_page(10, monitor="adapt").items
        assert sorted((run.adapter, run.event_id) for run in runs) == [
            ("feature_alignment", event_id), ("label_shift", event_id)]

        base = f"http://127.0.0.1:{http.port}/api/v1/monitors"
        no_section = httpx.post(f"{base}/plain/adaptations/force", headers=auth, timeout=10)
        assert no_section.status_code == 409
        assert no_section.json() == {"error": "monitor 'plain' has no adaptation section in the configuration"}
        assert httpx.post(f"{base}/nope/adaptations/force", headers=auth, timeout=10).status_code == 404
        monkeypatch.delenv("DRIFTD_API_TOKEN")
        disabled = httpx.post(url, headers=auth, timeout=10)
        assert disabled.status_code == 403 and disabled.json() == {"error": "write API disabled: set DRIFTD_API_TOKEN"}
    finally:
        daemon.stop()
