"""Exactly once, proven at every step: the process ends (``os._exit``) at each crash point in turn.

One run of a monitor is traced first (``DRIFTD_CRASH_TRACE``): every step it reaches — before and
after each SQL statement of the tick's transaction and of the reference's, the commit, the moment
after it (before metrics, hooks and adaptation), each outbox delivery before it is marked — is one
point. Then, for each point, a forked child runs the same monitor and ends exactly there; a new
daemon restarts on the database it left and runs to the end. Whatever the point, the history must
be the one a run without a crash writes, checked by id: windows 1 and 2 (each row in exactly one),
their results, one drift event on window 2, one reference version, the cursor at the end, and
every event in the outbox once, delivered to the hook at least once and with its stable id.

Forked children share the parent's imports, so a point costs a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from monitor.config import DriftdConfig, build_config
from monitor.daemon import Daemon
from monitor.hookspecs import hookimpl
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.store import crashpoints
from monitor.store.migrate import upgrade
from monitor.store.schema import Base
from tests.helpers import sample_table, write_csv

WINDOW_ROWS, QUIET_ROWS, SHIFTED_ROWS = 50, 50, 50
TOTAL_ROWS = QUIET_ROWS + SHIFTED_ROWS
TABLES = ("outbox", "results", "adaptations", "model_versions", "drift_events", "windows", "cursors", "leases",
          "reference_versions", "monitors")


class HookRecorder:
    """Appends every event a hook receives to a file (``kind event_uid seq-or-id``), durably."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _record(self, kind: str, payload: Mapping[str, Any], key: Any) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, f"{kind} {payload['event_uid']} {key}\n".encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    @hookimpl
    def driftd_window_evaluated(self, monitor: str, window: Mapping[str, Any]) -> None:
        self._record("window_evaluated", window, window["seq"])

    @hookimpl
    def driftd_drift_detected(self, monitor: str, event: Mapping[str, Any]) -> None:
        self._record("drift_detected", event, event["id"])

    def received(self) -> list[tuple[str, str, str]]:
        if not self.path.exists():
            return []
        return [tuple(line.split(" ")) for line in self.path.read_text().splitlines()]  # type: ignore[misc]


def _config(tmp_path: Path, url: str) -> DriftdConfig:
    return build_config({
        "storage": {"url": url, "lease": "30s"}, "server": {"enabled": False},
        # A dead replica's claims lapse soon (PostgreSQL; SQLite frees them at start-up), yet a batch has
        # time for all three deliveries even on a loaded machine: past 80% of the claim the rest would be
        # deferred to another batch, and the number of delivery transactions (crash points) would vary.
        "outbox": {"retry_base": "1ms", "claim": "2s"},
        "monitors": [{
            "name": "orders", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}},
            "features": {"numeric": ["a", "b"]}, "window": {"rows": WINDOW_ROWS}, "max_rows": 1000,
            "reference": {"path": str(tmp_path / "ref.csv")}, "measures": ["ks"],
            "drift": {"share": 0.3, "consecutive": 1},
        }]}, "test", environ={})


def _run(config: DriftdConfig, recorder: HookRecorder) -> None:
    """What a process does: start, tick until the source is drained, deliver the outbox."""
    plugins = PluginManager(environ={}, load_entry_points=False)
    plugins.register(recorder, "recorder")
    daemon = Daemon(config, plugins)
    daemon.replica = "replica-1"  # a restarted replica renews its own lease rather than waiting for it
    daemon.prepare()
    for _ in range(5):
        report = daemon.tick_all()["orders"]
        assert not isinstance(report, Exception), report
        if report.rows_fetched == 0:
            break
    deadline = time.monotonic() + 30
    while daemon.store.outbox_backlog().pending and time.monotonic() < deadline:
        daemon.outbox.drain(timeout=30)
        time.sleep(0.05)
    daemon.stop()


def _forked(work: Callable[[], None], environ: Mapping[str, str]) -> int:
    """Run ``work`` in a forked child with the crash switch set; its exit status (86: ended at the point)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            crashpoints.configure(environ)
            work()
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit status
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class Scenario:
    """A migrated database, the data files, and a way to get back to the empty history."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        write_csv(tmp_path / "ref.csv", sample_table(200, seed=1))
        write_csv(tmp_path / "data" / "part-0.csv", sample_table(QUIET_ROWS, seed=2))
        write_csv(tmp_path / "data" / "part-1.csv", sample_table(SHIFTED_ROWS, seed=3, shift=4.0, start_id=QUIET_ROWS))
        self.sqlite = url.startswith("sqlite")
        store = Store(url)
        upgrade(store.engine)
        store.close()
        self.template = tmp_path / "template.db"
        if self.sqlite:
            shutil.copy(tmp_path / "driftd.db", self.template)
        self.runs = 0

    def fresh(self) -> tuple[DriftdConfig, HookRecorder]:
        """An empty (migrated) history and hook log."""
        self.runs += 1
        url = self.url
        if self.sqlite:
            database = self.tmp_path / f"run-{self.runs}.db"
            shutil.copy(self.template, database)
            url = f"sqlite:///{database}"
        else:
            store = Store(url)
            with store.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            store.close()
        return _config(self.tmp_path, url), HookRecorder(self.tmp_path / f"hooks-{self.runs}.log")


def check_history(config: DriftdConfig, recorder: HookRecorder, crashed_in_delivery: bool) -> None:
    """The history a run without a crash writes, checked by id."""
    store = Store(config.storage.url)
    try:
        with store.engine.connect() as connection:
            def rows(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in connection.execute(text(sql))]
            windows = rows("SELECT id, seq, rows, reference_id FROM windows ORDER BY seq")
            references = rows("SELECT id, version, active FROM reference_versions")
            [(pending, position)] = rows("SELECT pending_rows, position FROM cursors")
            results = rows("SELECT window_id, feature FROM results ORDER BY window_id, feature")
            events = rows("SELECT id, window_id FROM drift_events")
            outbox = rows("SELECT event_id, kind, target, state, payload FROM outbox ORDER BY id")
    finally:
        store.close()
    assert [(seq, count) for _, seq, count, _ in windows] == [(1, WINDOW_ROWS), (2, WINDOW_ROWS)], windows
    assert sum(count for _, _, count, _ in windows) + pending == TOTAL_ROWS and pending == 0
    assert position is not None
    window_ids = {seq: window_id for window_id, seq, _, _ in windows}
    assert len(set(window_ids.values())) == 2
    assert len(references) == 1 and references[0][1:] == (1, True), references
    assert {reference_id for *_, reference_id in windows} == {references[0][0]}
    assert results == sorted((window_ids[seq], feature) for seq in (1, 2) for feature in ("a", "b")), results
    assert len(events) == 1 and events[0][1] == window_ids[2], events  # drift on the shifted window only
    # The outbox: each event once, for the hook, delivered; its payload names the committed rows.
    assert [(kind, target, state) for _, kind, target, state, _ in outbox] == [
        ("window_evaluated", "hook:recorder", "delivered"), ("window_evaluated", "hook:recorder", "delivered"),
        ("drift_detected", "hook:recorder", "delivered")], outbox
    payloads = [payload if isinstance(payload, dict) else __import__("json").loads(payload)
                for *_, payload in outbox]
    assert [payload.get("seq") for payload in payloads[:2]] == [1, 2]
    assert payloads[2]["id"] == events[0][0] and payloads[2]["window_seq"] == 2
    uids = [event_id for event_id, *_ in outbox]
    assert len(set(uids)) == 3 and all(payload["event_uid"] == uid for payload, uid in zip(payloads, uids))
    # The hook: every committed event at least once, nothing else (no event of a rolled-back transaction);
    # a duplicate only when the crash came between a delivery and its mark (the outbox.* points).
    received = recorder.received()
    expected = {("window_evaluated", uids[0], "1"), ("window_evaluated", uids[1], "2"),
                ("drift_detected", uids[2], str(events[0][0]))}
    assert set(received) == expected, received
    assert len(received) - len(expected) <= (1 if crashed_in_delivery else 0), received


def _points(scenario: Scenario) -> list[str]:
    config, recorder = scenario.fresh()
    trace = scenario.tmp_path / "trace.txt"
    assert _forked(lambda: _run(config, recorder), {crashpoints.TRACE_VARIABLE: str(trace)}) == 0
    check_history(config, recorder, crashed_in_delivery=False)
    return trace.read_text().split()


@pytest.fixture
def scenario(tmp_path: Path, db_url: str) -> Iterator[Scenario]:
    yield Scenario(tmp_path, db_url)


def test_a_crash_at_any_step_loses_nothing_and_counts_nothing_twice(scenario: Scenario) -> None:
    points = _points(scenario)
    # the trace reached every kind of step; a refactoring that loses them fails here, not silently
    for expected in ("reference.commit.before#1", "reference.commit.after#1", "tick.begin#1", "tick.sql1.before#1",
                     "tick.commit.before#1", "tick.commit.after#1", "outbox.sent#3"):
        assert expected in points, (expected, points)
    assert sum(point.startswith("tick.sql") for point in points) >= 16, points
    failures = []
    for point in points:
        config, recorder = scenario.fresh()
        status = _forked(lambda: _run(config, recorder), {crashpoints.AT_VARIABLE: point})
        if status != crashpoints.EXIT_CODE:
            failures.append(f"{point}: the child exited {status}, not at the point")
            continue
        _run(config, recorder)  # the restart
        try:
            check_history(config, recorder, crashed_in_delivery=point.startswith("outbox."))
        except AssertionError as error:
            failures.append(f"{point}: {str(error).splitlines()[0]}")
    assert not failures, f"{len(failures)} of {len(points)} crash points broke the history:\n" + "\n".join(failures)


# ---- adaptation promotion ------------------------------------------------------------------------

class FinishedRecorder(HookRecorder):
    """Records the end of every adapter run (``adaptation_finished``)."""

    @hookimpl
    def driftd_adaptation_finished(self, monitor: str, adaptation: Mapping[str, Any]) -> None:
        self._record("adaptation_finished", adaptation, f"{adaptation['id']}:{adaptation['state']}")


def _adapting_daemon(raw: dict[str, Any], recorder: HookRecorder) -> Daemon:
    plugins = PluginManager(environ={}, load_entry_points=False)
    plugins.register(recorder, "recorder")
    daemon = Daemon(build_config(raw, "test", environ={}), plugins)
    daemon.replica = "replica-1"
    daemon.prepare()
    return daemon


def _adapt(raw: dict[str, Any], recorder: HookRecorder) -> None:
    """What a process does after the drift: run the queued adapter (promotion), deliver the outbox."""
    daemon = _adapting_daemon(raw, recorder)
    daemon.adaptation.run_pending("adapt")
    daemon.outbox.drain(timeout=30)
    daemon.stop()


def check_promotion(raw: dict[str, Any], recorder: HookRecorder, store_folder: Path) -> None:
    """Whatever the crash: no run left open; a recorded version is complete, active, pointed at and
    announced; no version without its promoted run (and no promoted run without its version)."""
    store = Store(raw["storage"]["url"])
    try:
        with store.engine.connect() as connection:
            runs = [tuple(r) for r in connection.execute(text(
                "SELECT id, state, model_version, artifact FROM adaptations"))]
            versions = [tuple(r) for r in connection.execute(text(
                "SELECT version, active, path, adaptation_id FROM model_versions ORDER BY version"))]
            outbox = [tuple(r) for r in connection.execute(text(
                "SELECT event_id, kind, state FROM outbox WHERE kind = 'adaptation_finished'"))]
    finally:
        store.close()
    [(run_id, state, model_version, artifact)] = runs
    assert state in ("promoted", "failed"), runs
    active = [v for v in versions if v[1]]
    assert len(active) == 1, versions
    if state == "promoted":
        assert [v[0] for v in versions] == [1, 2] and active[0][0] == 2 and model_version == 2, (runs, versions)
        assert active[0][3] == run_id and artifact == active[0][2]
        assert (Path(active[0][2]) / "manifest.json").is_file()
    else:
        assert [v[0] for v in versions] == [1], f"a version without its promoted run: {versions} {runs}"
    current = store_folder / "adapt" / "current"
    if state == "promoted" or current.exists():
        assert current.resolve() == Path(active[0][2]).resolve(), "'current' points elsewhere than SQL's version"
    assert [(kind, delivered) for _, kind, delivered in outbox] == [("adaptation_finished", "delivered")], outbox
    received = [entry for entry in recorder.received() if entry[0] == "adaptation_finished"]
    assert {uid for _, uid, _ in received} == {outbox[0][0]}, received
    assert {key for *_, key in received} == {f"{run_id}:{state}"}, received


class DriftedHistory:
    """A history in which the drift event is committed with its adapter queued: made once, then copied
    per run (a file copy on SQLite; on PostgreSQL its rows are put back into the emptied tables)."""

    def __init__(self, tmp_path: Path, url: str, raw: dict[str, Any]) -> None:
        self.tmp_path, self.url, self.runs = tmp_path, url, 0
        self.sqlite = url.startswith("sqlite")
        store = Store(url)
        upgrade(store.engine)
        store.close()
        daemon = _adapting_daemon(raw, HookRecorder(tmp_path / "t"))
        assert daemon.tick_all()["adapt"].state == "drift"
        daemon.stop()
        self.rows: dict[str, list[dict[str, Any]]] = {}
        if not self.sqlite:
            store = Store(url)
            with store.engine.connect() as connection:
                self.rows = {table.name: [dict(row._mapping) for row in connection.execute(select(table))]
                             for table in Base.metadata.sorted_tables}
            store.close()

    def copy(self) -> str:
        """The URL of the drifted history, as it was after the drift."""
        self.runs += 1
        if self.sqlite:
            copied = self.tmp_path / f"adapt-{self.runs}.db"
            shutil.copy(make_url(self.url).database, copied)
            return f"sqlite:///{copied}"
        store = Store(self.url)
        with store.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            for table in Base.metadata.sorted_tables:
                if self.rows[table.name]:
                    connection.execute(table.insert(), self.rows[table.name])
                    if "id" in table.c:
                        connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                                f"(SELECT max(id) FROM {table.name}))"))
        store.close()
        return self.url


def test_a_crash_inside_a_promotion_leaves_a_whole_version_or_none(tmp_path: Path, db_url: str) -> None:
    pytest.importorskip("sklearn")
    from tests.adaptation_scenario import build_scenario

    adaptation = build_scenario(tmp_path / "scenario", "affine")
    adaptation.write_live("a.csv", shifted=False, rows=500)
    adaptation.write_live("b.csv", shifted=True, rows=500)
    base = {"storage": {"url": db_url, "lease": "30s"}, "server": {"enabled": False},
            "outbox": {"retry_base": "1ms", "claim": "300ms"}, "monitors": [adaptation.monitor(["feature_alignment"])]}
    history = DriftedHistory(tmp_path, db_url, base)

    def fresh() -> tuple[dict[str, Any], HookRecorder, Path]:
        folder = tmp_path / f"models-{history.runs + 1}"
        monitor = adaptation.monitor(["feature_alignment"])
        monitor["model"]["store"] = str(folder)
        raw = {**base, "storage": {**base["storage"], "url": history.copy()}, "monitors": [monitor]}
        return raw, FinishedRecorder(tmp_path / f"finished-{history.runs}.log"), folder

    raw, recorder, folder = fresh()
    trace = tmp_path / "promotion-trace.txt"
    assert _forked(lambda: _adapt(raw, recorder), {crashpoints.TRACE_VARIABLE: str(trace)}) == 0
    check_promotion(raw, recorder, folder)
    points = [point for point in trace.read_text().split() if point.startswith("promotion.")]
    for expected in ("promotion.written#1", "promotion.sql1.before#1", "promotion.commit.before#1",
                     "promotion.commit.after#1"):
        assert expected in points, (expected, points)
    failures = []
    for point in points:
        raw, recorder, folder = fresh()
        status = _forked(lambda: _adapt(raw, recorder), {crashpoints.AT_VARIABLE: point})
        if status != crashpoints.EXIT_CODE:
            failures.append(f"{point}: the child exited {status}, not at the point")
            continue
        _adapt(raw, recorder)  # the restart: the interrupted run is failed, 'current' repointed
        try:
            check_promotion(raw, recorder, folder)
        except AssertionError as error:
            failures.append(f"{point}: {str(error).splitlines()[0]}")
    assert not failures, f"{len(failures)} of {len(points)} crash points broke the promotion:\n" + "\n".join(failures)
