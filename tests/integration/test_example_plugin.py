"""The example third-party plugin installs with pip, shows in `driftd plugins`, conforms, and runs."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.daemon.engine import MonitorRunner
from monitor.metrics import Metrics
from monitor.store.migrate import upgrade
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.testing import (
    adaptation_context,
    check_adapter,
    check_adapter_bad_options,
    check_bad_options,
    check_connector,
    check_measure,
)
from tests.helpers import monitor_config

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "driftd-example-plugin"


def _offline_build() -> list[str]:
    """Build with this environment's setuptools, offline, when it makes wheels by itself (70.1+)."""
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return []
    major, minor = (int(part) if part.isdigit() else 0 for part in (version.split(".") + ["0"])[:2])
    return ["--no-build-isolation", "--no-index"] if (major, minor) >= (70, 1) else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example package pip-installed (offline) into a temporary folder put on ``sys.path``."""
    root = tmp_path_factory.mktemp("example-plugin")
    source = shutil.copytree(PACKAGE, root / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *_offline_build(),
                    "--target", str(target), str(source)], check=True, timeout=120)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [name for name in sys.modules if name.startswith("driftd_example_plugin")]:
        del sys.modules[name]


@pytest.fixture
def manager(installed: Path) -> PluginManager:
    return PluginManager(environ={})


def test_plugin_manager_lists_the_installed_distribution(manager: PluginManager) -> None:
    info = manager.info["example"]
    assert info.origin == "entry point (driftd-example-plugin)"
    assert info.provides == {"connectors": ["random_walk"], "adapters": ["mean_alignment"],
                             "divergences": ["outside_range"], "notifiers": ["jsonl_file"]} and info.error is None


def test_driftd_plugins_shows_it(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTD_PLUGINS", raising=False)
    monkeypatch.delenv("DRIFTD_DISABLE_PLUGINS", raising=False)
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "example  [entry point (driftd-example-plugin)]\n" in result.output
    assert "connectors: random_walk" in result.output and "adapters: mean_alignment" in result.output
    assert "measures: outside_range" in result.output and "notifiers: jsonl_file" in result.output


@pytest.mark.parametrize("total_rows", [0, 1500])
def test_it_passes_the_conformance_suite(manager: PluginManager, total_rows: int) -> None:
    check_connector(lambda: manager.connector("random_walk", {"seed": 4, "drift": 0.1, "total_rows": total_rows}),
                    total_rows=total_rows)


def test_it_rejects_bad_options(manager: PluginManager) -> None:
    walk = manager.provided["connectors"]["random_walk"]
    check_bad_options(walk, [("step", {"step": 0}), ("seed", {"seed": "x"}), ("speed", {"speed": 1})])


def test_its_adapter_passes_the_adapter_conformance_suite(manager: PluginManager) -> None:
    alignment = manager.provided["adapters"]["mean_alignment"]
    result = check_adapter(lambda: alignment({}), lambda: adaptation_context("affine"))
    assert result.remedy == "feature_map" and result.model is not None
    check_adapter_bad_options(alignment, [("min_rows", {"min_rows": 1}), ("speed", {"speed": 2})])


def test_a_monitor_runs_with_it(manager: PluginManager, sqlite_url: str) -> None:
    config = monitor_config(
        source={"type": "random_walk", "options": {"seed": 7, "drift": 0.05, "total_rows": 1400}},
        features={"numeric": ["value", "noise"]}, measures=["ks", "psi"],
        window={"rows": 200}, reference={"first_rows": 400}, max_rows=500,
    )
    store = Store(sqlite_url)
    upgrade(store.engine)
    runner = MonitorRunner(config, store, manager, Metrics())
    windows = [window for _ in range(4) for window in runner.tick().windows]
    runner.close()
    assert [window.rows for window in windows] == [200] * 5
    assert store.count_rows("m") == 1000
    store.close()


def test_its_notifier_hears_of_the_drift_through_the_outbox(manager: PluginManager, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    raw = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
           "notifiers": [{"type": "jsonl_file", "events": ["drift_detected", "window_evaluated"],
                          "options": {"path": str(events)}}],
           "monitors": [{"name": "walk", "source": {"type": "random_walk",
                                                    "options": {"seed": 7, "drift": 0.5, "total_rows": 1400}},
                         "features": {"numeric": ["value", "noise"]}, "measures": ["ks"],
                         "window": {"rows": 200}, "reference": {"first_rows": 400}, "max_rows": 500}]}
    daemon = Daemon(build_config(raw, "test", environ={}), manager)
    daemon.prepare()
    try:
        for _ in range(4):
            daemon.tick_all()
        delivered = daemon.outbox.drain()
    finally:
        daemon.stop()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(lines) == delivered == len(daemon.store.outbox_messages(state="delivered")) >= 6
    assert [line["data"]["seq"] for line in lines if line["type"] == "window_evaluated"] == [1, 2, 3, 4, 5]
    assert any(line["type"] == "drift_detected" for line in lines), "the walk drifts away from its start"


def test_its_measure_passes_check_measure_and_works_in_compare_and_driftd_compare(
        manager: PluginManager, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa

    from monitor.compare import compare
    from tests.helpers import write_csv

    measure = manager.provided["divergences"]["outside_range"]
    check_measure(measure)
    check_measure(type(measure)(margin=0.02))
    rng = np.random.default_rng(3)
    reference = pa.table({"x": rng.uniform(0, 1, 2000)})
    live = pa.table({"x": rng.uniform(0.2, 1.2, 500)})
    report = compare(reference, live, {"outside_range": {"options": {"margin": 0.01}}})  # loads the plugins itself
    (result,) = report.results
    assert result.measure == "outside_range" and 0.15 < result.value < 0.25 and report.drift
    paths = [str(write_csv(tmp_path / name, table)) for name, table in (("ref.csv", reference), ("live.csv", live))]
    cli = CliRunner().invoke(main, ["compare", *paths, "--measures", "outside_range", "--json"])
    assert cli.exit_code == 1, cli.output
    assert json.loads(cli.output)["results"][0]["measure"] == "outside_range"


def test_its_measure_and_notifier_run_in_the_daemon_on_push_down_counts(manager: PluginManager, tmp_path: Path) -> None:
    """The measure is counts_only: it works on an SQL push-down source, where the database sends counts."""
    import sqlite3

    import numpy as np

    database = tmp_path / "source.db"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, x REAL)")
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.uniform(0, 1, 600), rng.uniform(0.5, 1.5, 400)])
    connection.executemany("INSERT INTO readings (id, x) VALUES (?, ?)", enumerate(values.tolist(), start=1))
    connection.commit()
    connection.close()
    reference = tmp_path / "ref.csv"
    reference.write_text("x\n" + "\n".join(str(v) for v in rng.uniform(0, 1, 1000)) + "\n")
    events = tmp_path / "events.jsonl"
    raw = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
           "notifiers": [{"type": "jsonl_file", "events": ["window_evaluated"], "options": {"path": str(events)}}],
           "monitors": [{"name": "range", "source": {"type": "sql", "options": {
                             "url": f"sqlite:///{database}", "table": "readings", "cursor_column": "id",
                             "pushdown": True}},
                         "features": {"numeric": ["x"]}, "measures": {"outside_range": {"threshold": 0.1}},
                         "window": {"span": 200, "timestamp": "id"}, "reference": {"path": str(reference)}}]}
    daemon = Daemon(build_config(raw, "test", environ={}), manager)
    daemon.prepare()
    try:
        daemon.tick_all()
        daemon.outbox.drain()
    finally:
        daemon.stop()
    windows = [json.loads(line)["data"] for line in events.read_text().splitlines()]
    assert [window["state"] for window in windows][:3] == ["ok", "ok", "ok"]
    assert windows[-1]["drifted_features"] == ["x"]
    scores = [result["value"] for window in windows for result in window["results"]]
    assert scores[0] == 0.0 and scores[-1] > 0.3
