"""One set of default measures everywhere, every feature kind able to vote in any window, a
warning naming monitor and feature when one cannot, and ``measures: []`` refused."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.compare import compare
from monitor.config import DEFAULT_MEASURES, ConfigError, build_config
from tests.helpers import make_runner, write_csv


def monitor(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "small", "source": {"type": "files", "options": {"path": "data"}},
        "features": {"numeric": ["a"], "categorical": ["status"]}, "window": {"rows": 20},
        "reference": {"first_rows": 200},
    }
    return raw | overrides


def test_the_daemon_compare_and_the_cli_share_one_default_set() -> None:
    assert set(DEFAULT_MEASURES) >= {"ks", "chi_square"}  # a test for numeric and for categorical features
    daemon = build_config({"monitors": [monitor()]}, "test", environ={}).monitors[0]
    assert tuple(daemon.measures) == DEFAULT_MEASURES
    assert inspect.signature(compare).parameters["measures"].default == DEFAULT_MEASURES
    [option] = [p for p in main.commands["compare"].params if p.name == "measures"]
    assert option.default == ",".join(DEFAULT_MEASURES)


def categories(rows: int, seed: int, changed: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = ["maintenance", "fault"] if changed else ["ok", "idle"]
    return pa.table({"a": rng.normal(size=rows), "status": rng.choice(labels, rows)})


def test_with_the_defaults_a_categorical_change_is_flagged_in_small_windows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 20-row windows are under drift.min_rows (30): a distance such as PSI cannot vote there.
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", categories(200, 1, changed=False))
    write_csv(tmp_path / "data" / "part-2.csv", categories(60, 2, changed=True))
    config = build_config({"monitors": [monitor()]}, "test", environ={}).monitors[0]
    runner = make_runner(config, f"sqlite:///{tmp_path / 'driftd.db'}")
    runner.tick()
    windows = runner.tick().windows
    assert len(windows) == 3 and all("status" in w.drifted_features for w in windows)
    report = compare(categories(200, 1, changed=False), categories(20, 3, changed=True))
    assert report.drifted_features == ["status"]


def run_validate(tmp_path: Path, monitors: list[dict[str, Any]]) -> Any:
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'x.db'}"}, "monitors": monitors}))
    (tmp_path / "data").mkdir(exist_ok=True)
    return CliRunner().invoke(main, ["config", "validate", str(path)])


def test_validate_and_start_up_warn_of_a_feature_no_measure_can_flag(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    done = run_validate(tmp_path, [monitor(measures=["psi"]), monitor(name="kinds", measures=["ks"]),
                                   monitor(name="fine"), monitor(name="big", measures=["psi"], window={"rows": 500})])
    assert done.exit_code == 0, done.output
    warnings = [line for line in done.output.splitlines() if "warning" in line]
    assert len(warnings) == 3, done.output
    assert any("'small'" in w and "numeric feature 'a'" in w and "psi" in w and "min_rows" in w for w in warnings)
    assert any("'small'" in w and "categorical feature 'status'" in w and "chi_square" in w for w in warnings)
    assert any("'kinds'" in w and "categorical feature 'status'" in w and "no configured measure takes" in w
               for w in warnings)
    config = build_config({"monitors": [monitor(measures=["psi"])]}, "test", environ={}).monitors[0]
    with caplog.at_level(logging.WARNING, logger="driftd.engine"):
        make_runner(config, f"sqlite:///{tmp_path / 'driftd.db'}")
    assert "monitor 'small': categorical feature 'status' can never be flagged" in caplog.text


def test_an_empty_measure_list_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"monitor 'small'.*no measures"):
        build_config({"monitors": [monitor(measures=[])]}, "test", environ={})
    with pytest.raises(ConfigError, match="no measures"):
        build_config({"monitors": [monitor(measures={})]}, "test", environ={})
    with pytest.raises(ValueError, match="no measures"):
        compare({"a": np.arange(10.0)}, {"a": np.arange(10.0)}, measures=[])


def test_validate_exits_2_on_an_empty_measure_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = run_validate(tmp_path, [monitor(measures=[])])
    assert done.exit_code == 2 and "small" in done.output and "no measures" in done.output
