"""The outbox: one claim per message across replicas, per-plugin retries, the adaptation's event in
its run's transaction, and the backlog metrics."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

import pytest

from monitor.config import DriftdConfig, build_config
from monitor.daemon import Daemon
from monitor.daemon.notifying import Notifiers
from monitor.daemon.outbox import OutboxDispatcher
from monitor.domain.events import Routes
from monitor.hookspecs import hookimpl
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.store.adaptations import AdaptationRecords
from monitor.store.migrate import upgrade
from monitor.store.outbox import add_event
from tests.helpers import sample_table, write_csv


class Recorder:
    """Records what its hooks receive; ``failures`` makes the window hook raise that many times first."""

    def __init__(self, failures: int = 0) -> None:
        self.windows: list[Mapping[str, Any]] = []
        self.finished: list[Mapping[str, Any]] = []
        self.failures = failures
        self.lock = threading.Lock()

    @hookimpl
    def driftd_window_evaluated(self, monitor: str, window: Mapping[str, Any]) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("the plugin's backend is down")
            self.windows.append(window)

    @hookimpl
    def driftd_adaptation_finished(self, monitor: str, adaptation: Mapping[str, Any]) -> None:
        self.finished.append(adaptation)


def _config(tmp_path: Path, url: str) -> DriftdConfig:
    data = tmp_path / "data"
    write_csv(data / "part-0.csv", sample_table(200, seed=2))
    return build_config({
        "storage": {"url": url}, "server": {"enabled": False}, "outbox": {"retry_base": "1ms", "retry_cap": "5ms"},
        "monitors": [{"name": "orders", "source": {"type": "files", "options": {"path": str(data)}},
                      "features": {"numeric": ["a", "b"]}, "window": {"rows": 50}, "measures": ["ks"],
                      "reference": {"path": str(write_csv(tmp_path / "ref.csv", sample_table(200, seed=1)))}}]},
        "test", environ={})


def test_one_failing_plugin_is_retried_alone_and_the_others_hear_each_event_once(
        tmp_path: Path, sqlite_url: str) -> None:
    steady, flaky = Recorder(), Recorder(failures=2)
    plugins = PluginManager(environ={}, load_entry_points=False)
    plugins.register(steady, "steady")
    plugins.register(flaky, "flaky")
    daemon = Daemon(_config(tmp_path, sqlite_url), plugins)
    daemon.prepare()
    try:
        assert len(daemon.tick_all()["orders"].windows) == 4
        for _ in range(50):
            if not daemon.store.outbox_backlog().pending:
                break
            daemon.outbox.drain()
        daemon.outbox.observe()
        assert daemon.metrics.registry.get_sample_value("driftd_outbox_pending") == 0
        assert daemon.metrics.registry.get_sample_value("driftd_outbox_failures_total", {"target": "hook:flaky"}) == 2
    finally:
        daemon.stop()
    assert [w["seq"] for w in steady.windows] == [1, 2, 3, 4], "the steady plugin heard each window once"
    assert sorted(w["seq"] for w in flaky.windows) == [1, 2, 3, 4]
    assert [w["event_uid"] for w in steady.windows] == [w["event_uid"] for w in
                                                         sorted(flaky.windows, key=lambda w: w["seq"])]


@pytest.mark.postgres
def test_replicas_claim_each_message_once(postgres_url: str) -> None:
    store = Store(postgres_url)
    upgrade(store.engine)
    monitor_id = store.monitor_id("orders")
    with store._session() as session, session.begin():
        uids = [add_event(session, monitor_id, "window_evaluated", ("hook:a", "hook:b"), {"seq": seq})
                for seq in range(100)]
    replicas = [Store(postgres_url) for _ in range(4)]
    claimed: list[list[int]] = [[] for _ in replicas]
    barrier = threading.Barrier(len(replicas))

    def claim(index: int) -> None:
        barrier.wait()
        while batch := replicas[index].claim_outbox(f"replica-{index}", 7, seconds=60):
            claimed[index] += [item.id for item in batch]

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [message_id for ids in claimed for message_id in ids]
    assert len(everything) == len(set(everything)) == 200, "a message was claimed twice, or not at all"
    assert sum(1 for ids in claimed if ids) >= 2, "one replica took everything: the claims did not overlap"
    assert len(set(uids)) == 100
    for replica in [store, *replicas]:
        replica.close()


def test_an_adapter_runs_end_is_announced_in_the_runs_own_transaction(tmp_path: Path, sqlite_url: str) -> None:
    recorder = Recorder()
    plugins = PluginManager(environ={}, load_entry_points=False)
    plugins.register(recorder, "recorder")
    config = _config(tmp_path, sqlite_url)
    store = Store(sqlite_url)
    upgrade(store.engine)
    monitor_id = store.monitor_id("orders")
    records = AdaptationRecords(store)
    with store._session() as session, session.begin():
        from monitor.store.schema import Adaptation, DriftEvent, ReferenceVersion, Window, utcnow
        reference = ReferenceVersion(monitor_id=monitor_id, version=1, origin="t", rows=1, features={}, summary=b"",
                                     active=True, created_at=utcnow())
        session.add(reference)
        session.flush()
        window = Window(monitor_id=monitor_id, reference_id=reference.id, seq=1, rows=1, state="drift",
                        drift_share=1.0, drifted_features=["a"], missing_features=[])
        session.add(window)
        session.flush()
        event = DriftEvent(monitor_id=monitor_id, window_id=window.id, drift_share=1.0, features=["a"])
        session.add(event)
        session.flush()
        run = Adaptation(event_id=event.id, adapter="label_shift", state="running")
        session.add(run)
        session.flush()
        run_id = run.id
    routes = Notifiers(config, plugins).routes("orders")
    assert routes.targets("adaptation_finished") == ("hook:recorder",)
    finished = records.finish(run_id, "rejected", "no gain over the current model", routes=routes)
    assert finished.state == "rejected"
    [message] = store.outbox_messages()
    assert message["kind"] == "adaptation_finished" and message["state"] == "pending"
    dispatcher = OutboxDispatcher(store, plugins, Notifiers(config, plugins), Metrics(), "r")
    assert dispatcher.drain() == 1
    assert recorder.finished == [{"id": run_id, "event_id": finished.event_id, "adapter": "label_shift",
                                  "state": "rejected", "reason": "no gain over the current model", "metrics": None,
                                  "artifact": None, "model_version": None, "event_uid": message["event_id"]}]
    # a run that is not routed anywhere writes no message
    records.finish(run_id, "failed", "again", routes=Routes())
    assert len(store.outbox_messages()) == 1
    store.close()
