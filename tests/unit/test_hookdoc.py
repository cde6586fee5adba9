"""The hook reference is complete and up to date."""

from __future__ import annotations

from pathlib import Path

from monitor import hookspecs
from monitor.hookdoc import hook_functions, render
from monitor.plugins import PluginManager

ROOT = Path(__file__).resolve().parents[2]


def test_every_hook_is_documented_with_when_it_runs() -> None:
    hooks = dict(hook_functions())
    registered = {name for name in dir(PluginManager(environ={}, load_entry_points=False).hooks.hook)
                  if name.startswith("driftd_")}
    assert set(hooks) == registered
    for name, function in hooks.items():
        doc = function.__doc__ or ""
        assert "Called" in doc or "called" in doc, f"{name} does not say when it runs"


def test_docs_hooks_md_is_generated_from_the_hookspecs() -> None:
    assert (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8") == render(), (
        "docs/hooks.md is stale: run `python -m monitor.hookdoc`")
    assert all(f"## `{name}(" in render() for name, _ in hook_functions())
    assert hookspecs.PROJECT == "driftd"
