"""The plugin contract, as a third-party plugin meets it: hooks checked when it loads, called through
pluggy, its own configuration section, its measures everywhere measures are named, its adapters'
``needs_model`` and artifacts, and ``driftd plugins`` listing every kind."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping

import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.compare import compare
from monitor.config import build_config
from monitor.daemon.building import resolve_monitor
from monitor.daemon.errors import MonitorError
from monitor.hookspecs import hookimpl
from monitor.plugins import PluginConfigError, PluginManager
from tests.helpers import sample_table, write_csv


def manager() -> PluginManager:
    return PluginManager(environ={}, load_entry_points=False)


def plugin(**hooks: Any) -> Any:
    """A plugin object (hashable, as a module is) whose attributes are hookimpls."""
    return type("Plugin", (), {name: staticmethod(hookimpl(function)) for name, function in hooks.items()})()


# ---- unknown hooks ------------------------------------------------------------------------------


def test_a_hook_that_matches_no_hookspec_is_refused_naming_plugin_and_function(
        caplog: pytest.LogCaptureFixture) -> None:
    plugins = manager()
    seen: list[str] = []
    with caplog.at_level(logging.ERROR, logger="driftd.plugins"):
        plugins.register(plugin(driftd_drift_detect=lambda monitor, event: seen.append("typo")), "typo-plugin")
    error = plugins.info["typo-plugin"].error or ""
    assert "driftd_drift_detect matches no driftd hook" in error and "did you mean driftd_drift_detected" in error
    assert not plugins.hooks.has_plugin("typo-plugin")
    assert any("typo-plugin" in r.getMessage() and "driftd_drift_detect" in r.getMessage() for r in caplog.records)
    # the plugins loaded after it are checked and loaded as usual
    plugins.register(plugin(driftd_drift_detected=lambda monitor, event: seen.append("right")), "right-plugin")
    assert plugins.info["right-plugin"].error is None
    plugins.call_event("driftd_drift_detected", monitor="m", event={})
    assert seen == ["right"]


def test_a_misspelt_hook_without_hookimpl_is_refused_too() -> None:
    plugins = manager()
    plugins.register(SimpleNamespace(driftd_conectors=lambda: {}), "unmarked")
    assert "driftd_conectors matches no driftd hook; did you mean driftd_connectors?" in (
        plugins.info["unmarked"].error or "")


# ---- pluggy's hook callers ------------------------------------------------------------------------


class Wrapper:
    """A pluggy hookwrapper around every window hook, as a tracing or timing plugin would write it."""

    def __init__(self) -> None:
        self.around: list[str] = []

    @hookimpl(wrapper=True)
    def driftd_window_evaluated(self, monitor: str, window: Mapping[str, Any]) -> Any:
        self.around.append(f"before {monitor}")
        result = yield
        self.around.append(f"after {monitor}")
        return result


def test_hookwrappers_and_tracing_see_every_call_and_a_failing_plugin_stops_no_other() -> None:
    plugins = manager()
    calls: list[str] = []
    wrapper = Wrapper()
    plugins.register(plugin(driftd_window_evaluated=lambda monitor, window: calls.append("first")), "first")
    plugins.register(plugin(driftd_window_evaluated=lambda monitor, window: 1 / 0), "exploding")
    plugins.register(plugin(driftd_window_evaluated=lambda monitor, window: calls.append("last")), "last")
    plugins.register(wrapper, "wrapper")
    traced: list[str] = []
    plugins.hooks.trace.root.setwriter(traced.append)
    undo = plugins.hooks.enable_tracing()
    try:
        plugins.call_event("driftd_window_evaluated", monitor="m", window={"seq": 1})
        plugins.deliver("last", "driftd_window_evaluated", monitor="again", window={"seq": 1})
    finally:
        undo()
    assert sorted(calls) == ["first", "last", "last"]
    assert wrapper.around == ["before m", "after m", "before again", "after again"]
    assert sum("driftd_window_evaluated" in line for line in traced) >= 2, traced


# ---- configuration sections -----------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where distributions are installed (dist-info with entry points)."""
    before = set(sys.modules)
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    yield directory
    for name in set(sys.modules) - before:
        if name.startswith("contractplug_"):
            del sys.modules[name]


def install(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[driftd]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


CONFIGURED = """\
import json, os
from pydantic import BaseModel, ConfigDict, Field
from monitor.plugin import hookimpl

class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: str
    level: int = Field(1, ge=1, le=5)
    record: str

@hookimpl
def driftd_config_model():
    return Settings

@hookimpl
def driftd_configure(settings):
    with open(settings.record, "a") as out:
        out.write(json.dumps(settings.model_dump()) + "\\n")
"""


def _config(tmp_path: Path, plugins: Mapping[str, Any]) -> Path:
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'd.db'}"}, "plugins": dict(plugins),
                                    "monitors": []}))
    return path


def test_a_plugin_section_is_validated_by_the_plugins_model_and_handed_over(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, "contract-plugin", "pager", "contractplug_pager", CONFIGURED)
    record = tmp_path / "settings.jsonl"
    monkeypatch.setenv("PAGER_KEY", "sk-very-secret-1234")
    path = _config(tmp_path, {"pager": {"api_key": "${PAGER_KEY}", "level": 3, "record": str(record)}})
    assert CliRunner().invoke(main, ["config", "validate", str(path)]).exit_code == 0
    assert not record.exists()  # validating does not hand the settings over
    result = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(record.read_text()) == {"api_key": "sk-very-secret-1234", "level": 3, "record": str(record)}


@pytest.mark.parametrize(("section", "expected"), [
    ({"api_key": "${PAGER_KEY}", "level": "${PAGER_KEY}", "record": "x"}, "plugins.pager: option 'level'"),
    ({"api_key": "${PAGER_KEY}", "levle": 2, "record": "x"},
     "plugins.pager: option 'levle' is unknown; did you mean 'level'?"),
    ({"level": 2, "record": "${PAGER_KEY}"}, "plugins.pager: option 'api_key' is required"),
])
@pytest.mark.parametrize("command", ["check", "run", "validate"])
def test_an_invalid_section_is_one_line_and_exit_2_without_the_secret(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, section: dict[str, Any], expected: str,
        command: str) -> None:
    install(site, "contract-plugin", "pager", "contractplug_pager", CONFIGURED)
    monkeypatch.setenv("PAGER_KEY", "sk-very-secret-1234")
    path = _config(tmp_path, {"pager": section})
    args = ["config", "validate", str(path)] if command == "validate" else [command, "-c", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if "error" in line]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert "sk-very-secret" not in result.output


@pytest.mark.parametrize(("plugins", "expected"), [
    ({"pagr": {}}, "plugins: no plugin named 'pagr' is loaded (did you mean 'pager'?)"),
    ({"plugins.connectors.files": {}}, "plugins.plugins.connectors.files: the plugin takes no configuration "
                                       "(it declares no driftd_config_model)"),
    ({"pager": ["a"]}, "plugins.pager: expected a mapping of options, got list"),
])
def test_an_unknown_plugin_or_one_without_a_model_is_one_line_and_exit_2(
        site: Path, tmp_path: Path, plugins: dict[str, Any], expected: str) -> None:
    install(site, "contract-plugin", "pager", "contractplug_pager", CONFIGURED)
    result = CliRunner().invoke(main, ["check", "-c", str(_config(tmp_path, plugins))])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"driftd: error: {expected}"]


def test_a_plugin_that_refuses_its_settings_stops_start_up() -> None:
    from pydantic import BaseModel

    class Settings(BaseModel):
        url: str

    def refuse(settings: Any) -> None:
        raise ValueError("cannot reach the pager")

    plugins = manager()
    plugins.register(plugin(driftd_config_model=lambda: Settings, driftd_configure=refuse), "pager")
    with pytest.raises(PluginConfigError, match=r"plugins.pager: plugin pager failed in driftd_configure: "
                                                r"ValueError: cannot reach the pager"):
        plugins.configure({"pager": {"url": "x"}})


def test_a_reload_hands_over_a_changed_section_and_refuses_an_invalid_one(tmp_path: Path) -> None:
    from pydantic import BaseModel, ConfigDict

    from monitor.daemon import Daemon, ReloadRefused

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        level: int

    received: list[int] = []
    plugins = manager()
    plugins.register(plugin(driftd_config_model=lambda: Settings,
                            driftd_configure=lambda settings: received.append(settings.level)), "pager")
    raw: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'd.db'}"}, "server": {"enabled": False},
                           "plugins": {"pager": {"level": 1}}}
    daemon = Daemon(build_config(raw, "test", environ={}), plugins)
    try:
        daemon.prepare()
        daemon.reload(build_config({**raw, "plugins": {"pager": {"level": 2}}}, "test", environ={}))
        with pytest.raises(ReloadRefused, match="plugins.pager: .*option 'levl' is unknown"):
            daemon.reload(build_config({**raw, "plugins": {"pager": {"levl": 3}}}, "test", environ={}))
    finally:
        daemon.stop()
    assert received == [1, 2]
    assert daemon.config.plugins == {"pager": {"level": 2}}


# ---- measures from plugins in compare() and `driftd compare` ----------------------------------------

MEASURE = """\
from monitor.plugin import Measure, Score, hookimpl, numeric_pair

class MeanGap(Measure):
    name = "mean_gap"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.5
    description = "gap of the means, in reference standard deviations"

    def score(self, reference, window):
        reference, window = numeric_pair(self, reference, window)
        return Score(abs(float(window.values.mean()) - reference.mean) / (reference.std or 1.0))

@hookimpl
def driftd_divergences():
    return {"mean_gap": MeanGap()}
"""


def test_an_installed_plugin_measure_works_in_compare_and_driftd_compare(site: Path, tmp_path: Path) -> None:
    install(site, "contract-measure", "meangap", "contractplug_measure", MEASURE)
    reference = sample_table(2000, seed=1).drop_columns(["id"])
    live = sample_table(1000, seed=2, shift=1.0).drop_columns(["id"])
    report = compare(reference, live, ["mean_gap"], numeric=["a"], categorical=[])
    (result,) = report.results
    assert result.measure == "mean_gap" and result.value > 0.5 and result.drifted and report.drift

    ref_path = write_csv(tmp_path / "ref.csv", reference)
    live_path = write_csv(tmp_path / "live.csv", live)
    cli = CliRunner().invoke(main, ["compare", str(ref_path), str(live_path), "--measures", "mean_gap,ks",
                                    "--numeric", "a", "--json"])
    assert cli.exit_code == 1, cli.output
    assert {r["measure"] for r in json.loads(cli.output)["results"]} == {"mean_gap", "ks"}


def test_without_the_plugin_the_measure_is_unknown(tmp_path: Path) -> None:
    table = pa.table({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(KeyError, match="unknown measure 'mean_gap'"):
        compare(table, table, ["mean_gap"])


# ---- adapters: needs_model ------------------------------------------------------------------------


def _monitor(adapter: str) -> Any:
    raw = {"monitors": [{"name": "m", "source": {"type": "synthetic"}, "features": {"numeric": ["a"]},
                         "reference": {"first_rows": 100}, "window": {"rows": 100},
                         "adaptation": {"adapters": [adapter]}}]}
    return build_config(raw, "test", environ={}).monitors[0]


def test_an_adapter_declares_whether_it_needs_a_model() -> None:
    from monitor.plugin import Adapter

    class Handover(Adapter):
        type_name = "handover"
        needs_model = False

    class Retrain(Adapter):
        type_name = "retrain"

    plugins = manager()
    plugins.register(plugin(driftd_adapters=lambda: {"handover": Handover, "retrain": Retrain}), "adapters")
    resolve_monitor(_monitor("handover"), plugins)  # no model: fine
    resolve_monitor(_monitor("rebaseline"), plugins)
    with pytest.raises(MonitorError) as caught:
        resolve_monitor(_monitor("retrain"), plugins)
    message = str(caught.value)
    assert message.startswith("monitor 'm': adaptation: adapter 'retrain' needs a 'model'")
    assert "command, handover, rebaseline, webhook" in message


# ---- driftd plugins ---------------------------------------------------------------------------------


def test_driftd_plugins_lists_every_kind_builtin_measures_included(site: Path) -> None:
    install(site, "contract-measure", "meangap", "contractplug_measure", MEASURE)
    install(site, "contract-plugin", "pager", "contractplug_pager", CONFIGURED)
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    every = result.output.split("every kind:\n")[1]
    kinds = {line.split(":")[0].strip(): line.split(":", 1)[1] for line in every.splitlines()}
    assert set(kinds) == {"connectors", "measures", "adapters", "notifiers", "model loaders"}
    assert {"files", "sql", "rabbitmq"} <= {n.strip() for n in kinds["connectors"].split(",")}
    measures = {n.strip() for n in kinds["measures"].split(",")}
    assert {"ks", "psi", "chi_square", "mmd", "c2st", "mean_gap"} <= measures
    assert {"webhook", "importance_weighting"} <= {n.strip() for n in kinds["adapters"].split(",")}
    assert {"webhook", "slack", "alertmanager", "email"} <= {n.strip() for n in kinds["notifiers"].split(",")}
    assert {"sklearn", "torch"} <= {n.strip() for n in kinds["model loaders"].split(",")}
    assert "meangap  [entry point (contract-measure)]\n    measures: mean_gap" in result.output
    assert "pager  [entry point (contract-plugin)]\n    configuration: plugins.pager" in result.output
