"""The daemon estimates a monitor's performance per window, stores it, exports it, and alerts on a drop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import generate_latest
from click.testing import CliRunner
from sqlalchemy import select

pytest.importorskip("sklearn")

from monitor.cli import main  # noqa: E402
from monitor.metrics import Metrics  # noqa: E402
from monitor.store.schema import DriftEvent, Window, WindowPerformance  # noqa: E402
from tests.helpers import make_runner, monitor_config, write_csv  # noqa: E402
from tests.performance_scenario import FEATURES, classification  # noqa: E402

PERFORMANCE = {"target": "y", "probabilities": ["p0", "p1"], "prediction": "prediction", "classes": [0, 1],
               "alert": {"drop": 0.05, "below_reference": False}}


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def _table(columns: dict[str, np.ndarray], without: tuple[str, ...] = ()) -> pa.Table:
    return pa.table({name: values for name, values in columns.items() if name not in without})


def _config(**performance: Any) -> Any:
    return monitor_config(features={"numeric": list(FEATURES)}, window={"rows": 1000}, reference={"path": "ref.csv"},
                          measures=["ks"], drift={"share": 1.0, "consecutive": 1000},
                          performance={**PERFORMANCE, **performance})


def _uncertain_rows(task) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Rows on the reference's support where the model hesitates: its accuracy there is far lower."""
    merged = {name: np.concatenate([w[name] for w in task.windows]) for name in task.windows[0]}
    keep = np.maximum(merged["p0"], merged["p1"]) < 0.8
    return {name: values[keep][:1000] for name, values in merged.items()}


def test_each_window_stores_its_estimate_and_a_drop_raises_the_state(data: Path, tmp_path: Path,
                                                                      sqlite_url: str) -> None:
    task = classification(7, 2, windows=12, rows=1000, max_shift=0.0)
    write_csv(tmp_path / "ref.csv", _table(task.reference))
    write_csv(data / "part-1.csv", _table(task.windows[0], without=("y",)))
    metrics = Metrics()
    runner = make_runner(_config(), sqlite_url, metrics)

    first = runner.tick()
    assert [w.state for w in first.windows] == ["ok"]
    estimate = first.windows[0].performance
    assert estimate is not None and estimate["reliable"] and estimate["alerts"] == []
    accuracy = next(m for m in estimate["metrics"] if m["metric"] == "accuracy")
    realized = float(np.mean(task.windows[0]["prediction"] == task.labels[0]))
    assert abs(accuracy["value"] - realized) < 0.05
    scrape = generate_latest(metrics.registry).decode()
    assert f'driftd_estimated_performance{{metric="accuracy",monitor="m"}} {accuracy["value"]}' in scrape
    assert 'driftd_estimated_performance_lower{metric="accuracy",monitor="m"}' in scrape
    assert 'driftd_estimated_performance_reliable{monitor="m"} 1.0' in scrape

    write_csv(data / "part-2.csv", _table(_uncertain_rows(task), without=("y",)))
    second = runner.tick()
    assert [w.state for w in second.windows] == ["drift"], "the estimated drop raises the state on its own"
    assert second.state == "drift", "the tick reports it too (driftd check exits 1)"
    assert second.windows[0].drift_share < 1.0, "feature drift alone stays under the configured share"
    assert "accuracy" in second.windows[0].performance["alerts"]
    with runner.store.engine.connect() as connection:
        stored = connection.execute(select(WindowPerformance.metric, WindowPerformance.estimated,
                                           WindowPerformance.alert).join(Window).where(Window.seq == 2)).all()
        event = connection.execute(select(DriftEvent.features, DriftEvent.performance_alerts)).one()
    assert {row.metric for row in stored} == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert any(row.alert for row in stored if row.metric == "accuracy")
    assert event.features == second.windows[0].drifted_features and "accuracy" in event.performance_alerts


def test_history_and_the_api_show_the_estimate(data: Path, tmp_path: Path, sqlite_url: str) -> None:
    task = classification(8, 2, windows=1, rows=1000)
    write_csv(tmp_path / "ref.csv", _table(task.reference))
    write_csv(data / "part-1.csv", _table(task.windows[0], without=("y",)))
    runner = make_runner(_config(), sqlite_url)
    runner.tick()
    page = runner.store.window_page("m", 10)
    assert {m["metric"] for m in page.items[0].performance} >= {"accuracy", "roc_auc"}
    assert page.items[0].performance[0]["realized"] is None
    config = tmp_path / "driftd.yaml"
    config.write_text(f"storage: {{url: '{sqlite_url}'}}\nmonitors:\n  - name: m\n    source: {{type: files, options: "
                      f"{{path: data}}}}\n    features: {{numeric: [x0, x1, x2, x3]}}\n    window: {{rows: 1000}}\n"
                      "    reference: {path: ref.csv}\n    performance: {target: y, probabilities: [p0, p1]}\n")
    shown = CliRunner().invoke(main, ["history", "m", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    accuracy = next(m for m in page.items[0].performance if m["metric"] == "accuracy")
    assert f"accuracy  estimated {accuracy['estimated']:.4g} [" in shown.output
    assert "realized -" in shown.output


def test_an_unusable_performance_reference_fails_the_monitor_with_its_cause(data: Path, tmp_path: Path,
                                                                            sqlite_url: str) -> None:
    task = classification(9, 2, windows=1, rows=1000)
    write_csv(tmp_path / "ref.csv", _table(task.reference, without=("y",)))
    write_csv(data / "part-1.csv", _table(task.windows[0], without=("y",)))
    runner = make_runner(_config(), sqlite_url)
    with pytest.raises(Exception, match="monitor 'm': performance: column 'y' is missing"):
        runner.tick()


def test_a_regressor_s_error_rising_past_the_reference_band_raises_the_state(data: Path, tmp_path: Path,
                                                                            sqlite_url: str) -> None:
    from tests.performance_scenario import regression

    task = regression(3, windows=10, rows=1000, max_shift=2.5)
    write_csv(tmp_path / "ref.csv", _table(task.reference))
    write_csv(data / "part-1.csv", _table(task.windows[0], without=("y",)))
    config = monitor_config(features={"numeric": list(FEATURES)}, window={"rows": 1000}, reference={"path": "ref.csv"},
                            measures=["ks"], drift={"share": 1.0, "consecutive": 1000},
                            performance={"task": "regression", "target": "y", "prediction": "prediction",
                                         "max_outside_share": 1.0, "alert": {"metrics": ["mae"]}})
    runner = make_runner(config, sqlite_url)
    first = runner.tick().windows[0]
    mae = next(m for m in first.performance["metrics"] if m["metric"] == "mae")
    realized = float(np.mean(np.abs(task.windows[0]["prediction"] - task.labels[0])))
    assert abs(mae["value"] / realized - 1) < 0.1 and first.state == "ok"
    write_csv(data / "part-2.csv", _table(task.windows[-1], without=("y",)))  # x0 moved 2.5 σ: noise grows
    last = runner.tick().windows[0]
    assert last.performance["alerts"] == ["mae"] and last.state == "drift", "a higher MAE is a drop"


def test_a_performance_section_it_cannot_use_is_a_configuration_error() -> None:
    from monitor.config import ConfigError

    base = {"target": "y", "probabilities": ["p0", "p1"]}
    for performance, message in (
            ({**base, "metrics": ["mae"]}, r"\['mae'\] are not classification metrics"),
            ({**base, "metrics": ["mape"]}, "metrics"),
            ({"target": "y"}, "performance needs the model's outputs"),
            ({**base, "task": "regression"}, "a regressor has no probabilities")):
        with pytest.raises(ConfigError, match=message):
            monitor_config(reference={"path": "ref.csv"}, performance=performance)
    with pytest.raises(ConfigError, match="performance needs labelled reference rows"):
        monitor_config(performance=base)


@pytest.mark.parametrize("seed", [8, 9, 10, 11, 12])
def test_swapped_sensors_make_the_estimate_unreliable_through_the_shift_diagnosis(
        seed: int, data: Path, tmp_path: Path, sqlite_url: str) -> None:
    # the support check is switched off (every row counts as on it): only the diagnosis can tell
    task = classification(seed, 2, windows=4, rows=1000, max_shift=0.0, swap=True)
    write_csv(tmp_path / "ref.csv", _table(task.reference))
    for i, window in enumerate(task.windows):
        write_csv(data / f"part-{i}.csv", _table(window, without=("y",)))
    runner = make_runner(_config(max_outside_share=1.0), sqlite_url)
    report = runner.tick()
    estimates = [w.performance for w in report.windows]
    assert [e["reliable"] for e in estimates] == [True, True, False, False], "windows 3 and 4 have x0, x1 swapped"
    assert all("shift diagnosis" in e["reason"] and "x0" in e["reason"] and "x1" in e["reason"]
               for e in estimates[2:])
    for estimate, window, labels in zip(estimates, task.windows, task.labels):
        accuracy = next(m for m in estimate["metrics"] if m["metric"] == "accuracy")["value"]
        if abs(accuracy - float(np.mean(window["prediction"] == labels))) > 0.05:
            assert not estimate["reliable"], "an estimate off by more than 0.05 is never shown as reliable"
    assert all(e["alerts"] == [] for e in estimates[2:]), "an unreliable estimate never alerts"


def test_which_diagnoses_make_an_estimate_unreliable() -> None:
    from monitor.daemon.performance import PerformanceWatch
    from monitor.performance import WindowEstimate

    config = monitor_config(features={"numeric": [*FEATURES, "other"]}, reference={"path": "ref.csv"},
                            model={"path": "m.pkl", "features": list(FEATURES)}, performance=PERFORMANCE)
    watch = PerformanceWatch(config, {})
    reliable = WindowEstimate(1000, 0.0, True, None)

    def swap(feature: str, like: str) -> dict[str, Any]:
        return {"feature": feature, "kind": "swap", "figures": {"looks_like": like}, "sentence": f"{feature} swap"}

    def correlation(feature: str, partner: str) -> dict[str, Any]:
        return {"feature": feature, "kind": "correlation", "figures": {"partner": partner}, "sentence": "corr"}

    for diagnoses, trusted in (
            ([swap("x0", "x1"), swap("x1", "x2")], False),          # sensors exchanged
            ([swap("x0", "x2")], True),                             # one feature looks like another: a shift
            ([correlation("x0", "x1"), correlation("x1", "x0")], False),
            ([correlation("x0", "other"), correlation("other", "x0")], True),  # the model does not read 'other'
            ([{"feature": "x0", "kind": "location", "figures": {}}], True)):
        checked = watch._concept_checked(reliable, diagnoses)
        assert checked.reliable is trusted, diagnoses
        assert trusted or "shift diagnosis" in checked.reason


def test_a_regressor_loaded_through_model_computes_its_own_predictions(data: Path, tmp_path: Path,
                                                                      sqlite_url: str) -> None:
    """No prediction column: the configured ``model:`` (a scikit-learn regressor) predicts each window, and the
    estimated MAE tracks the MAE of those predictions."""
    import pickle

    from sklearn.linear_model import LinearRegression

    from tests.performance_scenario import regression

    task = regression(5, windows=2, rows=1000)
    x_ref = np.column_stack([task.reference[name] for name in FEATURES])
    model = LinearRegression().fit(x_ref, task.reference["y"])
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    path.chmod(0o600)
    reference = {name: task.reference[name] for name in (*FEATURES, "y")}
    write_csv(tmp_path / "ref.csv", _table(reference))
    write_csv(data / "part-1.csv", _table(task.windows[0], without=("y", "prediction")))
    config = monitor_config(features={"numeric": list(FEATURES)}, window={"rows": 1000}, reference={"path": "ref.csv"},
                            measures=["ks"], drift={"share": 1.0, "consecutive": 1000},
                            model={"path": str(path), "features": list(FEATURES)},
                            performance={"task": "regression", "target": "y", "max_outside_share": 1.0,
                                         "alert": {"metrics": ["mae"]}})
    window = make_runner(config, sqlite_url).tick().windows[0]
    mae = next(m for m in window.performance["metrics"] if m["metric"] == "mae")
    x = np.column_stack([task.windows[0][name] for name in FEATURES])
    realized = float(np.mean(np.abs(model.predict(x) - task.labels[0])))
    assert abs(mae["value"] / realized - 1) < 0.1, (mae, realized)
