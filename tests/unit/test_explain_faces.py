"""The shift diagnosis of a running monitor: stored with its window, in the API, the CLI, events and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.csv
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from monitor.cli import main
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.domain.events import drift_payload, window_payload
from monitor.http.api import build_api
from monitor.http.server import API_PREFIX, create_app
from monitor.plugins import PluginManager
from monitor.store.migrate import upgrade
from tests.explain_scenario import CATEGORICAL, NUMERIC, sensors


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    pyarrow.csv.write_csv(sensors(np.random.default_rng(1), 2_000, drifted=False), data / "part-1.csv")
    pyarrow.csv.write_csv(sensors(np.random.default_rng(2), 1_000, drifted=True), data / "part-2.csv")
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "monitors": [{
        "name": "plant", "source": {"type": "files", "options": {"path": str(data)}},
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL}, "window": {"rows": 1_000},
        "reference": {"first_rows": 2_000}, "schedule": {"interval": "1h"}}]}))
    return path


@pytest.fixture
def daemon(config_path: Path) -> Iterator[Daemon]:
    running = Daemon(load_config(config_path), PluginManager(load_entry_points=False))
    upgrade(running.store.engine)
    running.prepare()
    running.tick_all()  # the reference
    running.tick_all()  # the drifted window
    yield running
    running.stop()


def test_the_api_serves_a_windows_diagnoses(daemon: Daemon) -> None:
    client = TestClient(create_app(daemon.metrics, daemon.readiness, api=build_api(daemon)))
    answer = client.get(API_PREFIX + "/monitors/plant/windows/1")
    assert answer.status_code == 200, answer.text
    window = answer.json()
    kinds = {d["feature"]: d["kind"] for d in window["diagnoses"]}
    assert kinds["pressure"] == "swap" and kinds["status"] == "new_category", kinds
    assert "pressure: values now look like humidity's (swap?)" in [d["sentence"] for d in window["diagnoses"]]
    assert client.get(API_PREFIX + "/monitors/plant/windows/9").status_code == 404
    spec = client.get(API_PREFIX + "/openapi.json").json()
    assert "diagnoses" in spec["components"]["schemas"]["Window"]["properties"]


def test_the_metric_names_each_features_kind(daemon: Daemon) -> None:
    found = {}
    for family in text_string_to_metric_families(generate_latest(daemon.metrics.registry).decode()):
        for sample in family.samples:
            if sample.name == "driftd_feature_shift_kind":
                found[sample.labels["feature"], sample.labels["kind"]] = sample.value
    assert found[("temperature", "location")] == 1.0
    assert found[("vibration", "scale")] == 1.0
    assert found[("status", "new_category")] == 1.0
    assert not any(feature in ("rpm", "torque", "mode") for feature, _ in found)


def test_history_explain_says_what_changed(daemon: Daemon, config_path: Path) -> None:
    result = CliRunner().invoke(main, ["history", "-c", str(config_path), "plant", "--explain"])
    assert result.exit_code == 0, result.output
    assert "pressure: values now look like humidity's (swap?)  [swap]" in result.output
    assert "status: new category 'fault' in 1" in result.output
    plain = CliRunner().invoke(main, ["history", "-c", str(config_path), "plant"])
    assert "swap" not in plain.output


def test_the_events_carry_the_diagnoses(daemon: Daemon) -> None:
    record = daemon.runners["plant"].store.windows("plant", 1)[0]
    assert record.diagnoses
    from monitor.domain.records import WindowRecord
    window = WindowRecord(1, 1, 10, None, None, "drift", 0.5, ["x"], [], [], True,
                          diagnoses=[{"feature": "x", "kind": "location", "figures": {"shift_sd": float("nan")},
                                      "sentence": "x: mean up"}])
    assert window_payload(window)["diagnoses"][0]["figures"] == {"shift_sd": None}
    assert drift_payload(window, 7)["diagnoses"][0]["kind"] == "location"


def test_explain_can_be_turned_off(config_path: Path) -> None:
    document = yaml.safe_load(config_path.read_text())
    document["monitors"][0]["explain"] = {"enabled": False}
    config_path.write_text(yaml.safe_dump(document))
    running = Daemon(load_config(config_path), PluginManager(load_entry_points=False))
    try:
        upgrade(running.store.engine)
        running.prepare()
        running.tick_all()
        running.tick_all()
        assert running.store.windows("plant", 1)[0].diagnoses is None
    finally:
        running.stop()


def test_segments_of_a_running_monitor(tmp_path: Path) -> None:
    """A files monitor with segment_by: the shifted site is named in the API, history, the metric and the log."""
    from tests.unit.test_segments import _plant

    data = tmp_path / "data"
    data.mkdir()
    pyarrow.csv.write_csv(_plant(np.random.default_rng(1), 20_000), data / "part-1.csv")
    pyarrow.csv.write_csv(_plant(np.random.default_rng(2), 6_000, shifted="s07", shift=1.5), data / "part-2.csv")
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "monitors": [{
        "name": "sites", "source": {"type": "files", "options": {"path": str(data)}},
        "features": {"numeric": ["x", "y"], "categorical": ["c"], "segment_by": ["site"]},
        "window": {"rows": 6_000}, "reference": {"first_rows": 20_000}, "measures": ["ks", "chi_square"],
        "schedule": {"interval": "1h"}}]}))
    running = Daemon(load_config(path), PluginManager(load_entry_points=False))
    try:
        upgrade(running.store.engine)
        running.prepare()
        for _ in range(3):  # 10 000 rows a tick: the 20 000 reference rows, then the window
            running.tick_all()
        client = TestClient(create_app(running.metrics, running.readiness, api=build_api(running)))
        window = client.get(API_PREFIX + "/monitors/sites/windows/1").json()
        segments = {s["segment"]: s for s in window["segments"]}
        assert len(segments) == 20
        assert [name for name, s in segments.items() if s["drifted"]] == ["site=s07"], segments
        assert segments["site=s07"]["drifted_features"] == ["x"]
        exported = {}
        for family in text_string_to_metric_families(generate_latest(running.metrics.registry).decode()):
            for sample in family.samples:
                if sample.name == "driftd_segment_drifted":
                    exported[sample.labels["segment"]] = sample.value
        assert len(exported) == 20 and exported["site=s07"] == 1.0 and sum(exported.values()) == 1.0
        result = CliRunner().invoke(main, ["history", "-c", str(path), "sites", "--explain"])
        assert "segments drifted: site=s07 (x)" in result.output, result.output
    finally:
        running.stop()
