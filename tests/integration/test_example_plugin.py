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
                             "notifiers": ["jsonl_file"]} and info.error is None


def test_driftd_plugins_shows_it(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTD_PLUGINS", raising=False)
    monkeypatch.delenv("DRIFTD_DISABLE_PLUGINS", raising=False)
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "example  [entry point (driftd-example-plugin)]\n" in result.output
    assert "connectors: random_walk" in result.output and "adapters: mean_alignment" in result.output


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
