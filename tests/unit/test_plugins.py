"""The plugin manager: built-ins, entry points, and isolation of broken plugins."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping

import pytest

from monitor.connector import Batch, Connector
from monitor.hookspecs import hookimpl
from monitor.plugins import PluginManager


class EchoConnector(Connector):
    """A trivial connector used to prove a good plugin keeps working."""

    def fetch(self, cursor: Any, max_rows: int) -> Batch:
        raise NotImplementedError


def plugin(**hooks: Any) -> SimpleNamespace:
    """A plugin object whose attributes are hookimpls."""
    return SimpleNamespace(**{name: hookimpl(function) for name, function in hooks.items()})


def good_plugin() -> SimpleNamespace:
    return plugin(driftd_connectors=lambda: {"echo": EchoConnector})


def manager() -> PluginManager:
    return PluginManager(environ={}, load_entry_points=False)


def test_builtin_connectors_are_provided() -> None:
    plugins = manager()
    assert {"synthetic", "files"} <= set(plugins.provided["connectors"])
    assert plugins.info["plugins.connectors.files"].provides["connectors"] == ["files"]
    assert plugins.info["plugins.connectors.synthetic"].origin == "built-in"
    assert all(info.error is None for info in plugins.info.values())
    connector = plugins.connector("synthetic", {})
    assert isinstance(connector, Connector)
    connector.close()


def test_unknown_connector_type_lists_the_installed_ones() -> None:
    with pytest.raises(KeyError) as caught:
        manager().connector("kafka", {})
    message = str(caught.value)
    assert "kafka" in message and "files" in message and "synthetic" in message


def test_disabled_builtin_is_not_loaded() -> None:
    plugins = PluginManager(environ={"DRIFTD_DISABLE_PLUGINS": " plugins.connectors.files , other"},
                            load_entry_points=False)
    assert "files" not in plugins.provided["connectors"]
    assert "synthetic" in plugins.provided["connectors"]
    with pytest.raises(KeyError, match="synthetic"):
        plugins.connector("files", {})


def _raises() -> Mapping[str, Any]:
    raise RuntimeError("cannot reach the licence server")


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (plugin(driftd_connectors=_raises), "cannot reach the licence server"),
        (plugin(driftd_connectors=lambda: ["echo2"]), "expected a mapping"),
        (plugin(driftd_connectors=lambda: {"echo2": 42}), "'echo2' is not a valid connector"),
        (plugin(driftd_connectors=lambda: {"echo2": object}), "'echo2' is not a valid connector"),
        (plugin(driftd_connectors=lambda: {"synthetic": EchoConnector}), "'synthetic' is already provided"),
    ],
    ids=["raises", "not-a-mapping", "not-a-class", "no-fetch", "duplicate"],
)
def test_bad_provider_plugin_is_reported_and_isolated(
    bad: SimpleNamespace, fragment: str, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = manager()
    plugins.register(good_plugin(), "good")
    with caplog.at_level(logging.ERROR, logger="driftd.plugins"):
        plugins.register(bad, "bad-plugin")
    assert fragment in (plugins.info["bad-plugin"].error or "")
    assert "connectors" not in plugins.info["bad-plugin"].provides
    assert "echo2" not in plugins.provided["connectors"]
    assert any("bad-plugin" in record.getMessage() and fragment in record.getMessage() for record in caplog.records)
    # the others still work; a duplicate does not replace the built-in
    assert plugins.info["good"].error is None
    assert plugins.provided["connectors"]["echo"] is EchoConnector
    assert isinstance(plugins.connector("synthetic", {}), Connector)
    assert plugins.provided["connectors"]["synthetic"] is not EchoConnector


def test_plugin_with_a_taken_name_is_reported_beside_the_working_one() -> None:
    plugins = manager()
    plugins.register(good_plugin(), "plugins.connectors.files", origin="entry point (clash)")
    assert plugins.info["plugins.connectors.files"].error is None  # the built-in still works
    newcomer = plugins.info["plugins.connectors.files (entry point (clash))"]
    assert "already loaded" in (newcomer.error or "")
    assert "files" in plugins.provided["connectors"]
    assert "echo" not in plugins.provided["connectors"]


def test_plugin_that_fails_to_register_is_reported() -> None:
    plugins = manager()
    # a hookimpl asking for an argument its hookspec does not have is rejected by pluggy
    plugins.register(plugin(driftd_connectors=lambda extra: {"odd": EchoConnector}), "odd-plugin")
    assert "failed to load" in (plugins.info["odd-plugin"].error or "")
    assert "odd" not in plugins.provided["connectors"]
    assert "synthetic" in plugins.provided["connectors"]


def test_event_hook_that_raises_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, str, Mapping[str, Any]]] = []

    def broken(monitor: str, window: Mapping[str, Any]) -> None:
        raise ValueError("notifier exploded")

    def recorder(name: str) -> Any:
        return lambda monitor, window: calls.append((name, monitor, window))

    plugins = manager()
    plugins.register(plugin(driftd_window_evaluated=recorder("first")), "first")
    plugins.register(plugin(driftd_window_evaluated=broken), "exploding-plugin")
    plugins.register(plugin(driftd_window_evaluated=recorder("last")), "last")
    with caplog.at_level(logging.ERROR, logger="driftd.plugins"):
        plugins.call_event("driftd_window_evaluated", monitor="sensors", window={"seq": 3})
    assert sorted(calls) == [("first", "sensors", {"seq": 3}), ("last", "sensors", {"seq": 3})]
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert "exploding-plugin" in failures[0].getMessage()
    assert "driftd_window_evaluated" in failures[0].getMessage()
    assert failures[0].exc_info is not None


# ---- entry points ---------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where fake distributions can be installed."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("fakeplug_"):
            del sys.modules[name]


def install(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"  # the escaped name, as installers write it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[driftd]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


GOOD_MODULE = """\
from monitor.connector import Connector
from monitor.hookspecs import hookimpl

class MineConnector(Connector):
    def fetch(self, cursor, max_rows):
        raise NotImplementedError

@hookimpl
def driftd_connectors():
    return {"mine": MineConnector}
"""


def test_entry_point_plugin_is_loaded(site: Path) -> None:
    install(site, "fake-driftd-plugin", "myplug", "fakeplug_good", GOOD_MODULE)
    plugins = PluginManager(environ={})
    info = plugins.info["myplug"]
    assert info.error is None
    assert "entry point" in info.origin and "fake-driftd-plugin" in info.origin
    assert info.provides["connectors"] == ["mine"]
    assert type(plugins.connector("mine", {})).__name__ == "MineConnector"
    assert "synthetic" in plugins.provided["connectors"]


def test_entry_points_outside_driftd_plugins_are_skipped(site: Path) -> None:
    install(site, "fake-driftd-plugin", "myplug", "fakeplug_good", GOOD_MODULE)
    plugins = PluginManager(environ={"DRIFTD_PLUGINS": "other"})
    assert "myplug" not in plugins.info
    assert "mine" not in plugins.provided["connectors"]
    assert "synthetic" in plugins.provided["connectors"]  # built-ins are not entry points


def test_entry_point_that_fails_to_import_is_reported(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    install(site, "fake-driftd-plugin", "myplug", "fakeplug_good", GOOD_MODULE)
    install(site, "fake-broken-plugin", "brokenplug", "fakeplug_broken", "raise ImportError('needs libfoo')\n")
    with caplog.at_level(logging.ERROR, logger="driftd.plugins"):
        plugins = PluginManager(environ={})
    assert "needs libfoo" in (plugins.info["brokenplug"].error or "")
    assert "fake-broken-plugin" in plugins.info["brokenplug"].origin
    assert any("brokenplug" in r.getMessage() for r in caplog.records)
    assert plugins.info["myplug"].error is None
    assert "mine" in plugins.provided["connectors"]
