"""Time-ordered calibration and ``threshold: auto``, through `driftd calibrate` and the daemon's own tick.

The series is ``tests/plant_log.py``: a sensor log with a daily cycle, a weekly rhythm and slow
autocorrelated wandering, and one documented change (a bearing wears from day 70: vibration up by
half). The reference is its first 6 weeks; the 4 weeks after them are the stable segment; the
change follows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import DriftConfig, FeaturesConfig, MeasureConfig, MonitorConfig, WindowConfig, load_config
from monitor.daemon.engine import MonitorError
from monitor.divergence import MeasureRegistry
from monitor.domain.blocked import MIN_WINDOWS, blocked_calibration
from monitor.domain.calibrate import CalibrationReport
from monitor.domain.evaluate import resolve_measures
from monitor.domain.records import NewReference
from monitor.store import Store
from tests.helpers import make_runner, write_csv
from tests.plant_log import CHANGE_DAY, REFERENCE_DAYS, ROWS_PER_DAY, STABLE_DAYS, plant_log

FEATURES = ["temperature", "load", "vibration"]


def _monitor(tmp_path: Path, name: str, measures: dict[str, Any], window: str = "{span: 1d, timestamp: ts}") -> Path:
    """A files monitor over the plant log's days after the reference; the reference is the first 6 weeks."""
    log = plant_log()
    if not (tmp_path / "ref.csv").exists():
        write_csv(tmp_path / "ref.csv", log.slice(0, REFERENCE_DAYS * ROWS_PER_DAY))
        write_csv(tmp_path / "data" / "part-1.csv", log.slice(REFERENCE_DAYS * ROWS_PER_DAY))
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / name}.db'}}\n"
        "monitors:\n"
        f"  - name: {name}\n"
        f"    source: {{type: files, options: {{path: {tmp_path / 'data'}}}}}\n"
        f"    features: {{numeric: {json.dumps(FEATURES)}}}\n"
        f"    window: {window}\n"
        f"    reference: {{path: {tmp_path / 'ref.csv'}}}\n"
        "    max_rows: 100000\n"
        f"    measures: {json.dumps(measures)}\n"
        "    drift: {correction: bonferroni, share: 0.3, consecutive: 1}\n")
    return path


def _calibrate(config: Path, name: str) -> CalibrationReport:
    result = CliRunner().invoke(main, ["calibrate", name, "-c", str(config), "--window-sizes", "144",
                                       "--repetitions", "10", "--json"])
    assert result.exit_code == 0, result.output
    return CalibrationReport.from_dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CalibrationReport]:
    """A database where `driftd calibrate` stored monitor 'auto''s reference version 1 and its calibration."""
    folder = tmp_path_factory.mktemp("calibrated")
    report = _calibrate(_monitor(folder, "auto", {"ks": {"threshold": "auto"}}), "auto")
    return folder / "auto.db", report


def _calibrated_monitor(tmp_path: Path, calibrated: tuple[Path, CalibrationReport], measures: dict[str, Any],
                        **options: str) -> Path:
    """Monitor 'auto' on a copy of the calibrated database."""
    for suffix in ("", "-wal", "-shm"):  # the store runs SQLite in WAL mode
        if Path(f"{calibrated[0]}{suffix}").exists():
            shutil.copy(f"{calibrated[0]}{suffix}", tmp_path / f"auto.db{suffix}")
    return _monitor(tmp_path, "auto", measures, **options)


def _states(config: Path) -> list[str]:
    """Every window's state as the daemon's tick decides it, oldest first."""
    loaded = load_config(config)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    windows = runner.tick().windows
    assert len(windows) == STABLE_DAYS + 13  # the last day's window stays open, waiting for a later row
    return [w.state for w in windows]


def _alarm_rate(states: list[str]) -> float:
    return sum(state == "drift" for state in states) / len(states)


def test_on_an_autocorrelated_series_auto_thresholds_halve_false_alarms_and_still_catch_the_change(
        tmp_path: Path, calibrated: tuple[Path, CalibrationReport]) -> None:
    baseline = _states(_monitor(tmp_path, "baseline", {"ks": {"threshold": 0.05}}))
    auto = _states(_calibrated_monitor(tmp_path, calibrated, {"ks": {"threshold": "auto"}}))
    report = calibrated[1]

    stable = slice(0, STABLE_DAYS)
    change = slice(CHANGE_DAY - REFERENCE_DAYS, None)
    assert _alarm_rate(baseline[stable]) >= 0.5  # KS + Bonferroni: the series' own wandering alarms
    assert _alarm_rate(auto[stable]) <= 0.5 * _alarm_rate(baseline[stable])
    assert "drift" in auto[change][:3], "the documented change is detected within 3 windows"

    # shuffling hides what the time-ordered windows show, and the live stable segment confirms
    blocked = report.blocked
    assert blocked is not None and blocked.windows == REFERENCE_DAYS - 1 and blocked.window_rows == ROWS_PER_DAY
    assert report.alarm_rate[ROWS_PER_DAY] <= 0.2
    assert blocked.alarm_rate is not None and blocked.alarm_rate <= 0.2  # ks is auto: its own thresholds
    assert blocked.measure("ks").window_fpr is not None and blocked.measure("ks").window_fpr >= 0.5
    assert blocked.measure("ks").holdout_auto_window_fpr is not None
    assert blocked.measure("ks").holdout_auto_window_fpr <= 0.2
    json.dumps(report.to_dict(), allow_nan=False)  # storable in PostgreSQL's JSON, which has no NaN or Infinity


def test_the_auto_threshold_of_each_feature_is_the_one_the_monitor_applies(
        tmp_path: Path, calibrated: tuple[Path, CalibrationReport]) -> None:
    config = _calibrated_monitor(tmp_path, calibrated, {"ks": {"threshold": "auto"}})
    report = calibrated[1]
    loaded = load_config(config)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    window = runner.tick().windows[0]
    thresholds = report.blocked.measure("ks").thresholds
    assert set(thresholds) == set(FEATURES)
    for result in window.results:
        entry = thresholds[result.feature]
        assert result.threshold == entry.threshold
        assert entry.threshold == pytest.approx(entry.mean + 3 * entry.sd)
        assert result.drifted == (result.value > entry.threshold)


def test_without_a_calibration_the_monitor_evaluates_nothing_and_says_why(tmp_path: Path) -> None:
    config = _monitor(tmp_path, "auto", {"ks": {"threshold": "auto"}, "psi": {}})
    loaded = load_config(config)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    with pytest.raises(MonitorError) as raised:
        runner.tick()
    message = str(raised.value)
    assert "monitor 'auto'" in message and "'ks'" in message and "threshold: auto" in message
    assert "reference version 1 has no calibration" in message and "driftd calibrate auto" in message
    assert runner.store.load_progress(runner.monitor_id, recent=1).position is None  # no row was consumed

    _calibrate(config, "auto")
    assert runner.tick(retry_now=True).windows, "once calibrated, the same monitor evaluates its windows"


def test_a_new_calibration_of_the_same_version_is_taken_up_by_the_running_monitor(
        tmp_path: Path, calibrated: tuple[Path, CalibrationReport]) -> None:
    config = _calibrated_monitor(tmp_path, calibrated, {"ks": {"threshold": "auto"}})
    log = plant_log()
    first_days = (REFERENCE_DAYS + 10) * ROWS_PER_DAY
    write_csv(tmp_path / "data" / "part-1.csv", log.slice(REFERENCE_DAYS * ROWS_PER_DAY,
                                                          first_days - REFERENCE_DAYS * ROWS_PER_DAY))
    loaded = load_config(config)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    before = runner.tick().windows
    assert before and all(r.threshold > 0.1 for w in before for r in w.results)
    stored = runner.store.active_reference(runner.monitor_id).calibration
    for entry in stored["blocked"]["measures"]:
        for threshold in entry["thresholds"].values():
            threshold["threshold"] = 0.01  # as if calibrated again with other settings
    runner.store.set_calibration("auto", 1, stored)
    write_csv(tmp_path / "data" / "part-2.csv", log.slice(first_days))
    after = runner.tick().windows
    assert after and all(r.threshold == 0.01 and r.drifted for w in after for r in w.results)


def test_a_new_reference_version_needs_a_new_calibration(tmp_path: Path,
                                                        calibrated: tuple[Path, CalibrationReport]) -> None:
    config = _calibrated_monitor(tmp_path, calibrated, {"ks": {"threshold": "auto"}})
    loaded = load_config(config)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    assert runner.tick().windows
    stored = runner.store.active_reference(runner.monitor_id)
    runner.store.add_reference(runner.monitor_id, NewReference(stored.summary, stored.rows, stored.features, "test"))
    with pytest.raises(MonitorError, match="reference version 2 has no calibration"):
        runner.tick(retry_now=True)


def test_a_calibration_for_other_windows_is_refused(tmp_path: Path,
                                                   calibrated: tuple[Path, CalibrationReport]) -> None:
    other = _calibrated_monitor(tmp_path, calibrated, {"ks": {"threshold": "auto"}}, window="{rows: 100}")
    loaded = load_config(other)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    with pytest.raises(MonitorError, match="calibrated for windows of 86400 s of 'ts' and the monitor cuts "
                                           "windows of 100 rows"):
        runner.tick()


def test_a_measure_left_out_of_the_calibration_is_named(tmp_path: Path,
                                                       calibrated: tuple[Path, CalibrationReport]) -> None:
    wider = _calibrated_monitor(tmp_path, calibrated, {"ks": {"threshold": "auto"},
                                                       "wasserstein": {"threshold": "auto"}})
    loaded = load_config(wider)
    runner = make_runner(loaded.monitors[0], loaded.storage.url)
    with pytest.raises(MonitorError, match="measure 'wasserstein' is not in the calibration of reference version 1"):
        runner.tick()


# ---- the time-ordered study on its own ----------------------------------------------------

def _ar1(rows: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    series = np.empty(rows)
    series[0] = rng.normal()
    for row in range(1, rows):
        series[row] = phi * series[row - 1] + rng.normal() * np.sqrt(1 - phi * phi)
    return series


def test_blocked_windows_see_autocorrelation_that_shuffled_rows_hide() -> None:
    table = pa.table({"x": _ar1(6000, 0.995, seed=1), "y": _ar1(6000, 0.0, seed=2)})
    settings = resolve_measures({"ks": MeasureConfig()}, MeasureRegistry())
    blocked = blocked_calibration(table, FeaturesConfig(numeric=["x", "y"]), settings, DriftConfig(correction="none"),
                                  WindowConfig(rows=200), bins=10, max_reference_rows=100_000)
    assert blocked.windows == 30 and blocked.ordered_by == "file order"
    ks = blocked.measure("ks")
    assert ks.window_fpr is not None and ks.window_fpr >= 0.8  # x wanders: its windows differ from the rest
    # y has no memory: its windows behave like random samples, its threshold is near KS's own noise
    assert ks.thresholds["y"].threshold < 0.5 * ks.thresholds["x"].threshold
    shuffled_order = pa.table({"x": np.random.default_rng(3).permutation(table.column("x").to_numpy()),
                               "y": table.column("y")})
    shuffled = blocked_calibration(shuffled_order, FeaturesConfig(numeric=["x", "y"]), settings,
                                   DriftConfig(correction="none"), WindowConfig(rows=200), bins=10,
                                   max_reference_rows=100_000)
    assert shuffled.measure("ks").window_fpr <= 0.2


def test_the_timestamp_orders_the_reference_not_the_file() -> None:
    series = _ar1(4000, 0.995, seed=4)
    shuffle = np.random.default_rng(5).permutation(4000)
    table = pa.table({"ts": np.arange(4000)[shuffle], "x": series[shuffle]})
    settings = resolve_measures({"ks": MeasureConfig()}, MeasureRegistry())
    features = FeaturesConfig(numeric=["x"])
    by_time = blocked_calibration(table, features, settings, DriftConfig(), WindowConfig(rows=200, timestamp="ts"),
                                  bins=10, max_reference_rows=100_000)
    by_file = blocked_calibration(table, features, settings, DriftConfig(), WindowConfig(rows=200),
                                  bins=10, max_reference_rows=100_000)
    assert by_time.ordered_by == "timestamp column 'ts'" and by_file.ordered_by == "file order"
    assert by_time.measure("ks").window_fpr >= 0.8  # the series wanders: its windows differ from the rest
    assert by_file.measure("ks").window_fpr <= 0.3  # the file's order is shuffled: windows are random samples


def test_too_short_a_reference_gives_no_thresholds_and_says_so(tmp_path: Path) -> None:
    table = pa.table({"x": np.random.default_rng(6).normal(size=1000)})
    settings = resolve_measures({"ks": MeasureConfig(threshold="auto")}, MeasureRegistry())
    blocked = blocked_calibration(table, FeaturesConfig(numeric=["x"]), settings, DriftConfig(),
                                  WindowConfig(rows=200), bins=10, max_reference_rows=100_000)
    assert blocked.windows == 5 < MIN_WINDOWS
    assert blocked.measure("ks").thresholds == {}
    assert "5 complete windows" in blocked.notes[0]
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    store.prepare()
    config = MonitorConfig.model_validate({
        "name": "m", "source": {"type": "files", "options": {"path": str(tmp_path)}},
        "features": {"numeric": ["x"]}, "window": {"rows": 200}, "measures": {"ks": {"threshold": "auto"}}})
    from monitor.domain.thresholds import CalibrationMissing, bind_auto_thresholds
    with pytest.raises(CalibrationMissing, match="no 'ks' threshold for 'x' .*5 complete windows"):
        bind_auto_thresholds(settings, {"blocked": blocked.to_dict()}, 1, config.window, {"x": "numeric"}, "m")


def test_config_validate_says_what_auto_needs(tmp_path: Path) -> None:
    config = _monitor(tmp_path, "auto", {"ks": {"threshold": "auto"}, "psi": {}})
    result = CliRunner().invoke(main, ["config", "validate", str(config)])
    assert result.exit_code == 0, result.output
    assert "monitor 'auto': measure(s) 'ks' have threshold: auto" in result.stderr
    assert "`driftd calibrate auto`" in result.stderr


def test_compare_refuses_auto_without_a_calibration() -> None:
    from monitor.compare import compare

    table = pa.table({"x": np.arange(100.0)})
    with pytest.raises(ValueError, match="'ks': threshold 'auto' takes a monitor's calibration"):
        compare(table, table, measures={"ks": {"threshold": "auto"}})
