"""The tick path on embedded SQLite: reference, windows, results, events, cursor, failures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import func, select, update

from monitor.daemon import engine
from monitor.daemon.engine import MonitorError, SourceDown
from monitor.metrics import Metrics
from monitor.store.schema import DriftEvent, Result, SourceCursor, Window
from tests.helpers import make_runner, monitor_config, sample_table, write_csv


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def _count(runner, model) -> int:  # noqa: ANN001
    with runner.store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(model))


def test_first_rows_become_the_reference_then_windows_are_evaluated(data: Path, sqlite_url: str) -> None:
    write_csv(data / "part-1.csv", sample_table(2600, seed=1))
    runner = make_runner(monitor_config(max_rows=5000), sqlite_url)

    first = runner.tick()
    assert first.windows == []
    reference = runner.store.active_reference(runner.monitor_id)
    assert reference is not None and reference.rows == 1000 and reference.origin == "first 1000 rows"

    second = runner.tick()
    assert [w.rows for w in second.windows] == [500, 500, 500]
    assert [w.seq for w in second.windows] == [1, 2, 3]
    assert all(w.state == "ok" for w in second.windows)
    with runner.store.engine.connect() as connection:
        pending = connection.scalar(select(SourceCursor.pending_rows))
    assert pending == 100


def test_shifted_feature_is_flagged_and_starts_one_event(data: Path, sqlite_url: str) -> None:
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    write_csv(data / "part-2.csv", sample_table(2000, seed=2, shift=1.5, start_id=1000))
    runner = make_runner(monitor_config(max_rows=10_000), sqlite_url)
    runner.tick()
    windows = runner.tick().windows
    assert len(windows) == 4
    assert all(w.drifted_features == ["a"] for w in windows)
    # one drifted feature of three is above the default share of 0.3: drift, with a single event
    assert [w.state for w in windows] == ["drift"] * 4
    assert [w.starts_event for w in windows] == [True, False, False, False]
    assert _count(runner, DriftEvent) == 1
    ks = [r for r in windows[0].results if r.feature == "a" and r.measure == "ks"][0]
    assert ks.drifted and ks.p_value is not None and ks.p_value < 1e-10
    assert ks.p_value_adjusted is not None and ks.p_value_adjusted >= ks.p_value


def test_results_and_cursor_commit_together(data: Path, sqlite_url: str) -> None:
    write_csv(data / "part-1.csv", sample_table(2000, seed=1))
    runner = make_runner(monitor_config(max_rows=10_000), sqlite_url)
    runner.tick()
    runner.tick()
    with runner.store.engine.connect() as connection:
        windows = connection.scalar(select(func.count()).select_from(Window))
        results = connection.scalar(select(func.count()).select_from(Result))
        position = connection.scalar(select(SourceCursor.position))
    # 2 windows x (2 numeric x (ks, psi) + 1 categorical x (psi, chi_square))
    assert windows == 2 and results == 2 * (2 * 2 + 2)
    assert (position["file"], position["row"]) == (str(Path("data/part-1.csv")), 2000)
    assert position["bytes"] == (data / "part-1.csv").stat().st_size  # the fingerprint of the rows' bytes


def test_restart_resumes_from_the_committed_cursor(data: Path, sqlite_url: str) -> None:
    write_csv(data / "part-1.csv", sample_table(3000, seed=1))
    first = make_runner(monitor_config(max_rows=700), sqlite_url)
    for _ in range(3):
        first.tick()
    second = make_runner(monitor_config(max_rows=700), sqlite_url)
    while second.tick().rows_fetched:
        pass
    windows = second.store.windows("m", limit=100)
    assert sorted(w.seq for w in windows) == list(range(1, len(windows) + 1))
    pending = second.store.load_progress(second.monitor_id, recent=0).pending
    assert sum(w.rows for w in windows) == 2000 and pending is None


def test_source_down_is_reported_once_retried_with_backoff_and_resumed(
        data: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    runner = make_runner(monitor_config(source={"type": "files", "options": {"path": str(data)}}),
                         sqlite_url, metrics)
    now = [1000.0]
    runner.fetcher.backoff.clock = lambda: now[0]
    caplog.set_level(logging.INFO)
    with pytest.raises(SourceDown, match="monitor 'm'.*does not exist"):
        runner.tick()
    assert runner.tick().rows_fetched == 0, "inside the backoff the source is left alone"
    assert metrics.registry.get_sample_value("driftd_source_errors_total", {"monitor": "m"}) == 1
    now[0] += 2.0
    with pytest.raises(SourceDown):
        runner.tick()
    assert metrics.registry.get_sample_value("driftd_source_errors_total", {"monitor": "m"}) == 2
    assert metrics.snapshot("m").source_up is False
    assert _count(runner, SourceCursor) == 0, "nothing was committed while the source was down"
    write_csv(data / "part-1.csv", sample_table(1500, seed=1))
    now[0] += 1.5
    assert runner.tick().rows_fetched == 0, "the second delay (about 2 s) has not passed yet"
    now[0] += 1.0
    assert runner.tick().rows_fetched == 1500
    assert metrics.snapshot("m").source_up is True and runner.fetcher.backoff.failures == 0
    messages = [record.message for record in caplog.records]
    assert sum("is down" in m for m in messages) == 1, "logged once per state change"
    assert sum("is back" in m for m in messages) == 1


def test_missing_column_is_reported_and_other_features_measured(data: Path, sqlite_url: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    runner = make_runner(monitor_config(max_rows=10_000), sqlite_url)
    runner.tick()
    write_csv(data / "part-2.csv", sample_table(500, seed=2, start_id=1000).drop_columns(["b"]))
    with caplog.at_level(logging.WARNING):
        window = runner.tick().windows[0]
    assert window.missing_features == ["b"]
    assert {r.feature for r in window.results} == {"a", "c"}
    assert any("monitor m" in r.message and "'b'" in r.message and "missing" in r.message for r in caplog.records)


def test_window_of_nan_is_recorded_without_a_verdict(data: Path, sqlite_url: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    reference = sample_table(1000, seed=1)
    live = sample_table(500, seed=2, start_id=1000)
    live = live.set_column(1, "a", pa.array(np.full(500, np.nan)))
    live = live.set_column(2, "b", pa.array(np.full(500, np.nan)))
    live = live.set_column(3, "c", pa.nulls(500, pa.string()))
    write_csv(data / "part-1.csv", reference)
    write_csv(data / "part-2.csv", live)
    runner = make_runner(monitor_config(max_rows=10_000), sqlite_url)
    runner.tick()
    with caplog.at_level(logging.WARNING):
        window = runner.tick().windows[0]
    assert window.rows == 500 and window.results == [] and window.state == "ok"
    assert window.missing_features == ["a", "b", "c"]
    assert any("no usable values" in r.message and "monitor m" in r.message for r in caplog.records)


def test_unknown_measure_and_connector_name_the_monitor(sqlite_url: str) -> None:
    with pytest.raises(MonitorError, match="monitor 'm': measures: .*'nope'"):
        make_runner(monitor_config(measures=["ks", "nope"]), sqlite_url)
    with pytest.raises(MonitorError, match="monitor 'm': source 'kafka': unknown connector type"):
        make_runner(monitor_config(source={"type": "kafka"}), sqlite_url)


def test_reference_from_a_file_is_stored_once(data: Path, tmp_path: Path, sqlite_url: str) -> None:
    ref = write_csv(tmp_path / "ref.csv", sample_table(800, seed=3))
    write_csv(data / "part-1.csv", sample_table(500, seed=1))
    config = monitor_config(reference={"path": str(ref)})
    runner = make_runner(config, sqlite_url)
    assert len(runner.tick().windows) == 1
    again = make_runner(config, sqlite_url)
    again.tick()
    versions = again.store.references("m")
    assert [(v.version, v.rows, v.active) for v in versions] == [(1, 800, True)]


def test_a_newly_activated_reference_is_picked_up(data: Path, tmp_path: Path, sqlite_url: str) -> None:
    from monitor.domain.reference import summarize_table

    write_csv(data / "part-1.csv", sample_table(2000, seed=1, shift=2.0))
    config = monitor_config(reference={"path": str(write_csv(tmp_path / "ref.csv", sample_table(800, seed=3)))},
                            max_rows=500)
    runner = make_runner(config, sqlite_url)
    assert runner.tick().windows[0].drifted_features == ["a"]
    shifted = summarize_table(sample_table(800, seed=4, shift=2.0), config.features, 10, 1000, "capture")
    runner.store.add_reference(runner.monitor_id, shifted)
    window = runner.tick().windows[0]
    assert window.drifted_features == [] and window.reference_id != 0
    assert runner.reference is not None and runner.reference.version == 2


def test_time_windows_close_when_a_later_row_arrives(tmp_path: Path, sqlite_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    table = sample_table(3000, seed=1)
    seconds = np.arange(3000, dtype=np.int64) * 1_000_000  # one row a second
    table = table.append_column("ts", pa.array(seconds, pa.timestamp("us", tz="UTC")))
    write_csv(tmp_path / "data" / "part-1.csv", table)
    config = monitor_config(window={"span": "10m", "timestamp": "ts"}, max_rows=10_000)
    runner = make_runner(config, sqlite_url)
    runner.tick()
    windows = runner.tick().windows
    # rows 1000..2999 → minutes 16:40..49:59; windows [10m,20m) partial, [20m,30m), [30m,40m); [40m,50m) open
    assert [w.rows for w in windows] == [200, 600, 600]
    assert [w.started_at.minute for w in windows] == [10, 20, 30]
    progress = runner.store.load_progress(runner.monitor_id, recent=0)
    assert progress.last_window_end is not None and progress.last_window_end.minute == 40


def test_sequential_detector_catches_what_the_share_rule_misses(data: Path, sqlite_url: str) -> None:
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    for index in range(14):  # after 6 quiet windows feature a drifts: share 1/3, below the 0.9 level
        write_csv(data / f"part-2-{index:02d}.csv",
                  sample_table(500, seed=10 + index, shift=1.0 if index >= 6 else 0.0))
    drift = {"share": 0.9, "sequential": {"delta": 0.01, "threshold": 1.0, "min_windows": 3}}
    runner = make_runner(monitor_config(max_rows=500, drift=drift), sqlite_url)
    states = []
    while (report := runner.tick()).rows_fetched:
        states += [w.state for w in report.windows]
    assert "drift" in states, "the detector fired on the steady third of drifted features"
    windows = runner.store.windows("m", limit=100)
    assert all(w.statistic == w.drift_share for w in windows) and len(windows) == 14
    restarted = make_runner(monitor_config(max_rows=500, drift=drift), sqlite_url)
    restarted._load()
    assert restarted.policy.detector is not None
    assert restarted.policy.detector.state == runner.policy.detector.state


@pytest.mark.parametrize("backend", ["numpy", {"name": "torch", "device": "cpu", "dtype": "float32"}])
def test_multivariate_measure_runs_on_the_configured_backend(data: Path, sqlite_url: str, backend) -> None:  # noqa: ANN001
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    write_csv(data / "part-2.csv", sample_table(500, seed=2, shift=0.8, start_id=1000))
    config = monitor_config(max_rows=10_000, backend=backend, drift={"share": 0.9},
                            measures={"psi": {}, "mmd": {"options": {"permutations": 50}, "threshold": 0.05}})
    runner = make_runner(config, sqlite_url)
    runner.tick()
    window = runner.tick().windows[0]
    mmd = [r for r in window.results if r.measure == "mmd"]
    assert len(mmd) == 1 and mmd[0].feature == "*"
    assert mmd[0].drifted and mmd[0].p_value == pytest.approx(1 / 51)
    # psi alone flags a third of the features, below the 0.9 share: the joint test decides
    assert window.drifted_features == ["a", "*"] and window.state == "drift"
    restarted = make_runner(config, sqlite_url)
    restarted._load()
    assert restarted.policy.streak == 1


def test_bad_measure_options_and_backend_name_the_monitor(sqlite_url: str) -> None:
    with pytest.raises(MonitorError, match="monitor 'm': measures: measure 'mmd': bad options"):
        make_runner(monitor_config(measures={"mmd": {"options": {"permutatoins": 5}}}), sqlite_url)
    with pytest.raises(MonitorError, match="monitor 'm': backend:"):
        make_runner(monitor_config(backend={"name": "torch", "device": "cuda"}), sqlite_url)


def test_a_hung_fetch_is_given_up_and_not_stacked(data: Path, sqlite_url: str) -> None:
    import threading

    release = threading.Event()
    runner = make_runner(monitor_config(fetch_timeout="0.2s"), sqlite_url)
    calls = []

    def hang(cursor, max_rows):  # noqa: ANN001, ANN202
        calls.append(cursor)
        release.wait(10)
        raise RuntimeError("released")

    runner.connector.fetch = hang
    ticks = iter(range(0, 10**9, 1000))
    runner.fetcher.backoff.clock = lambda: float(next(ticks))  # time flies: no backoff wait in this test
    with pytest.raises(SourceDown, match="fetch did not return within 0.2s"):
        runner.tick()
    with pytest.raises(SourceDown, match="an earlier fetch has not returned yet"):
        runner.tick()
    assert len(calls) == 1, "no second thread piles onto the stuck source"
    release.set()
    runner.close()


def test_out_of_range_measure_options_name_the_monitor(sqlite_url: str) -> None:
    with pytest.raises(MonitorError, match="monitor 'm': measures: measure 'mmd': bad options.*permutations >= 1"):
        make_runner(monitor_config(measures={"mmd": {"options": {"permutations": 0}}}), sqlite_url)


def test_a_column_that_changes_type_mid_stream_never_stalls_and_its_bad_values_count_once(
        data: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Numbers, then a file whose ``a`` holds "error" while rows wait: no "Unable to merge", every row counted,
    the invalid values counted and logged once although the first commit attempt fails."""
    write_csv(data / "part-1.csv", sample_table(1300, seed=1))  # 1000 reference rows, 300 wait
    later = sample_table(900, seed=2, start_id=1300)
    a = ["error" if i % 100 == 0 else str(v) for i, v in enumerate(later.column("a").to_pylist())]
    write_csv(data / "part-2.csv", later.set_column(1, "a", pa.array(a)))
    metrics = Metrics()
    runner = make_runner(monitor_config(max_rows=1300), sqlite_url, metrics)
    runner.tick()
    commit, failures = runner.store.commit_tick, []

    def failing_once(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not failures:
            failures.append(1)
            raise RuntimeError("the database went away")
        return commit(*args, **kwargs)

    monkeypatch.setattr(runner.store, "commit_tick", failing_once)
    with pytest.raises(MonitorError, match="the database went away"):
        runner.tick()
    report = runner.tick(retry_now=True)
    assert [w.rows for w in report.windows] == [500, 500] and report.windows[0].missing_features == []
    assert runner.store.load_progress(runner.monitor_id, recent=0).pending is not None
    invalid = metrics.registry.get_sample_value("driftd_invalid_values_total", {"monitor": "m", "feature": "a"})
    assert invalid == 9
    said = [r.getMessage() for r in caplog.records if "are not numbers" in r.getMessage()]
    assert said == [("monitor m: feature 'a': 9 value(s) are not numbers (e.g. 'error'): counted as invalid, "
                     "the feature is measured on its other values")]


@pytest.mark.parametrize("measures", [["ks", "psi"], ["ks", "mmd"]], ids=["univariate", "mmd"])
def test_the_multivariate_sample_is_kept_in_memory_only_for_a_multivariate_measure(
        data: Path, sqlite_url: str, measures: list[str]) -> None:
    write_csv(data / "part-1.csv", sample_table(2600, seed=1))
    runner = make_runner(monitor_config(max_rows=5000, measures=measures), sqlite_url)
    runner.tick()  # the reference, from the first rows
    assert (runner.summary.multivariate is not None) == ("mmd" in measures)
    stored = runner.store.active_reference(runner.monitor_id)
    assert stored is not None and b"sample" in stored.summary, "the stored summary keeps it for later measures"
    windows = runner.tick().windows
    assert [w.rows for w in windows] == [500, 500, 500]
    runner.summary = runner.reference = None  # as after a lease came back: decoded again from SQL
    runner.tick()
    assert (runner.summary.multivariate is not None) == ("mmd" in measures)
    with runner.store.engine.connect() as connection:
        scored = set(connection.scalars(select(Result.measure)).all())
    assert scored == set(measures)


def test_an_idle_tick_does_not_write_the_waiting_rows_again(data: Path, sqlite_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No row and no window: the stored waiting rows are left as they are, not serialised and written again."""
    write_csv(data / "part-1.csv", sample_table(1300, seed=1))
    runner = make_runner(monitor_config(max_rows=5000), sqlite_url)
    runner.tick()  # the first 1,000 rows are the reference; 300 wait for the next window
    stored = runner.store.load_progress(runner.monitor_id, recent=0).pending
    assert stored is not None
    written: list[int] = []
    real = engine.serialised
    monkeypatch.setattr(engine, "serialised", lambda table: written.append(table.num_rows) or real(table))
    with runner.store.engine.begin() as connection:  # a marker the idle tick must not overwrite
        connection.execute(update(SourceCursor).values(pending_rows=-1))
    assert runner.tick().rows_fetched == 0
    with runner.store.engine.connect() as connection:
        assert connection.scalar(select(SourceCursor.pending_rows)) == -1
    assert written == []
    with runner.store.engine.begin() as connection:
        connection.execute(update(SourceCursor).values(pending_rows=300))

    write_csv(data / "part-2.csv", sample_table(250, seed=2, start_id=1300))  # rows come: written, then a window
    runner.tick()
    assert written == [50]
    restarted = make_runner(monitor_config(max_rows=5000), sqlite_url)
    assert [w.rows for w in restarted.store.windows("m", limit=100)] == [500]
    with restarted.store.engine.connect() as connection:
        assert connection.scalar(select(SourceCursor.pending_rows)) == 50
    assert restarted.tick().rows_fetched == 0 and restarted.pending.num_rows == 50  # reloaded from SQL
