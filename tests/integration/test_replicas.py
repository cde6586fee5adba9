"""Several replicas on one PostgreSQL: leases, balancing, exactly-once evaluation, takeover; SQLite refuses a second."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, update

from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.store.migrate import upgrade
from monitor.store.schema import Lease, SourceCursor, Window
from monitor.store import LeaseLost, Store
from tests.e2e.conftest import Driftd, free_port, wait_for
from tests.helpers import sample_table, write_csv

MONITORS = ("m1", "m2", "m3", "m4")


def _write_data(tmp_path: Path, rows: int) -> None:
    for name in MONITORS:
        for part in range(rows // 500):
            write_csv(tmp_path / name / f"part-{part:03d}.csv", sample_table(500, seed=part, start_id=part * 500))


def _config(tmp_path: Path, url: str, lease: str, interval: str = "1h") -> dict[str, Any]:
    monitor = {"features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 100},
               "reference": {"path": str(write_csv(tmp_path / "ref.csv", sample_table(500, seed=99)))},
               "schedule": {"interval": interval}, "max_rows": 150, "measures": ["ks", "psi"]}
    return {"storage": {"url": url, "lease": lease}, "server": {"enabled": False},
            "monitors": [{"name": name, "source": {"type": "files", "options": {"path": str(tmp_path / name)}},
                          **monitor} for name in MONITORS]}


def _exactly_once(url: str, rows: int) -> None:
    store = Store(url)
    with store.engine.connect() as connection:
        pending = dict(connection.execute(select(SourceCursor.monitor_id, SourceCursor.pending_rows)).all())
        for name in MONITORS:
            monitor_id = store.monitor_id(name)
            seqs = connection.scalars(select(Window.seq).where(Window.monitor_id == monitor_id)
                                      .order_by(Window.seq)).all()
            counted = connection.scalar(select(func.sum(Window.rows)).where(Window.monitor_id == monitor_id))
            assert seqs == list(range(1, len(seqs) + 1)), f"{name}: windows evaluated twice or skipped"
            assert counted + pending.get(monitor_id, 0) == rows, name
            assert counted == rows, name
    store.close()


@pytest.mark.postgres
def test_leases_give_each_monitor_to_one_replica_and_a_dead_ones_to_another(tmp_path: Path, postgres_url: str) -> None:
    _write_data(tmp_path, 1500)
    upgrade(Store(postgres_url).engine)
    replicas = [Daemon(build_config(_config(tmp_path, postgres_url, lease="1s"), "test", environ={}))
                for _ in range(2)]
    for daemon in replicas:
        daemon.prepare()
    first, second = replicas

    assert all(report.owned for report in first.tick_all().values())
    assert set(first.store.lease_owners().values()) == {first.replica}
    # The second holds nothing, so it takes over one monitor (to count as a live replica); the rest stay put.
    assert [report.owned for report in second.tick_all().values()] == [True, False, False, False]
    owners = first.store.lease_owners()
    assert owners.pop("m1") == second.replica and set(owners.values()) == {first.replica}

    time.sleep(1.2)  # the first replica dies silently: its leases expire
    while any(report.rows_fetched for report in second.tick_all().values()):
        pass
    assert set(second.store.lease_owners().values()) == {second.replica}
    _exactly_once(postgres_url, 1500)

    # Fencing: a replica whose lease moved on cannot commit what it computed.
    with pytest.raises(LeaseLost, match=second.replica):
        first.store.commit_tick(first.runners["m1"].monitor_id, None, None, 0, [], lease=(first.replica, 1.0))
    for daemon in replicas:
        daemon.stop()


def test_sqlite_refuses_a_second_replica(sqlite_url: str) -> None:
    first = Daemon(build_config({"storage": {"url": sqlite_url}}, "test", environ={}))
    first.prepare()
    second = Daemon(build_config({"storage": {"url": sqlite_url}}, "test", environ={}))
    with pytest.raises(RuntimeError, match="SQLite serves a single replica; run several replicas on PostgreSQL"):
        second.prepare()
    first.stop()
    third = Daemon(build_config({"storage": {"url": sqlite_url}}, "test", environ={}))
    third.prepare()  # the lock goes with the process that held it
    third.stop()


@pytest.mark.postgres
@pytest.mark.slow
def test_three_replicas_share_monitors_and_survive_a_kill(tmp_path: Path, postgres_url: str) -> None:
    rows = 6000
    _write_data(tmp_path, rows)
    upgrade(Store(postgres_url).engine)
    config = _config(tmp_path, postgres_url, lease="2s", interval="0.2s")
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    replicas = [Driftd(tmp_path / f"r{index}", ["-c", str(path)], free_port()) for index in range(3)]
    store = Store(postgres_url)
    try:
        for replica in replicas:
            replica.cwd.mkdir()
            replica.start()

        def windows() -> int:
            with store.engine.connect() as connection:
                return int(connection.scalar(select(func.count()).select_from(Window)))

        wait_for(lambda: windows() >= 40, 60, message="windows from the replicas")
        owners = store.lease_owners()
        victim = max(replicas, key=lambda replica: sum(f":{replica.proc.pid}:" in owner for owner in owners.values()))
        assert victim.proc is not None
        victim_id = f":{victim.proc.pid}:"
        taken_over = [name for name, owner in owners.items() if victim_id in owner]
        assert taken_over, owners
        victim.kill()  # SIGKILL: its leases are not released, they expire
        wait_for(lambda: windows() == len(MONITORS) * rows // 100, 90, message="every window evaluated")
        _exactly_once(postgres_url, rows)
        after = store.lease_owners()
        assert all(victim_id not in owner for owner in after.values())
        assert all(name in after for name in taken_over), "the dead replica's monitors were taken over"
    finally:
        for replica in replicas:
            replica.kill()
        with store.engine.begin() as connection:
            connection.execute(update(Lease).values(owner="test-cleanup"))
        store.close()


@pytest.mark.postgres
def test_ownership_is_visible_in_the_api_and_metrics(tmp_path: Path, postgres_url: str) -> None:
    from prometheus_client import generate_latest
    from starlette.testclient import TestClient

    from monitor.http.api import build_api
    from monitor.http.server import create_app

    _write_data(tmp_path, 500)
    upgrade(Store(postgres_url).engine)
    daemon = Daemon(build_config(_config(tmp_path, postgres_url, lease="30s"), "test", environ={}))
    daemon.prepare()
    daemon.tick_all()
    client = TestClient(create_app(daemon.metrics, daemon.readiness, api=build_api(daemon)))
    monitors = client.get("/api/v1/monitors").json()["monitors"]
    assert {monitor["replica"] for monitor in monitors} == {daemon.replica}
    assert 'driftd_lease_held{monitor="m1"} 1.0' in generate_latest(daemon.metrics.registry).decode()
    daemon.stop()
    assert Store(postgres_url).lease_owners() == {}, "a clean stop hands the monitors over at once"


MONITOR_GAUGES = ("driftd_dataset_drift", "driftd_source_up", "driftd_monitor_state", "driftd_drift_share_ratio",
                  "driftd_feature_divergence", "driftd_feature_p_value", "driftd_feature_drifted",
                  "driftd_feature_missing", "driftd_last_window_timestamp_seconds", "driftd_reference_version",
                  "driftd_source_files", "driftd_monitor_error", "driftd_source_backlog_rows")


def _scraped(client: Any) -> dict[str, set[str]]:
    """Monitor → the names of the per-monitor gauges a scrape of /metrics holds for it."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name in MONITOR_GAUGES and "monitor" in sample.labels:
                found.setdefault(sample.labels["monitor"], set()).add(sample.name)
    return found


@pytest.mark.postgres
def test_a_replica_that_lost_a_lease_stops_exporting_the_monitors_gauges(tmp_path: Path, postgres_url: str) -> None:
    from starlette.testclient import TestClient

    from monitor.http.server import create_app

    _write_data(tmp_path, 1000)
    upgrade(Store(postgres_url).engine)
    replicas = [Daemon(build_config(_config(tmp_path, postgres_url, lease="1s"), "test", environ={}))
                for _ in range(2)]
    for daemon in replicas:
        daemon.prepare()
    first, second = replicas
    clients = [TestClient(create_app(daemon.metrics, daemon.readiness)) for daemon in replicas]
    try:
        assert all(report.owned for report in first.tick_all().values())
        before = _scraped(clients[0])
        assert set(before) == set(MONITORS)
        assert {"driftd_dataset_drift", "driftd_source_up", "driftd_feature_divergence"} <= before["m1"]
        assert _scraped(clients[1]) == {}, "a replica that never held a monitor exports none of its gauges"

        time.sleep(1.2)  # the first replica stalls past its leases: the second takes every monitor
        while any(report.rows_fetched for report in second.tick_all().values()):
            pass
        assert set(second.store.lease_owners().values()) == {second.replica}
        first.tick_all()  # it finds its leases gone (and takes one back, so as to count as a live replica)
        second.tick_all()  # the second finds that one gone at its next tick
        owners = second.store.lease_owners()  # a lease handed back to balance the replicas has no owner for now
        exported = [_scraped(client) for client in clients]
        for name in MONITORS:  # each monitor's gauges come from the replica holding it, and from it only
            exporters = [daemon.replica for daemon, gauges in zip(replicas, exported) if name in gauges]
            expected = [owners[name]] if name in owners else []
            assert exporters == expected, f"{name}: exported by {exporters}, held by {owners.get(name)}"
        lost = [name for name in MONITORS if owners.get(name) == second.replica]
        assert lost
        assert {"driftd_dataset_drift", "driftd_source_up", "driftd_feature_divergence"} <= exported[1][lost[0]]
        assert len([name for name in MONITORS if name not in exported[0]]) >= 2, "the first lost most monitors"
        lease_held = [daemon.metrics.registry.get_sample_value("driftd_lease_held", {"monitor": lost[0]})
                      for daemon in replicas]
        assert lease_held == [0.0, 1.0]  # the lease gauge itself stays, saying who holds it
    finally:
        for daemon in replicas:
            daemon.stop()


BALANCED = tuple(f"b{index:02d}" for index in range(12))
FIRST_ROWS, WINDOW_ROWS, WINDOWS = 200, 100, 30


def _balanced_config(url: str, lease: str) -> dict[str, Any]:
    """Twelve monitors on the synthetic source (no files: the data is the same in every replica)."""
    total = FIRST_ROWS + WINDOW_ROWS * WINDOWS
    return {"storage": {"url": url, "lease": lease}, "server": {"enabled": False},
            "monitors": [{"name": name, "features": {"numeric": ["temperature", "pressure"], "categorical": ["status"]},
                          "source": {"type": "synthetic", "options": {"seed": index, "rows_per_fetch": 150,
                                                                      "total_rows": total}},
                          "window": {"rows": WINDOW_ROWS}, "reference": {"first_rows": FIRST_ROWS},
                          "schedule": {"interval": "1h"}, "max_rows": 150, "measures": ["ks", "psi"]}
                         for index, name in enumerate(BALANCED)]}


def _holdings(store: Store, replicas: list[Daemon]) -> dict[str, int]:
    owners = list(store.lease_owners().values())
    return {daemon.replica: owners.count(daemon.replica) for daemon in replicas}


def _tick_round(replicas: list[Daemon]) -> int:
    """One tick of every monitor on every replica, in turn; the rows they fetched."""
    return sum(report.rows_fetched for daemon in replicas for report in daemon.tick_all().values()
               if not isinstance(report, Exception))


def _round_until(replicas: list[Daemon], store: Store, condition: Any, rounds: int) -> tuple[int, dict[str, int]]:
    """Tick rounds until ``condition(holdings)`` held after two rounds in a row; (rounds ticked, holdings)."""
    streak = 0
    for done in range(1, rounds + 1):
        _tick_round(replicas)
        held = _holdings(store, replicas)
        streak = streak + 1 if condition(held) else 0
        if streak == 2:
            return done, held
    raise AssertionError(f"not balanced after {rounds} rounds: {held}")


def _is_balanced(monitors: int) -> Any:
    def check(held: dict[str, int]) -> bool:
        share = -(-monitors // len(held))
        counts = list(held.values())
        return sum(counts) == monitors and max(counts) - min(counts) <= 1 and all(abs(c - share) <= 1 for c in counts)
    return check


@pytest.mark.postgres
def test_three_replicas_balance_hand_over_a_dead_ones_share_and_give_a_newcomer_its_share(
        postgres_url: str) -> None:
    upgrade(Store(postgres_url).engine)
    lease = 2.0
    config = _balanced_config(postgres_url, lease=f"{lease:g}s")
    replicas = [Daemon(build_config(config, "test", environ={})) for _ in range(3)]
    for daemon in replicas:
        daemon.prepare()
    store = Store(postgres_url)
    try:
        # The first replica to tick takes everything (the others are not live yet); the others then
        # take one each to count as live, and the first hands one back per cycle until it is even.
        replicas[0].tick_all()
        assert set(_holdings(store, replicas).values()) == {12, 0}
        _, held = _round_until(replicas, store, _is_balanced(12), rounds=20)
        assert sorted(held.values()) == [4, 4, 4], held
        for daemon in replicas:  # ownership shows in each replica's metrics as before
            gauges = [daemon.metrics.registry.get_sample_value("driftd_lease_held", {"monitor": name})
                      for name in BALANCED]
            assert sum(gauges) == held[daemon.replica], (daemon.replica, gauges)
            # and it keeps no reference in memory for a monitor it gave up
            assert all(getattr(runner, "summary", None) is None
                       for runner in daemon.runners.values() if not runner.owned)

        # A replica dies silently: its monitors go to the other two within the lease time.
        victim, survivors = replicas[0], replicas[1:]
        victim.tick_all()
        killed = time.monotonic()
        while time.monotonic() - killed < lease + 3:
            _tick_round(survivors)
            if sum(_holdings(store, survivors).values()) == 12:
                break
            time.sleep(0.1)
        taken_over = time.monotonic() - killed
        held = _holdings(store, replicas)
        assert held[victim.replica] == 0 and sorted(held.values()) == [0, 6, 6], held
        assert taken_over < lease + 1.5, f"takeover took {taken_over:.1f}s with a {lease:g}s lease"

        # A replica (re)starts: it gets its share back.
        newcomer = Daemon(build_config(config, "test", environ={}))
        newcomer.prepare()
        alive = [*survivors, newcomer]
        _, held = _round_until(alive, store, _is_balanced(12), rounds=20)
        assert held[newcomer.replica] == 4 and sorted(held.values()) == [4, 4, 4], held

        while _tick_round(alive):
            pass
        for daemon in alive:  # every monitor was drained by someone
            assert all(not report.rows_fetched for report in daemon.tick_all().values())
        _exactly_once_over(postgres_url, BALANCED, WINDOW_ROWS * WINDOWS)
        replicas.append(newcomer)
    finally:
        for daemon in replicas:
            daemon.stop()
        store.close()


def _exactly_once_over(url: str, monitors: tuple[str, ...], rows: int) -> None:
    store = Store(url)
    with store.engine.connect() as connection:
        for name in monitors:
            monitor_id = store.monitor_id(name)
            seqs = connection.scalars(select(Window.seq).where(Window.monitor_id == monitor_id)
                                      .order_by(Window.seq)).all()
            counted = connection.scalar(select(func.sum(Window.rows)).where(Window.monitor_id == monitor_id))
            assert seqs == list(range(1, len(seqs) + 1)), f"{name}: windows evaluated twice or skipped"
            assert counted == rows, name
    store.close()
