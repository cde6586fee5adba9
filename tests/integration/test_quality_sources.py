"""Data-quality checks end to end: a monitor over files and over PostgreSQL finds a missing-rate jump, a
column turned to text, a new category and a constant column, votes, stores and exports them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.metrics import Metrics
from tests.helpers import make_runner, monitor_config, write_csv

QUALITY = {"missing_rate": {"vote": True}, "out_of_range": {}, "new_category": {"vote": True},
           "vanished_category": {}, "constant": {}}
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _rows(n: int, seed: int, start_id: int, broken: bool) -> list[dict[str, Any]]:
    """Rows of a, b (numeric) and c (categorical); ``broken``: a is 30% missing, b constant, c has 'fault'."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    b = rng.normal(10, 2, n)
    c = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]).astype(object)
    if broken:
        b[:] = 7.0
        c[rng.random(n) < 0.15] = "fault"
    rows = []
    for i in range(n):
        value: Any = float(a[i])
        if broken and rng.random() < 0.3:
            value = None if i % 2 else "n/a"  # missing, and a value that is not a number
        rows.append({"id": start_id + i, "ts": START + timedelta(seconds=start_id + i), "a": value,
                     "b": float(b[i]), "c": str(c[i])})
    return rows


def _quality_metric(metrics: Metrics) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name == "driftd_quality_check_failed":
                found[sample.labels["feature"], sample.labels["check"]] = sample.value
    return found


def _run(config_source: dict[str, Any], url: str) -> tuple[Any, Metrics]:
    metrics = Metrics()
    config = monitor_config(source=config_source, reference={"first_rows": 1000}, window={"rows": 500},
                            measures=["ks", "chi_square"], quality=QUALITY, max_rows=2000)
    runner = make_runner(config, url, metrics)
    try:
        while runner.tick().rows_fetched:
            pass
        windows = runner.store.windows("m", 10)
        results = {window.seq: runner.store.results(window.id) for window in windows}
    finally:
        runner.close()
        runner.store.close()
    return (windows, results), metrics


def _assert_found(windows: list[Any], results: dict[int, list[Any]], metrics: Metrics) -> None:
    by_seq = {window.seq: window for window in windows}
    assert sorted(by_seq) == [1, 2], by_seq
    quiet, broken = by_seq[1], by_seq[2]
    failed = {(r.feature, r.measure) for r in results[2] if r.measure.startswith("quality.") and r.drifted}
    assert failed == {("a", "quality.missing_rate"), ("b", "quality.constant"),
                      ("c", "quality.new_category")}, failed
    assert not [r for r in results[1] if r.measure.startswith("quality.") and r.drifted]
    assert "a" in broken.drifted_features  # voted: its values alone (70% left, unshifted) would not drift
    assert quiet.drifted_features == []
    exported = _quality_metric(metrics)
    assert exported[("a", "missing_rate")] == 1.0 and exported[("c", "new_category")] == 1.0
    assert exported[("a", "out_of_range")] == 0.0


def test_quality_checks_over_files(tmp_path: Path, sqlite_url: str) -> None:
    data = tmp_path / "data"
    rows = _rows(1500, 1, 0, broken=False) + _rows(500, 2, 1500, broken=True)
    table = pa.table({key: pa.array([str(row[key]) if key == "a" and row[key] is not None else row[key]
                                     for row in rows]) for key in ("id", "a", "b", "c")})
    write_csv(data / "part-1.csv", table)
    (windows, results), metrics = _run({"type": "files", "options": {"path": str(data)}}, sqlite_url)
    _assert_found(windows, results, metrics)


def test_quality_checks_over_postgres(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE readings (id integer PRIMARY KEY, ts timestamptz NOT NULL, "
                                   "a text, b double precision, c text)"))
        readings = sa.table("readings", *(sa.column(name) for name in ("id", "ts", "a", "b", "c")))
        rows = _rows(1500, 1, 0, broken=False) + _rows(500, 2, 1500, broken=True)
        connection.execute(readings.insert(), [{**row, "a": None if row["a"] is None else str(row["a"])}
                                               for row in rows])
    engine.dispose()
    source = {"type": "sql", "options": {"url": postgres_url, "table": "readings", "cursor_column": "ts",
                                         "tiebreaker_column": "id"}}
    (windows, results), metrics = _run(source, postgres_url)
    _assert_found(windows, results, metrics)


TYPED = {"type_changed": {"vote": True}, "missing_rate": {}}


def _typed_rows(n: int, seed: int, start_id: int, broken: bool) -> list[dict[str, Any]]:
    """Rows of a, b (numeric, a as text) and c; ``broken``: 20% of a's values are words, not numbers."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n), rng.normal(10, 2, n)
    c = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    words = rng.random(n) < (0.2 if broken else 0.0)
    return [{"id": start_id + i, "ts": START + timedelta(seconds=start_id + i),
             "a": "unknown" if words[i] else repr(float(a[i])), "b": float(b[i]), "c": str(c[i])}
            for i in range(n)]


def _run_typed(config_source: dict[str, Any], url: str) -> tuple[list[Any], dict[int, list[Any]], Metrics]:
    metrics = Metrics()
    config = monitor_config(source=config_source, reference={"first_rows": 1000}, window={"rows": 500},
                            measures=["ks", "chi_square"], quality=TYPED, max_rows=700)
    runner = make_runner(config, url, metrics)
    try:
        while runner.tick().rows_fetched:
            pass
        windows = runner.store.windows("m", 10)
        results = {window.seq: runner.store.results(window.id) for window in windows}
    finally:
        runner.close()
        runner.store.close()
    return windows, results, metrics


def _assert_type_change_found(windows: list[Any], results: dict[int, list[Any]], metrics: Metrics) -> None:
    by_seq = {window.seq: window for window in windows}
    assert sorted(by_seq) == [1, 2], by_seq
    [typed] = [r for r in results[2] if r.feature == "a" and r.measure == "quality.type_changed"]
    words = sum(row["a"] == "unknown" for row in _typed_rows(500, 4, 1500, broken=True))
    assert typed.drifted and typed.value == words / 500, typed
    assert not [r for r in results[1] if r.measure.startswith("quality.") and r.drifted]
    assert not [r for r in results[2] if r.feature != "a" and r.measure == "quality.type_changed" and r.drifted]
    assert by_seq[2].drifted_features == ["a"] and by_seq[1].drifted_features == []  # voted
    [said] = [d for d in by_seq[2].diagnoses if d["kind"] == "type_changed"]
    assert said["sentence"] == (f"a: {words / 500:.0%} of values are not numbers (e.g. 'unknown') — "
                                "the column's type changed?")
    exported = _quality_metric(metrics)
    assert exported[("a", "type_changed")] == 1.0 and exported[("b", "type_changed")] == 0.0


def test_a_numeric_column_turned_to_text_over_files(tmp_path: Path, sqlite_url: str) -> None:
    data = tmp_path / "data"
    clean = _typed_rows(1500, 3, 0, broken=False)
    broken = _typed_rows(500, 4, 1500, broken=True)
    # the first file's column is numbers (Arrow reads it as such), the second's is text
    write_csv(data / "part-1.csv", pa.table({"id": [r["id"] for r in clean], "a": [float(r["a"]) for r in clean],
                                             "b": [r["b"] for r in clean], "c": [r["c"] for r in clean]}))
    write_csv(data / "part-2.csv", pa.table({key: [r[key] for r in broken] for key in ("id", "a", "b", "c")}))
    _assert_type_change_found(*_run_typed({"type": "files", "options": {"path": str(data)}}, sqlite_url))


def test_a_numeric_column_turned_to_text_over_postgres(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE typed (id integer PRIMARY KEY, ts timestamptz NOT NULL, "
                                   "a text, b double precision, c text)"))
        typed = sa.table("typed", *(sa.column(name) for name in ("id", "ts", "a", "b", "c")))
        connection.execute(typed.insert(), _typed_rows(1500, 3, 0, broken=False) + _typed_rows(500, 4, 1500, True))
    engine.dispose()
    source = {"type": "sql", "options": {"url": postgres_url, "table": "typed", "cursor_column": "ts",
                                         "tiebreaker_column": "id"}}
    _assert_type_change_found(*_run_typed(source, postgres_url))
