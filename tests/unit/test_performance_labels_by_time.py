"""Late labels joined by time (``labels.join: time``) through real sources: each lands on the row of its instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as parquet
import pytest
from sqlalchemy import select

pytest.importorskip("sklearn")

from sklearn.metrics import accuracy_score, roc_auc_score  # noqa: E402

from monitor.store.schema import LabelCursor, Window, WindowPerformance  # noqa: E402
from tests.helpers import make_runner, monitor_config, write_csv  # noqa: E402
from tests.performance_scenario import FEATURES, classification  # noqa: E402

ROWS = 1000
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def _config(source: dict[str, Any]) -> Any:
    return monitor_config(
        features={"numeric": list(FEATURES)}, window={"rows": ROWS}, reference={"path": "ref.csv"}, measures=["ks"],
        performance={"target": "y", "probabilities": ["p0", "p1"], "prediction": "prediction", "classes": [0, 1],
                     "labels": {"source": source, "key": "ts", "join": "time", "min_labels": 100}})


def _live(task, tmp_path: Path, data: Path, windows: int) -> tuple[list[datetime], np.ndarray]:  # noqa: ANN001
    """The reference and ``windows`` live windows whose rows carry their time (UTC text); the times and labels."""
    write_csv(tmp_path / "ref.csv", pa.table(task.reference))
    times = [START + timedelta(seconds=i) for i in range(windows * ROWS)]
    for i in range(windows):
        window = dict(task.windows[i])
        window["ts"] = np.array([t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times[i * ROWS:(i + 1) * ROWS]])
        write_csv(data / f"part-{i}.csv", pa.table(window))
    return times, np.concatenate(task.labels[:windows])


def _stored(runner) -> dict[int, dict[str, Any]]:  # noqa: ANN001
    with runner.store.engine.connect() as connection:
        rows = connection.execute(select(Window.seq, WindowPerformance.metric, WindowPerformance.realized,
                                         WindowPerformance.labelled_rows).join(Window)).all()
    found: dict[int, dict[str, Any]] = {}
    for seq, metric, realized, labelled in rows:
        found.setdefault(seq, {"labelled": labelled})[metric] = realized
    return found


def _check(task, stored: dict[int, dict[str, Any]], labelled: np.ndarray, windows: int) -> None:  # noqa: ANN001
    for seq in range(1, windows + 1):
        mask = labelled[(seq - 1) * ROWS: seq * ROWS]
        columns, truth = task.windows[seq - 1], task.labels[seq - 1]
        assert stored[seq]["labelled"] == mask.sum()
        assert stored[seq]["accuracy"] == pytest.approx(accuracy_score(truth[mask], columns["prediction"][mask]),
                                                        abs=1e-12)
        assert stored[seq]["roc_auc"] == pytest.approx(roc_auc_score(truth[mask], columns["p1"][mask]), abs=1e-12)


def test_labels_by_time_from_files_written_in_another_zone_out_of_order_or_never(
        data: Path, tmp_path: Path, sqlite_url: str) -> None:
    task = classification(31, 2, windows=3, rows=ROWS)
    times, truth = _live(task, tmp_path, data, 3)
    order = np.random.default_rng(3).permutation(len(times))
    arriving = order[250:]                                       # a quarter of the rows is never labelled
    batches = np.array_split(arriving, 3)
    paris = timezone(timedelta(hours=2))

    def write(name: str, rows: np.ndarray) -> None:
        # the label source writes local times as text, with their offset: the same instants
        parquet.write_table(pa.table({"ts": pa.array([times[r].astimezone(paris).isoformat() for r in rows],
                                                     pa.string()), "y": truth[rows]}), labels_dir / f"{name}.parquet")

    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    write("a", batches[0])                                       # before any window: they wait for their rows
    runner = make_runner(_config({"type": "files", "options": {"path": str(labels_dir)}}), sqlite_url)
    runner.tick()
    write("b", np.concatenate([batches[1], batches[0][:40]]))    # out of order, some delivered twice
    runner.tick()
    write("c", batches[2])
    runner.tick()
    labelled = np.zeros(len(times), dtype=bool)
    labelled[arriving] = True
    stored = _stored(runner)
    _check(task, stored, labelled, 3)

    # a restart reads on from the committed cursor: nothing counted twice, even if the source repeats
    restarted = make_runner(_config({"type": "files", "options": {"path": str(labels_dir)}}), sqlite_url)
    write("d", arriving[:100])
    parquet.write_table(pa.table({"ts": ["2030-01-01T00:00:00+00:00", "not a time"], "y": [1, 0]}),
                        labels_dir / "e.parquet")
    restarted.tick()
    assert _stored(restarted) == stored
    with restarted.store.engine.connect() as connection:
        assert connection.scalar(select(LabelCursor.pending_rows)) == 1, "a time no row has waits; no time: skipped"


def test_labels_by_time_from_a_postgresql_timestamptz_column(data: Path, tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    task = classification(32, 2, windows=2, rows=ROWS)
    times, truth = _live(task, tmp_path, data, 2)
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE outcomes (seq BIGINT PRIMARY KEY, ts TIMESTAMPTZ, y BIGINT)"))
    order = np.random.default_rng(4).permutation(len(times))[:1600]

    def insert(rows: np.ndarray, start: int) -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO outcomes (seq, ts, y) VALUES (:seq, :ts, :y)"),
                               [{"seq": start + i, "ts": times[r], "y": int(truth[r])} for i, r in enumerate(rows)])

    insert(order[:900], 0)
    source = {"type": "sql", "options": {"url": postgres_url, "table": "outcomes", "cursor_column": "seq"}}
    runner = make_runner(_config(source), postgres_url)
    runner.tick()
    insert(order[900:], 900)
    runner.tick()
    labelled = np.zeros(len(times), dtype=bool)
    labelled[order] = True
    stored = _stored(runner)
    _check(task, stored, labelled, 2)
    restarted = make_runner(_config(source), postgres_url)
    restarted.tick()
    assert _stored(restarted) == stored
    engine.dispose()


def test_time_keys_without_an_offset_are_read_as_utc_like_the_others() -> None:
    """Text without an offset (what numpy and many CSV writers produce) joins the same instant as text with
    an offset, a ``Z``, or a timestamp; a value that is no time has no key."""
    import datetime

    import pyarrow as pa

    from monitor.daemon.performance import join_keys

    text = pa.chunked_array([pa.array(["2026-01-01T00:33:20.000000", "2026-01-01T02:33:20+02:00",
                                       "2026-01-01 00:33:20Z", "not a time"])])
    stamp = pa.array([datetime.datetime(2026, 1, 1, 0, 33, 20)], pa.timestamp("ns"))
    naive_only = pa.array(["2026-01-01T00:33:20"])
    expected = join_keys(stamp, True)[0]
    assert expected is not None
    assert join_keys(text, True) == [expected, expected, expected, None]
    assert join_keys(naive_only, True) == [expected]
