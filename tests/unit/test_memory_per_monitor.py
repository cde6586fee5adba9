"""Memory per monitor (issue 15): reference summaries within a budget, decoded exactly, freed buffers returned."""

from __future__ import annotations

import io
import platform
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, select

from monitor.daemon.allocator import tune_allocator
from monitor.daemon.engine import MonitorRunner
from monitor.daemon.summaries import SummaryBudget
from monitor.divergence import ReferenceSummary, summarize_categorical, summarize_multivariate, summarize_numeric
from monitor.divergence.npz import read_npz
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.store.schema import Result
from tests.helpers import monitor_config, sample_table, write_csv


def _runner(url: str, budget: SummaryBudget) -> MonitorRunner:
    store = Store(url)
    upgrade(store.engine)
    config = monitor_config(max_rows=5000, measures=["ks", "psi", "chi_square", "mmd"])
    return MonitorRunner(config, store, PluginManager(load_entry_points=False), Metrics(), summaries=budget)


def _results(runner: MonitorRunner) -> list[tuple[object, ...]]:
    with runner.store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(Result.window_id, Result.feature, Result.measure, Result.value, Result.p_value, Result.drifted)
            .order_by(Result.window_id, Result.feature, Result.measure)).all()]


def test_a_summary_that_does_not_fit_is_read_at_each_tick_and_the_results_do_not_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for part in range(1, 4):
        write_csv(tmp_path / "data" / f"part-{part}.csv", sample_table(1500, seed=part, shift=0.3 * (part - 1),
                                                                       start_id=1500 * part))
    kept = _runner(f"sqlite:///{tmp_path / 'kept.db'}", SummaryBudget(None))
    budget = SummaryBudget(0)  # nothing fits: decoded at each tick, dropped after it
    dropped = _runner(f"sqlite:///{tmp_path / 'dropped.db'}", budget)
    reads: list[str] = []
    event.listen(dropped.store.engine, "before_cursor_execute",
                 lambda _c, _k, statement, *_: reads.append(statement) if "reference_versions.summary" in statement
                 else None)
    for runner in (kept, dropped):
        runner.tick()  # the reference
    assert kept.summary is not None and dropped.summary is None, "a summary over the budget is not kept"
    assert kept.reference.summary == b"", "the stored bytes are not held beside the decoded summary"
    for _ in range(3):
        assert len(kept.tick().windows) == len(dropped.tick().windows)
        assert dropped.summary is None and budget.used == 0
    assert len(reads) == 3, "read out of storage at every tick"
    assert len(_results(kept)) == 7 * 7, "7 windows of 7 results each (mmd among them: its sample is decoded too)"
    assert _results(kept) == _results(dropped), "the same windows, the same figures to the bit"

def test_the_budget_admits_summaries_while_they_fit_and_gives_back_what_a_monitor_released() -> None:
    budget = SummaryBudget(100)
    assert budget.keep("a", 60) and not budget.keep("b", 50) and budget.keep("c", 40)
    assert (budget.used, budget.held) == (100, 2)
    assert budget.keep("a", 10), "a monitor's new summary replaces its old one in the count"
    assert budget.keep("b", 50) and budget.used == 100
    budget.release("c")
    budget.release("c")
    assert (budget.used, budget.held) == (60, 2)


def test_a_stopped_or_forgotten_monitor_gives_its_summary_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(2600, seed=1))
    budget = SummaryBudget(2**30)
    runner = _runner(f"sqlite:///{tmp_path / 'driftd.db'}", budget)
    runner.tick()
    assert budget.held == 1 and budget.used == runner.summary.nbytes > 0
    runner._forget_state()  # the lease went to another replica
    assert budget.used == 0 and runner.summary is None
    runner.tick()
    assert budget.held == 1
    runner.close()
    assert budget.used == 0


def _rich_summary() -> ReferenceSummary:
    generator = np.random.default_rng(3)
    rows = generator.normal(size=(400, 3))
    segment = ReferenceSummary({"x": summarize_numeric(rows[:100, 0])})
    return ReferenceSummary({"x": summarize_numeric(rows[:, 0]), "y": summarize_numeric(np.full(50, 2.5)),
                             "c": summarize_categorical(np.array(["a", "b\x00", "a", "é"], dtype=object))},
                            multivariate=summarize_multivariate(rows, ("x", "y", "z"), max_sample=300),
                            missing={"x": 2}, rows=402, segments={"north": segment})


def test_the_fast_reader_gives_what_np_load_gives_and_skips_what_is_not_wanted() -> None:
    data = _rich_summary().to_bytes()
    fortran = io.BytesIO()
    np.savez(fortran, f=np.asfortranarray(np.arange(12.0).reshape(3, 4)), i=np.arange(5, dtype=np.int32))
    for archive in (data, fortran.getvalue()):
        with np.load(io.BytesIO(archive)) as loaded:
            expected = {name: loaded[name] for name in loaded.files}
        read = read_npz(archive)
        assert read.keys() == expected.keys()
        for name, array in read.items():
            assert array.dtype == expected[name].dtype and array.shape == expected[name].shape
            assert np.array_equal(array, expected[name]) and array.flags.writeable
    assert ReferenceSummary.from_bytes(data) == _rich_summary()
    without = ReferenceSummary.from_bytes(data, multivariate=False)
    assert without.multivariate is None and without.features == _rich_summary().features
    assert without.segments == _rich_summary().segments
    assert not [name for name in read_npz(data, lambda name: not name.startswith("mv.")) if name.startswith("mv.")]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_the_allocator_is_left_alone_when_the_environment_tunes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert tune_allocator() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert tune_allocator() is True


def test_rows_left_over_from_a_large_batch_do_not_keep_the_batch() -> None:
    from monitor.daemon.windowing import PendingRows

    pending = PendingRows(monitor_config())
    batch = pending.combine(sample_table(20_000, seed=4))
    windows, remainder = pending.split(batch)
    assert remainder.num_rows == 0 and len(windows) == 40
    left = batch.slice(19_990)
    pending.committed(left)
    assert pending.table.equals(left)
    assert pending.table.get_total_buffer_size() < batch.get_total_buffer_size() / 100
