"""Alerts on realized performance: a window whose labels show a drop raises the state and starts ONE event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

pytest.importorskip("sklearn")

from monitor.config import ConfigError  # noqa: E402
from monitor.metrics import Metrics  # noqa: E402
from monitor.store.schema import DriftEvent, Window, WindowPerformance  # noqa: E402
from tests.helpers import make_runner, monitor_config, write_csv  # noqa: E402
from tests.performance_scenario import FEATURES, classification  # noqa: E402

ROWS = 1000


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def _config(labels_dir: Path, **alert: Any) -> Any:
    return monitor_config(
        features={"numeric": list(FEATURES)}, window={"rows": ROWS}, reference={"path": "ref.csv"}, measures=["ks"],
        drift={"share": 1.0, "consecutive": 1000},
        performance={"target": "y", "probabilities": ["p0", "p1"], "prediction": "prediction", "classes": [0, 1],
                     "metrics": ["accuracy", "roc_auc"],
                     "alert": {"drop": 0.05, "metrics": ["accuracy"], "realized": True, **alert},
                     "labels": {"source": {"type": "files", "options": {"path": str(labels_dir)}}, "key": "id",
                                "min_labels": 100}})


def _events(runner) -> list[Any]:  # noqa: ANN001
    with runner.store.engine.connect() as connection:
        return connection.execute(select(Window.seq, DriftEvent.realized_alerts, DriftEvent.performance_alerts)
                                  .join(Window, DriftEvent.window_id == Window.id)).all()


def _stored(runner) -> dict[tuple[int, str], Any]:  # noqa: ANN001
    with runner.store.engine.connect() as connection:
        rows = connection.execute(select(Window.seq, WindowPerformance.metric, WindowPerformance.estimated,
                                         WindowPerformance.realized, WindowPerformance.realized_alert)
                                  .join(Window)).all()
    return {(row.seq, row.metric): row for row in rows}


def test_a_realized_drop_raises_the_state_and_starts_one_event_across_restarts(
        data: Path, tmp_path: Path, sqlite_url: str) -> None:
    task = classification(21, 2, windows=3, rows=ROWS, max_shift=0.0)
    write_csv(tmp_path / "ref.csv", pa.table(task.reference))
    ids = []
    for i in range(3):
        window = {k: v for k, v in task.windows[i].items()}
        window["id"] = np.arange(i * ROWS, (i + 1) * ROWS)
        ids.append(window["id"])
        write_csv(data / f"part-{i}.csv", pa.table(window))
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    metrics = Metrics()
    runner = make_runner(_config(labels_dir), sqlite_url, metrics)
    first = runner.tick()
    assert [w.state for w in first.windows] == ["ok"] * 3 and first.state == "ok", "the estimate alone is fine"

    # window 1's labels are the truth; window 2's are flipped (the concept changed: the model is wrong)
    flipped = 1 - task.labels[1]
    write_csv(labels_dir / "a.csv", pa.table({"id": np.concatenate([ids[0], ids[1][:800]]),
                                              "y": np.concatenate([task.labels[0], flipped[:800]])}))
    second = runner.tick()
    assert second.state == "drift", "the realized drop raises the monitor's state in the tick that joined it"
    stored = _stored(runner)
    assert not stored[(1, "accuracy")].realized_alert and stored[(2, "accuracy")].realized_alert
    assert not stored[(2, "roc_auc")].realized_alert, "alert.metrics limits the realized alert too"
    realized = float(np.mean(task.windows[1]["prediction"][:800] == flipped[:800]))
    assert stored[(2, "accuracy")].realized == pytest.approx(realized, abs=1e-12)
    assert _events(runner) == [(2, ["accuracy"], None)], "the event names the realized drop, once"
    scrape = generate_latest(metrics.registry).decode()
    assert 'driftd_realized_performance_alert{metric="accuracy",monitor="m"} 1.0' in scrape
    assert 'driftd_monitor_state{monitor="m"} 2.0' in scrape
    error = stored[(2, "accuracy")].estimated - stored[(2, "accuracy")].realized
    assert f'driftd_performance_estimation_error{{metric="accuracy",monitor="m"}} {error}' in scrape

    # more of window 2's labels arrive: its realized metrics are updated, no second event
    write_csv(labels_dir / "b.csv", pa.table({"id": ids[1][800:], "y": flipped[800:]}))
    assert runner.tick().state == "drift"
    assert len(_events(runner)) == 1

    # a restart keeps the raised state and starts no event again, even if the source repeats the labels
    restarted = make_runner(_config(labels_dir), sqlite_url, Metrics())
    write_csv(labels_dir / "c.csv", pa.table({"id": ids[1][:500], "y": flipped[:500]}))
    assert restarted.tick().state == "drift", "the state is reloaded from the stored realized alerts"
    assert restarted.metrics.snapshot("m").state_code == 2
    assert len(_events(restarted)) == 1

    # the next window's labels show no drop: the latest realized window clears the state
    write_csv(labels_dir / "d.csv", pa.table({"id": ids[2], "y": task.labels[2]}))
    assert restarted.tick().state == "ok"
    assert len(_events(restarted)) == 1
    assert restarted.metrics.snapshot("m").state_code == 0


def test_without_alert_realized_labels_never_raise_the_state(data: Path, tmp_path: Path, sqlite_url: str) -> None:
    task = classification(22, 2, windows=1, rows=ROWS, max_shift=0.0)
    write_csv(tmp_path / "ref.csv", pa.table(task.reference))
    write_csv(data / "part-0.csv", pa.table({**task.windows[0], "id": np.arange(ROWS)}))
    labels_dir = tmp_path / "labels"
    write_csv(labels_dir / "a.csv", pa.table({"id": np.arange(ROWS), "y": 1 - task.labels[0]}))
    runner = make_runner(_config(labels_dir, realized=False), sqlite_url)
    assert runner.tick().state == "ok"
    assert _events(runner) == [] and not _stored(runner)[(1, "accuracy")].realized_alert


def test_alert_realized_without_labels_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="alert.realized needs labels"):
        monitor_config(reference={"path": "ref.csv"}, performance={
            "target": "y", "probabilities": ["p0", "p1"], "alert": {"realized": True}})
