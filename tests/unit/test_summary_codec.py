"""The stored summary's codec: uncompressed, old compressed archives still load, decoded once per version."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from monitor.divergence import ReferenceSummary, summarize_categorical, summarize_numeric
from tests.helpers import make_runner, monitor_config, sample_table, write_csv

V1_SUMMARY = Path(__file__).parent.parent / "data" / "reference_summary_v1.npz"


def _summary() -> ReferenceSummary:
    generator = np.random.default_rng(0)
    return ReferenceSummary({"x": summarize_numeric(generator.normal(size=5000)),
                             "c": summarize_categorical(np.array(["a", "b", "a"], dtype=object))})


def test_summaries_are_stored_uncompressed_and_round_trip() -> None:
    summary = _summary()
    data = summary.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    assert ReferenceSummary.from_bytes(data) == summary


def test_summaries_stored_compressed_by_earlier_versions_still_load() -> None:
    with zipfile.ZipFile(V1_SUMMARY) as archive:
        assert zipfile.ZIP_DEFLATED in {info.compress_type for info in archive.infolist()}
    loaded = ReferenceSummary.from_bytes(V1_SUMMARY.read_bytes())
    assert loaded.features and ReferenceSummary.from_bytes(loaded.to_bytes()) == loaded


def test_a_tick_reads_the_summary_out_of_sql_only_when_the_active_version_changes(
        tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(2600, seed=1))
    runner = make_runner(monitor_config(max_rows=5000), sqlite_url)
    runner.tick()  # stores the first 1000 rows as the reference (and keeps what it built)
    reads = []

    def count(_connection, _cursor, statement: str, *_: object) -> None:
        if "reference_versions.summary" in statement:
            reads.append(statement)

    event.listen(runner.store.engine, "before_cursor_execute", count)
    runner.summary = runner.reference = None  # as after a restart: the next tick must read it back, once
    for _ in range(4):
        runner.tick()
    assert len(reads) == 1 and runner.summary is not None
    assert runner.store.active_reference(runner.monitor_id, summary=False).summary == b""
    assert runner.store.reference_summary(runner.reference.id) == runner.store.active_reference(
        runner.monitor_id).summary
