"""`driftd calibrate`: false alarms and power of each measure on the monitor's own reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import DriftConfig, MeasureConfig
from monitor.divergence import MeasureRegistry
from monitor.domain.calibrate import CalibrationReport, calibrate
from monitor.domain.evaluate import MeasureSetting, resolve_measures
from monitor.domain.records import NewReference
from monitor.store import Store
from monitor.store.migrate import upgrade
from tests.helpers import sample_table, write_csv


def settings(*names: str) -> list[MeasureSetting]:
    return resolve_measures({name: MeasureConfig() for name in names}, MeasureRegistry())


def gaussian(rows: int, features: int, seed: int = 0) -> tuple[pa.Table, dict[str, str]]:
    rng = np.random.default_rng(seed)
    table = pa.table({f"x{i}": rng.normal(0.0, 1.0, rows) for i in range(features)})
    return table, {name: "numeric" for name in table.column_names}


@pytest.fixture(scope="module")
def gaussian_report() -> CalibrationReport:
    table, kinds = gaussian(16_000, 3)
    return calibrate(table, kinds, settings("ks", "wasserstein"), DriftConfig(correction="bh"), [200, 5000],
                     repetitions=30, seed=1)


def test_unshifted_false_positive_rate_of_ks_is_near_alpha() -> None:
    table, kinds = gaussian(2400, 8, seed=2)
    report = calibrate(table, kinds, settings("ks"), DriftConfig(correction="bh"), [200], repetitions=80, seed=3)
    entry = report.result("ks", 200)
    assert entry.trials == 8 * 80
    assert 0.02 <= entry.false_positive_rate <= 0.08
    assert entry.window_false_positive_rate <= 0.15  # BH keeps the family-wise rate near alpha


def test_power_grows_with_the_window_size(gaussian_report: CalibrationReport) -> None:
    small, large = gaussian_report.result("ks", 200), gaussian_report.result("ks", 5000)
    assert small.detectable["mean"] is not None and large.detectable["mean"] is not None
    assert large.detectable["mean"] <= small.detectable["mean"]
    assert large.detectable["mean"] <= 0.1
    curve = dict(map(tuple, large.power["mean"]))
    assert curve[1.0] == 1.0 and list(curve.values()) == sorted(curve.values())


def test_a_knocked_out_feature_is_detected(gaussian_report: CalibrationReport) -> None:
    for size in (200, 5000):
        entry = gaussian_report.result("ks", size)
        assert entry.detectable["knockout"] is not None
        assert dict(map(tuple, entry.power["knockout"]))[1.0] == 1.0


def test_recommendation_names_a_window_size_measures_and_reasons(gaussian_report: CalibrationReport) -> None:
    assert gaussian_report.recommended_window_size in (200, 5000)
    assert gaussian_report.recommended_measures
    assert gaussian_report.notes
    assert "reweight" not in gaussian_report.result("ks", 200).detectable  # no categorical feature


def test_categorical_reweighting_is_measured() -> None:
    table = sample_table(3000, seed=4).drop_columns(["id"])
    kinds = {"a": "numeric", "b": "numeric", "c": "categorical"}
    report = calibrate(table, kinds, settings("chi_square", "psi"), DriftConfig(correction="bh"), [1000],
                       repetitions=15, seed=0)
    assert report.result("chi_square", 1000).detectable["reweight"] is not None
    assert "mean" not in report.result("chi_square", 1000).detectable


def test_window_sizes_above_half_the_sample_are_skipped_with_a_note() -> None:
    table, kinds = gaussian(1000, 1)
    report = calibrate(table, kinds, settings("ks"), DriftConfig(correction="none"), [200, 5000], repetitions=3)
    assert report.window_sizes == [200]
    assert "5000 skipped" in report.notes[0]
    with pytest.raises(ValueError, match="at most half"):
        calibrate(table, kinds, settings("ks"), DriftConfig(correction="none"), [900], repetitions=3)


def test_distances_do_not_vote_below_min_rows_as_in_the_monitor() -> None:
    # 20-row windows: PSI's noise alone crosses 0.2 in most windows, but the monitor never lets it vote there
    table, kinds = gaussian(3000, 3, seed=5)
    report = calibrate(table, kinds, settings("psi", "ks"), DriftConfig(correction="bh", min_rows=30), [20, 200],
                       repetitions=40, seed=2)
    small, large = report.result("psi", 20), report.result("psi", 200)
    assert not small.votes and small.false_positive_rate == 0.0 and small.window_false_positive_rate == 0.0
    assert all(grade is None for grade in small.detectable.values()) and small.min_effect is None
    assert large.votes and report.result("ks", 20).votes
    assert report.alarm_rate[20] <= 0.15  # the whole rule: only KS votes at 20 rows


def test_the_whole_rule_alarm_rate_counts_share_and_consecutive_windows() -> None:
    table, kinds = gaussian(1000, 3, seed=6)
    loose = calibrate(table, kinds, settings("ks"), DriftConfig(correction="none", share=0.3), [100],
                      repetitions=80, seed=4)
    strict = calibrate(table, kinds, settings("ks"), DriftConfig(correction="none", share=0.3, consecutive=2),
                       [100], repetitions=80, seed=4)
    # any of 3 features at alpha 0.05 without correction: about 1 - 0.95**3 = 14% of windows
    assert 0.07 <= loose.alarm_rate[100] <= 0.25
    assert strict.alarm_rate[100] <= 0.5 * loose.alarm_rate[100]  # two alarming windows in a row are rarer


def test_the_smallest_effect_is_in_the_measures_own_units(gaussian_report: CalibrationReport) -> None:
    from scipy.stats import norm

    for size in (200, 5000):
        entry = gaussian_report.result("ks", size)
        grade = entry.detectable["mean"]
        assert grade is not None
        # the KS D between N(0, 1) and N(g, 1) is 2Φ(g/2) - 1: the effect is that D, not the grade g
        assert entry.effect["mean"] == pytest.approx(2 * norm.cdf(grade / 2) - 1, abs=0.05 if size == 200 else 0.01)
        assert entry.min_effect == min(value for value in entry.effect.values() if value is not None)
        wasserstein = gaussian_report.result("wasserstein", size)
        if wasserstein.detectable["mean"] is not None:  # Wasserstein-1 in reference sds: the mean shift itself
            assert wasserstein.effect["mean"] == pytest.approx(wasserstein.detectable["mean"], abs=0.06)


def test_report_round_trips_through_json(gaussian_report: CalibrationReport) -> None:
    assert CalibrationReport.from_dict(json.loads(json.dumps(gaussian_report.to_dict()))) == gaussian_report


def test_the_report_is_stored_with_the_reference_version(tmp_path: Path, gaussian_report: CalibrationReport) -> None:
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    upgrade(store.engine)
    monitor_id = store.monitor_id("m")
    for rows in (10, 20):
        store.add_reference(monitor_id, NewReference(b"summary", rows, {"x0": "numeric"}, "test"))
    store.set_calibration("m", 1, gaussian_report.to_dict())
    first, second = store.references("m")
    assert CalibrationReport.from_dict(first.calibration) == gaussian_report
    assert second.calibration is None and store.active_reference(monitor_id).calibration is None


# ---- the command ------------------------------------------------------------------------

def _config(tmp_path: Path, reference: bool = True) -> Path:
    write_csv(tmp_path / "ref.csv", sample_table(3000, seed=1).drop_columns(["id"]))
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(600, seed=2))
    path = tmp_path / "driftd.yaml"
    reference_line = f"    reference: {{path: {tmp_path / 'ref.csv'}}}\n" if reference else \
        "    reference: {first_rows: 200}\n"
    path.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'driftd.db'}'}}\n"
        "monitors:\n"
        "  - name: m\n"
        f"    source: {{type: files, options: {{path: {tmp_path / 'data'}}}}}\n"
        "    features: {numeric: [a, b], categorical: [c]}\n"
        "    window: {rows: 300}\n"
        + reference_line +
        "    measures: [ks, psi, chi_square]\n")
    return path


def test_cli_calibrates_prints_and_stores(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["check", "-c", str(config)]).exit_code == 0
    result = runner.invoke(main, ["calibrate", "m", "-c", str(config), "--window-sizes", "200,1000",
                                  "--repetitions", "6"])
    assert result.exit_code == 0, result.output
    assert "Recommended: windows of" in result.output and "chi_square" in result.output
    as_json = runner.invoke(main, ["calibrate", "m", "-c", str(config), "--window-sizes", "200",
                                   "--repetitions", "4", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = CalibrationReport.from_dict(json.loads(as_json.output))
    assert report.window_sizes == [200, 300]  # the monitor's own window (300 rows) is always studied
    stored = Store(f"sqlite:///{tmp_path / 'driftd.db'}").references("m")
    assert stored[-1].active and CalibrationReport.from_dict(stored[-1].calibration) == report


def test_cli_without_reference_rows_asks_for_a_file(tmp_path: Path) -> None:
    config = _config(tmp_path, reference=False)
    result = CliRunner().invoke(main, ["calibrate", "m", "-c", str(config)])
    assert result.exit_code == 2
    assert "monitor 'm'" in result.output and "--from FILE" in result.output


def test_cli_without_an_active_reference_names_the_monitor(tmp_path: Path) -> None:
    config = _config(tmp_path, reference=False)
    reference = str(tmp_path / "ref.csv")
    result = CliRunner().invoke(main, ["calibrate", "m", "-c", str(config), "--from", reference])
    assert result.exit_code == 2 and "monitor 'm' has no active reference" in result.output


def test_cli_stores_the_reference_version_from_reference_path_first(tmp_path: Path) -> None:
    # as the daemon's first tick would: calibrate, then run, and `threshold: auto` works from the start
    config = _config(tmp_path)
    result = CliRunner().invoke(main, ["calibrate", "m", "-c", str(config), "--window-sizes", "300",
                                       "--repetitions", "2"])
    assert result.exit_code == 0, result.output
    assert "stored reference version 1 from" in result.output
    stored = Store(f"sqlite:///{tmp_path / 'driftd.db'}").references("m")
    assert [v.version for v in stored] == [1] and stored[0].active and stored[0].calibration is not None
    assert stored[0].origin == f"file:{tmp_path / 'ref.csv'}"
    assert "Time-ordered windows (the reference in file order, cut into 10 windows" in result.output


def test_cli_with_from_file_and_bad_sizes(tmp_path: Path) -> None:
    config = _config(tmp_path, reference=False)
    runner = CliRunner()
    assert runner.invoke(main, ["check", "-c", str(config)]).exit_code == 0
    reference = str(tmp_path / "ref.csv")
    bad = runner.invoke(main, ["calibrate", "m", "-c", str(config), "--from", reference, "--window-sizes", "x"])
    assert bad.exit_code == 2 and "monitor 'm'" in bad.output and "--window-sizes" in bad.output
    too_big = runner.invoke(main, ["calibrate", "m", "-c", str(config), "--from", reference,
                                   "--window-sizes", "9000", "--repetitions", "2"])
    # the monitor's own window (300 rows) is always studied, so a size too large is skipped with a note
    assert too_big.exit_code == 0 and "window sizes 9000 skipped" in too_big.output
    good = runner.invoke(main, ["calibrate", "m", "-c", str(config), "--from", reference, "--window-sizes", "300",
                                "--repetitions", "3"])
    assert good.exit_code == 0, good.output
