"""Push-down windows of the sql connector against real SQLite, PostgreSQL and MariaDB.

The database bins and counts each window itself; the engine must reach exactly the values it
reaches from the same rows pulled, move only aggregates, keep exactly-once, and refuse what
needs rows.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from monitor.connector import ConnectorError, ConnectorOptionsError
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.plugins import PluginManager
from monitor.connector import AggregatePlan
from monitor.domain.pushdown import COUNT_MEASURES
from monitor.domain.records import WindowRecord
from plugins.connectors.sql import SqlConnector
from tests.helpers import make_runner, monitor_config, write_csv
from tests.integration.test_connector_sql import mariadb_url  # noqa: F401 - the MariaDB fixture

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOUR = 3600
MEASURES = sorted(COUNT_MEASURES)
NUMERIC = ["a", "n", "amount"]
CATEGORICAL = ["c", "k"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mariadb"])
def url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite, PostgreSQL and MariaDB."""
    return request.getfixturevalue(f"{request.param}_url")


class Readings:
    """A ``readings`` table: a timestamp and an integer cursor, three numeric and two categorical features."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        self.dialect = self.engine.dialect.name
        metadata = sa.MetaData()
        self.table = sa.Table(
            "readings", metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("a", sa.Double),
            sa.Column("n", sa.Integer),
            sa.Column("amount", sa.Numeric(10, 2)),
            sa.Column("c", sa.String(40)),
            sa.Column("k", sa.Integer),
        )
        metadata.create_all(self.engine)
        self.rows = 0

    def write(self, count: int, seed: int, shift: float = 0.0, seconds_apart: float = 4.0,
              at: datetime | None = None) -> None:
        """``count`` rows with the next ids, ``seconds_apart`` apart from ``at`` (default: after the last)."""
        values = generate(count, seed, shift)
        special = shift != 0.0  # only shifted rows carry unseen categories: unshifted windows stay quiet
        for i, row in enumerate(values):
            row["id"] = self.rows + i
            row["ts"] = (at + timedelta(seconds=i * seconds_apart) if at
                         else START + timedelta(seconds=(self.rows + i) * seconds_apart))
            if i % 37 == 5:
                row["a"] = None
            if i % 41 == 7:
                row["c"] = None
            if i % 53 == 11:
                row["amount"] = None
            if special and i % 50 == 3:
                row["c"] = ["X", "x ", "w"][i % 3]
            if self.dialect != "mysql":  # MariaDB keeps no NaN or infinity; SQLite turns NaN into NULL
                if i % 43 == 13:
                    row["a"] = math.nan
                if i % 47 == 17:
                    row["a"] = math.inf if i % 2 else -math.inf
        with self.engine.begin() as connection:
            connection.execute(self.table.insert(), values)
        self.rows += count

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.count()).select_from(self.table))


def generate(count: int, seed: int, shift: float = 0.0) -> list[dict[str, Any]]:
    """Rows rounded so that many values sit exactly on the reference's bin edges."""
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(shift, 1.0, count), 1)
    n = rng.integers(0, 20, count) + int(round(shift * 3))
    amount = np.round(rng.gamma(2.0, 10.0, count), 2)
    c = rng.choice(["x", "y", "z"], count, p=[0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5])
    k = rng.integers(1, 4, count)
    return [{"a": float(a[i]), "n": int(n[i]), "amount": f"{amount[i]:.2f}", "c": str(c[i]), "k": int(k[i])}
            for i in range(count)]


@pytest.fixture
def readings(url: str) -> Iterator[Readings]:
    created = Readings(url)
    yield created
    created.engine.dispose()


@pytest.fixture
def timeline(db_url: str) -> Iterator[Readings]:
    """``readings`` on SQLite and PostgreSQL, for what the engine does with the windows."""
    created = Readings(db_url)
    yield created
    created.engine.dispose()


@pytest.fixture
def reference_csv(tmp_path: Path) -> str:
    rows = generate(4000, seed=1)
    table = pa.table({name: [row[name] for row in rows] for name in ("a", "n", "c", "k")}
                     | {"amount": [float(row["amount"]) for row in rows]})
    return str(write_csv(tmp_path / "reference.csv", table))


def config(url: str, reference_path: str, *, pushdown: Any = None, cursor: str = "ts", span: float = HOUR,
           measures: Any = None, features: dict[str, list[str]] | None = None, **overrides: Any) -> Any:
    options: dict[str, Any] = {"url": url, "table": "readings", "cursor_column": cursor}
    if cursor == "ts":
        options["tiebreaker_column"] = "id"
    if pushdown is not None:
        options["pushdown"] = pushdown
    overrides.setdefault("window", {"span": span, "timestamp": cursor})
    overrides.setdefault("reference", {"path": reference_path})
    return monitor_config(
        source={"type": "sql", "options": options},
        features=features or {"numeric": NUMERIC, "categorical": CATEGORICAL},
        measures=MEASURES if measures is None else measures, max_rows=2500, **overrides)


def drain(runner: MonitorRunner, ticks: int = 50) -> list[WindowRecord]:
    records: list[WindowRecord] = []
    for _ in range(ticks):
        report = runner.tick()
        records += report.windows
        if report.rows_fetched == 0:
            break
    return records


def close(runner: MonitorRunner) -> None:
    runner.close()
    runner.store.close()


def described(record: WindowRecord) -> tuple[Any, ...]:
    return (record.seq, record.rows, record.started_at, record.ended_at, record.state, record.drifted_features,
            record.missing_features, [(r.feature, r.measure, r.drifted) for r in record.results])


def values(record: WindowRecord) -> list[float]:
    return [v for r in record.results for v in (r.value, r.p_value, r.p_value_adjusted) if v is not None] + [
        record.drift_share]


def bulk_insert(engine: sa.Engine, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Each driver's fastest load (test data, fixed names): COPY, or a multi-row executemany."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s" if engine.dialect.name == "mysql" else "?"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()


# ---- the same numbers as pulled rows ---------------------------------------------------------


@pytest.mark.parametrize(("cursor", "span"), [("ts", HOUR), ("id", 1000)])
def test_pushdown_equals_the_evaluation_of_the_pulled_rows(readings: Readings, reference_csv: str, tmp_path: Path,
                                                           cursor: str, span: int) -> None:
    readings.write(3600, seed=2)                 # hours 0-3 (ids 0-3599)
    readings.write(900, seed=3, shift=1.5)       # hour 4: shifted
    readings.write(1500, seed=4)                 # hours 5-6; the last window stays open
    pulled = make_runner(config(readings.url, reference_csv, cursor=cursor, span=span), f"sqlite:///{tmp_path}/pull.db")
    pushed = make_runner(config(readings.url, reference_csv, cursor=cursor, span=span, pushdown=True),
                         f"sqlite:///{tmp_path}/push.db")
    by_rows, by_counts = drain(pulled), drain(pushed)
    pulled_stats, pushed_stats = pulled.connector.stats, pushed.connector.stats
    close(pulled)
    close(pushed)

    assert len(by_counts) == (6 if cursor == "ts" else 5) and [r.rows for r in by_counts] == [r.rows for r in by_rows]
    assert [described(r) for r in by_counts] == [described(r) for r in by_rows]
    for row_record, count_record in zip(by_rows, by_counts):
        assert values(count_record) == pytest.approx(values(row_record), rel=1e-12, abs=1e-12)
    assert {r.measure for r in by_counts[0].results} == set(MEASURES)
    # drift is seen on the shifted hour (ids 3600-4499 straddle windows 3 and 4 of 1000 ids)
    shifted = [r.state == "drift" for r in by_counts]
    assert shifted == ([False, False, False, False, True, False] if cursor == "ts" else [False] * 3 + [True, True])
    assert pushed_stats.rows_returned < 250 and pulled_stats.rows_returned == readings.rows == 6000


def test_aggregate_bins_are_right_closed_and_skip_non_finite_values(url: str) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table("points", metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                     sa.Column("x", sa.Double), sa.Column("c", sa.String(40)))
    metadata.create_all(engine)
    xs: list[float | None] = [1.0, 1.5, 2.0, 2.5, None, 0.5, 2.0000001]
    if engine.dialect.name == "postgresql":
        xs += [math.nan, math.inf, -math.inf]
    cs = ["x", "X", "x ", None, "y", "x", "x'; DROP TABLE points; --"] + ["y"] * (len(xs) - 7)
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"id": i, "x": x, "c": c} for i, (x, c) in enumerate(zip(xs, cs))]
                           + [{"id": 100, "x": 0.0, "c": "z"}])
    connector = SqlConnector({"url": url, "table": "points", "cursor_column": "id", "pushdown": True})
    plan = AggregatePlan(span=50, numeric={"x": np.array([1.0, 2.0])}, categorical=("c",))
    batch = connector.aggregate(None, plan)
    again = connector.aggregate(batch.cursor, plan)
    connector.close()
    with engine.connect() as connection:
        left = connection.scalar(sa.select(sa.func.count()).select_from(table))
    engine.dispose()
    # window [50, 100) has no rows: skipped, so the cursor moves to the open window [100, 150)
    assert batch.cursor == {"window_end": 100} and again.windows == [] and again.cursor == batch.cursor
    (window,) = batch.windows
    assert window.rows == len(xs)
    assert window.numeric["x"].counts.tolist() == [2, 2, 2]  # (-inf, 1], (1, 2], (2, inf)
    assert window.numeric["x"].invalid == len(xs) - 6
    assert dict(window.categorical["c"].counts) == {"x": 2, "X": 1, "x ": 1, "y": 1 + len(xs) - 7,
                                                    "x'; DROP TABLE points; --": 1}
    assert window.categorical["c"].nulls == 1 and left == len(xs) + 1


def test_200k_rows_are_counted_where_they_are(url: str, reference_csv: str, tmp_path: Path) -> None:
    """Ten windows of 20 000 rows: only a few hundred aggregate rows cross the wire."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    sa.Table("readings", metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("a", sa.Double), sa.Column("c", sa.String(8)))
    metadata.create_all(engine)
    total = 200_001
    rng = np.random.default_rng(7)
    a = np.round(rng.normal(0, 1, total), 2)
    c = rng.choice(np.array(["x", "y", "z"]), total, p=[0.5, 0.3, 0.2])
    a[120_000:140_000] += 1.0  # window 6 is shifted
    bulk_insert(engine, "readings", ["id", "a", "c"], list(zip(range(total), a.tolist(), c.tolist())))
    engine.dispose()
    runner = make_runner(config(url, reference_csv, cursor="id", span=20_000, pushdown={"max_windows": 24},
                                features={"numeric": ["a"], "categorical": ["c"]}, measures=["psi", "jensen_shannon"],
                                drift={"share": 0.5}),
                         f"sqlite:///{tmp_path}/push.db")
    started = time.perf_counter()
    report = runner.tick()
    seconds = time.perf_counter() - started
    queries, returned = runner.connector.stats.queries, runner.connector.stats.rows_returned
    again = runner.tick()
    close(runner)
    assert [w.rows for w in report.windows] == [20_000] * 10 and report.rows_fetched == 200_000
    assert [w.state == "drift" for w in report.windows] == [False] * 6 + [True] + [False] * 3
    # per window: a MIN probe, the bins of `a` (<= 11 + non-finite), the categories of `c`; plus one MIN/MAX
    assert returned <= 1 + 10 * (1 + 12 + 3) and queries == 1 + 10 * 3
    assert again.windows == [] and again.rows_fetched == 0
    assert seconds < 10


# ---- exactly once, late rows, grace -------------------------------------------------------------


def test_a_crash_before_the_commit_loses_and_repeats_nothing(timeline: Readings, reference_csv: str,
                                                             tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/push.db"
    settings = config(timeline.url, reference_csv, pushdown={"max_windows": 2})
    timeline.write(4000, seed=2)  # hours 0-4; hour 4 stays open
    runner = make_runner(settings, storage)
    real_commit = runner.store.commit_tick

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("the history database went away"))

    runner.store.commit_tick = crash  # type: ignore[method-assign]
    with pytest.raises(MonitorError, match="went away"):
        runner.tick()
    assert runner.store.windows("m") == []
    runner.store.commit_tick = real_commit  # type: ignore[method-assign]
    first = runner.tick(retry_now=True).windows  # recomputed from the committed (empty) cursor
    close(runner)
    runner = make_runner(settings, storage)  # a restart resumes from the committed window end
    rest = drain(runner)
    timeline.write(900, seed=5, at=START + timedelta(hours=5))  # closes hour 4
    more = drain(runner)
    stored = runner.store.windows("m", limit=100)
    close(runner)
    assert [r.seq for r in first + rest + more] == [1, 2, 3, 4, 5]
    assert [r.rows for r in first + rest] == [900, 900, 900, 900] and [r.rows for r in more] == [400]
    assert sorted(w.seq for w in stored) == [1, 2, 3, 4, 5] and sum(w.rows for w in stored) == 4000


def test_late_rows_for_an_evaluated_window_are_not_counted(timeline: Readings, reference_csv: str,
                                                           tmp_path: Path) -> None:
    runner = make_runner(config(timeline.url, reference_csv, pushdown=True), f"sqlite:///{tmp_path}/push.db")
    timeline.write(2700, seed=2)  # hours 0-2; hour 2 open
    assert [r.rows for r in drain(runner)] == [900, 900]
    timeline.write(10, seed=6, at=START + timedelta(minutes=30))              # late: hour 0 was evaluated
    timeline.write(10, seed=7, at=START + timedelta(hours=2, minutes=30))     # hour 2 is still open: counted
    timeline.write(1, seed=8, at=START + timedelta(hours=3))                  # closes hour 2
    later = drain(runner)
    stored = runner.store.windows("m", limit=100)
    close(runner)
    assert [r.rows for r in later] == [910]
    assert sorted((w.seq, w.rows) for w in stored) == [(1, 900), (2, 900), (3, 910)]


def test_grace_waits_for_rows_that_arrive_a_little_late(timeline: Readings, reference_csv: str,
                                                        tmp_path: Path) -> None:
    runner = make_runner(config(timeline.url, reference_csv, pushdown={"grace": "30m"}),
                         f"sqlite:///{tmp_path}/push.db")
    timeline.write(1800 + 225, seed=2)  # hours 0-1 and 15 minutes of hour 2
    assert [r.rows for r in drain(runner)] == [900]  # hour 1 waits until a row at 02:30 or later
    timeline.write(5, seed=6, at=START + timedelta(hours=1, minutes=50))  # late, but within the grace
    timeline.write(1, seed=7, at=START + timedelta(hours=2, minutes=30))
    later = drain(runner)
    close(runner)
    assert [r.rows for r in later] == [905]


def test_a_first_rows_reference_is_pulled_then_windows_are_counted(timeline: Readings, tmp_path: Path) -> None:
    """Only the reference rows are pulled; counting starts at the window after the last of them."""
    runner = make_runner(config(timeline.url, "unused.csv", pushdown=True, reference={"first_rows": 1000}),
                         f"sqlite:///{tmp_path}/push.db")
    timeline.write(4500, seed=2)  # hours 0-4; the reference ends at id 999 (01:06:36); hour 4 stays open
    collected = runner.tick()
    counted = drain(runner)
    stats = runner.connector.stats
    close(runner)
    assert collected.windows == [] and collected.rows_fetched == 1000
    assert [(r.started_at, r.rows) for r in counted] == [(START + timedelta(hours=2), 900),
                                                         (START + timedelta(hours=3), 900)]
    assert 1000 < stats.rows_returned < 1100


# ---- what push-down refuses ----------------------------------------------------------------------


@pytest.mark.parametrize("measure", ["ks", "wasserstein", "anderson_darling", "energy", "welch_t", "mmd", "c2st"])
def test_measures_that_need_rows_are_refused_by_name(sqlite_url: str, measure: str) -> None:
    settings = config(sqlite_url, "reference.csv", pushdown=True, measures=["psi", measure])
    with pytest.raises(MonitorError, match=rf"monitor 'm': push-down source: measure\(s\) '{measure}' need"):
        MonitorRunner.validate(settings, PluginManager(load_entry_points=False))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"window": {"rows": 500}}, "window must be 'span' over the cursor column"),
    ({"window": {"span": 3600, "timestamp": "other"}}, "window must be 'span' over the cursor column"),
    ({"window": {"span": 0.5, "timestamp": "ts"}}, "whole number"),
    ({"adaptation": {"adapters": ["rebaseline"]}}, "adaptation needs the rows"),
])
def test_windows_and_adaptation_that_need_rows_are_refused(sqlite_url: str, overrides: dict[str, Any],
                                                           message: str) -> None:
    settings = config(sqlite_url, "reference.csv", pushdown=True, **overrides)
    with pytest.raises(MonitorError, match=f"monitor 'm': push-down source: .*{message}"):
        MonitorRunner.validate(settings, PluginManager(load_entry_points=False))


def test_pull_mode_keeps_every_measure(sqlite_url: str) -> None:
    settings = config(sqlite_url, "reference.csv", pushdown=False, measures=["ks", "mmd"])
    _, connector = MonitorRunner.validate(settings, PluginManager(load_entry_points=False))
    assert connector.pushdown_column is None  # type: ignore[attr-defined]
    connector.close()


# ---- injection through the new options -----------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [
    ("pushdown", "true; DROP TABLE readings"),
    ("pushdown", 1),
    ("pushdown.grace", {"grace": "1h; DROP TABLE readings"}),
    ("pushdown.max_windows", {"max_windows": "1; DROP TABLE readings"}),
    ("pushdown.span", {"span": "1h'; DROP TABLE readings; --"}),
])
def test_injection_through_the_pushdown_options_is_rejected(sqlite_url: str, option: str, value: Any) -> None:
    """Rejected when the connector is built: these values never reach a statement."""
    readings = Readings(sqlite_url)
    readings.write(10, seed=2)
    with pytest.raises(ConnectorOptionsError, match=f"option '{option}'"):
        SqlConnector({"url": readings.url, "table": "readings", "cursor_column": "ts", "pushdown": value})
    assert readings.count() == 10
    readings.engine.dispose()


def test_injection_through_feature_names_and_cursors_is_rejected(readings: Readings) -> None:
    """Feature names reach SQL only as columns the database reported; cursors only as typed, bound values."""
    readings.write(1800, seed=2)
    evil = ["a; DROP TABLE readings; --", 'c" FROM readings; DROP TABLE readings; --']
    connector = SqlConnector({"url": readings.url, "table": "readings", "cursor_column": "ts",
                              "tiebreaker_column": "id", "pushdown": True})
    plan = AggregatePlan(span=HOUR, numeric={"a": np.array([0.0]), evil[0]: np.array([0.0])}, categorical=(evil[1],))
    (window,) = connector.aggregate(None, plan).windows
    assert window.missing == {name: "column is missing from the source" for name in evil}
    assert window.rows == 900 and window.numeric["a"].counts.sum() + window.numeric["a"].invalid == 900
    for cursor in ({"window_end": "2026-03-01'; DROP TABLE readings; --"}, {"window_end": 5},
                   {"window_end": "2026-03-01", "extra": "1 OR 1=1"}, "'; DROP TABLE readings; --",
                   {"value": "1 OR 1=1", "tiebreak": 0}):
        with pytest.raises(ConnectorError, match="invalid cursor"):
            connector.aggregate(cursor, plan)
    by_id = SqlConnector({"url": readings.url, "table": "readings", "cursor_column": "id", "pushdown": True})
    with pytest.raises(ConnectorError, match="invalid cursor"):
        by_id.aggregate({"window_end": "0 OR 1=1"}, plan)
    connector.close()
    by_id.close()
    assert readings.count() == 1800


def test_a_constant_reference_sees_values_move_below_and_above_it(readings: Readings, tmp_path: Path) -> None:
    # Every numeric reference has out-of-range bins; at 0.0 the lower edge is the subnormal
    # float just below 0, which each database must compare exactly.
    reference = str(write_csv(tmp_path / "constant.csv", pa.table({"a": np.zeros(300)})))
    levels = [0.0] * 200 + [-1.0] * 100 + [1.0] * 100 + [0.0] * 101  # windows of 100 ids; the last stays open
    with readings.engine.begin() as connection:
        connection.execute(readings.table.insert(), [
            {"id": i, "ts": START + timedelta(seconds=i), "a": x} for i, x in enumerate(levels)])
    runner = make_runner(config(readings.url, reference, cursor="id", span=100, pushdown=True,
                                features={"numeric": ["a"]}, measures=["psi", "jensen_shannon", "hellinger"]),
                         f"sqlite:///{tmp_path}/push.db")
    records = drain(runner)
    close(runner)
    assert [r.drifted_features for r in records] == [[], [], ["a"], ["a"], []]
    for record in records[2:4]:
        assert all(r.drifted and r.value > r.threshold for r in record.results), record.results
