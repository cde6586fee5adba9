"""Realized performance: late labels joined by key through real sources, counted once, equal to scikit-learn's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

pytest.importorskip("sklearn")

from sklearn.metrics import accuracy_score, roc_auc_score  # noqa: E402

from monitor.metrics import Metrics  # noqa: E402
from monitor.store.schema import LabelCursor, Window, WindowPerformance  # noqa: E402
from tests.helpers import make_runner, monitor_config, write_csv  # noqa: E402
from tests.performance_scenario import FEATURES, classification  # noqa: E402

ROWS = 1000


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def _config(source: dict[str, Any], **labels: Any) -> Any:
    return monitor_config(
        features={"numeric": list(FEATURES)}, window={"rows": ROWS}, reference={"path": "ref.csv"}, measures=["ks"],
        performance={"target": "y", "probabilities": ["p0", "p1"], "prediction": "prediction", "classes": [0, 1],
                     "labels": {"source": source, "key": "id", "min_labels": 100, **labels}})


def _live(task, tmp_path: Path, data: Path, windows: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Write the reference and ``windows`` live windows (ids 0…, no labels); the ids and true labels."""
    write_csv(tmp_path / "ref.csv", pa.table(task.reference))
    ids, labels = [], []
    for i in range(windows):
        window = {k: v for k, v in task.windows[i].items()}
        window["id"] = np.arange(i * ROWS, (i + 1) * ROWS)
        write_csv(data / f"part-{i}.csv", pa.table(window))
        ids.append(window["id"])
        labels.append(task.labels[i])
    return np.concatenate(ids), np.concatenate(labels)


def _stored(runner) -> dict[int, dict[str, Any]]:  # noqa: ANN001
    with runner.store.engine.connect() as connection:
        rows = connection.execute(select(Window.seq, WindowPerformance.metric, WindowPerformance.realized,
                                         WindowPerformance.labelled_rows).join(Window)).all()
    found: dict[int, dict[str, Any]] = {}
    for seq, metric, realized, labelled in rows:
        found.setdefault(seq, {"labelled": labelled})[metric] = realized
    return found


def _expected(task, window: int, labelled: np.ndarray) -> dict[str, float]:  # noqa: ANN001
    columns = task.windows[window]
    truth, guess = task.labels[window][labelled], columns["prediction"][labelled]
    return {"accuracy": accuracy_score(truth, guess), "roc_auc": roc_auc_score(truth, columns["p1"][labelled])}


def test_late_labels_from_files_arrive_out_of_order_or_never_and_are_counted_once(
        data: Path, tmp_path: Path, sqlite_url: str) -> None:
    task = classification(11, 2, windows=3, rows=ROWS)
    ids, truth = _live(task, tmp_path, data, 3)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ids))
    never = order[:300]                        # 10 % of the rows are never labelled
    arriving = order[300:]
    batches = np.array_split(arriving, 4)      # out of order, across the windows
    labels_dir = tmp_path / "labels"
    # the first batch of labels arrives before any window exists: it waits for its rows
    write_csv(labels_dir / "a.csv", pa.table({"id": ids[batches[0]], "y": truth[batches[0]]}))
    metrics = Metrics()
    source = {"type": "files", "options": {"path": str(labels_dir)}}
    runner = make_runner(_config(source), sqlite_url, metrics)
    runner.tick()
    for name, batch in zip("bcd", batches[1:]):
        duplicated = np.concatenate([batch, batches[0][:50]])  # a source that delivers some labels twice
        write_csv(labels_dir / f"{name}.csv", pa.table({"id": ids[duplicated],
                                                        "y": truth[duplicated]}))
        runner.tick()
    stored = _stored(runner)
    labelled_mask = np.zeros(len(ids), dtype=bool)
    labelled_mask[arriving] = True
    for seq in (1, 2, 3):
        in_window = labelled_mask[(seq - 1) * ROWS: seq * ROWS]
        assert stored[seq]["labelled"] == in_window.sum()
        expected = _expected(task, seq - 1, in_window)
        assert stored[seq]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
        assert stored[seq]["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)
    scrape = generate_latest(metrics.registry).decode()
    assert f'driftd_realized_performance{{metric="accuracy",monitor="m"}} {stored[3]["accuracy"]}' in scrape

    # a restart reads on from the committed cursor; nothing is counted again, even if the source repeats
    restarted = make_runner(_config(source), sqlite_url)
    orphan = np.array([10 ** 9])  # a label whose row never arrives: it waits, counted nowhere
    write_csv(labels_dir / "e.csv", pa.table({"id": np.concatenate([ids[arriving[:200]], orphan]),
                                              "y": np.concatenate([truth[arriving[:200]], [1]])}))
    restarted.tick()
    restarted.tick()
    assert _stored(restarted) == stored
    with restarted.store.engine.connect() as connection:
        assert connection.scalar(select(LabelCursor.pending_rows)) == 1


def test_labels_from_postgresql_join_by_id(data: Path, tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    task = classification(12, 2, windows=2, rows=ROWS)
    ids, truth = _live(task, tmp_path, data, 2)
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE labels (seq BIGINT PRIMARY KEY, id BIGINT, y BIGINT)"))
    order = np.random.default_rng(1).permutation(len(ids))[: 1500]

    def insert(rows: np.ndarray, start: int) -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO labels (seq, id, y) VALUES (:seq, :id, :y)"),
                               [{"seq": start + i, "id": int(ids[r]), "y": int(truth[r])} for i, r in enumerate(rows)])

    insert(order[:700], 0)
    source = {"type": "sql", "options": {"url": postgres_url, "table": "labels", "cursor_column": "seq"}}
    runner = make_runner(_config(source), postgres_url)
    runner.tick()
    insert(order[700:], 700)
    runner.tick()
    stored = _stored(runner)
    labelled_mask = np.zeros(len(ids), dtype=bool)
    labelled_mask[order] = True
    for seq in (1, 2):
        in_window = labelled_mask[(seq - 1) * ROWS: seq * ROWS]
        assert stored[seq]["labelled"] == in_window.sum()
        assert stored[seq]["accuracy"] == pytest.approx(_expected(task, seq - 1, in_window)["accuracy"], abs=1e-12)
    engine.dispose()


def test_a_failing_label_source_is_logged_and_the_windows_go_on(data: Path, tmp_path: Path, sqlite_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    task = classification(13, 2, windows=2, rows=ROWS)
    _live(task, tmp_path, data, 1)
    source = {"type": "sql", "options": {"url": f"sqlite:///{tmp_path / 'labels.db'}", "table": "missing",
                                         "cursor_column": "seq"}}
    runner = make_runner(_config(source), sqlite_url)
    report = runner.tick()
    assert [w.seq for w in report.windows] == [1] and runner.problem is None
    assert "labels not" in caplog.text
    assert _stored(runner)[1]["labelled"] is None or _stored(runner)[1]["labelled"] == 0


def test_a_label_source_that_cannot_be_built_names_the_monitor_and_the_cause(data: Path, tmp_path: Path,
                                                                               sqlite_url: str) -> None:
    from monitor.daemon.errors import MonitorError

    task = classification(14, 2, windows=1, rows=ROWS)
    _live(task, tmp_path, data, 1)
    with pytest.raises(MonitorError, match="monitor 'm': performance.labels.source: .*unknown connector type 'nope'"):
        make_runner(_config({"type": "nope"}), sqlite_url)


def test_a_label_column_that_fills_in_later_in_the_same_table_is_read_by_a_second_source(
        data: Path, tmp_path: Path, postgres_url: str) -> None:
    """The live rows and their labels in ONE table: the label source reads it again by the time each label
    was written (a column set with the label), so each label is read once, whatever its row's place."""
    from sqlalchemy import create_engine, text

    task = classification(15, 2, windows=2, rows=ROWS)
    write_csv(tmp_path / "ref.csv", pa.table(task.reference))
    engine = create_engine(postgres_url)
    names = [*FEATURES, "p0", "p1"]
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE scored (seq BIGINT PRIMARY KEY, id BIGINT, "
                                f"{', '.join(f'{n} DOUBLE PRECISION' for n in names)}, prediction BIGINT, "
                                "y BIGINT, labelled_at TIMESTAMPTZ)"))
        rows = [{"seq": w * ROWS + i, "id": w * ROWS + i, "prediction": int(task.windows[w]["prediction"][i]),
                 **{n: float(task.windows[w][n][i]) for n in names}} for w in range(2) for i in range(ROWS)]
        connection.execute(text(f"INSERT INTO scored (seq, id, {', '.join(names)}, prediction) VALUES "
                                f"(:seq, :id, {', '.join(':' + n for n in names)}, :prediction)"), rows)
    truth = np.concatenate(task.labels[:2])
    order = np.random.default_rng(5).permutation(2 * ROWS)
    first, second = order[:700], order[700:1500]  # out of order across both windows; 500 never labelled

    def label(batch: np.ndarray) -> None:
        with engine.begin() as connection:
            connection.execute(text("UPDATE scored SET y = :y, labelled_at = now() WHERE seq = :seq"),
                               [{"seq": int(r), "y": int(truth[r])} for r in batch])

    live = {"type": "sql", "options": {"url": postgres_url, "table": "scored", "cursor_column": "seq",
                                       "columns": ["seq", "id", *names, "prediction"]}}
    labels = {"type": "sql", "options": {"url": postgres_url, "table": "scored", "cursor_column": "labelled_at",
                                         "tiebreaker_column": "seq", "columns": ["labelled_at", "seq", "id", "y"]}}
    config = _config(labels)
    config = config.model_copy(update={"source": config.source.model_copy(
        update={"type": "sql", "options": live["options"]})})
    label(first)                       # some labels are written before the daemon reads the rows
    runner = make_runner(config, postgres_url)
    runner.tick()
    label(second)
    runner.tick()
    stored = _stored(runner)
    labelled = np.zeros(2 * ROWS, dtype=bool)
    labelled[order[:1500]] = True
    for seq in (1, 2):
        in_window = labelled[(seq - 1) * ROWS: seq * ROWS]
        assert stored[seq]["labelled"] == in_window.sum()
        assert stored[seq]["accuracy"] == pytest.approx(_expected(task, seq - 1, in_window)["accuracy"], abs=1e-12)
    restarted = make_runner(config, postgres_url)
    restarted.tick()
    assert _stored(restarted) == stored, "a restart reads no label twice"
    engine.dispose()
