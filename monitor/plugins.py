"""The plugin manager: built-ins and ``driftd`` entry points, loaded through the same hooks."""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

import pluggy

from monitor import hookspecs
from monitor.connector import Connector

log = logging.getLogger("driftd.plugins")

BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.connectors.synthetic",
    "plugins.connectors.files",
    "plugins.connectors.sql",
    "plugins.connectors.redis_streams",
    "plugins.connectors.nats_jetstream",
    "plugins.connectors.mqtt",
    "plugins.connectors.http",
    "plugins.model_loaders",
    "plugins.adapters.importance_weighting",
    "plugins.adapters.feature_alignment",
    "plugins.adapters.label_shift",
    "plugins.adapters.finetune",
    "plugins.adapters.webhook",
    "plugins.adapters.command",
    "plugins.adapters.rebaseline",
)
ENTRY_POINT_GROUP = "driftd"
PROVIDER_HOOKS: dict[str, str] = {
    "connectors": "driftd_connectors",
    "adapters": "driftd_adapters",
    "model_loaders": "driftd_model_loaders",
    "divergences": "driftd_divergences",
    "notifiers": "driftd_notifiers",
}


@dataclass
class PluginInfo:
    """What ``driftd plugins`` shows about one plugin."""

    name: str
    origin: str
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


def _names(environ: Mapping[str, str], variable: str) -> set[str] | None:
    value = environ.get(variable)
    return None if value is None else {name.strip() for name in value.split(",") if name.strip()}


def _is_connector_class(value: Any) -> bool:
    return isinstance(value, type) and callable(getattr(value, "fetch", None))


_VALIDATORS: dict[str, Callable[[Any], bool]] = {
    "connectors": _is_connector_class,
    "adapters": lambda value: isinstance(value, type) and callable(getattr(value, "adapt", None)),
    "model_loaders": callable,
    "divergences": lambda value: callable(getattr(value, "score", None)),
    "notifiers": lambda value: isinstance(value, type) and callable(getattr(value, "notify", None)),
}


class PluginManager:
    """Loads plugins, collects what they provide, and calls event hooks in isolation."""

    def __init__(self, environ: Mapping[str, str] | None = None, load_entry_points: bool = True) -> None:
        environ = os.environ if environ is None else environ
        self.hooks = pluggy.PluginManager(hookspecs.PROJECT)
        self.hooks.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._allowed = _names(environ, "DRIFTD_PLUGINS")
        self._disabled = _names(environ, "DRIFTD_DISABLE_PLUGINS") or set()
        for module in BUILTIN_PLUGINS:
            self._load(module, "built-in", lambda module=module: importlib.import_module(module))
        if load_entry_points:
            for entry_point in entry_points(group=ENTRY_POINT_GROUP):
                if self._allowed is not None and entry_point.name not in self._allowed:
                    continue
                dist = entry_point.dist.name if entry_point.dist else "unknown distribution"
                self._load(entry_point.name, f"entry point ({dist})", entry_point.load)
        self.provided: dict[str, dict[str, Any]] = {kind: self._collect(kind) for kind in PROVIDER_HOOKS}

    def register(self, plugin: Any, name: str, origin: str = "registered") -> None:
        """Register a plugin object (a module or an instance with hookimpls) and re-collect."""
        self._load(name, origin, lambda: plugin)
        self.provided = {kind: self._collect(kind) for kind in PROVIDER_HOOKS}

    def _load(self, name: str, origin: str, load: Callable[[], Any]) -> None:
        if name in self._disabled:
            log.info("plugin %s is disabled by DRIFTD_DISABLE_PLUGINS", name)
            return
        if self.hooks.has_plugin(name):  # keep the working plugin's entry; report the newcomer beside it
            key = f"{name} ({origin})"
            self.info[key] = PluginInfo(key, origin, error=f"failed to load: a plugin named {name!r} is already loaded")
            log.error("plugin %s (%s) %s", name, origin, self.info[key].error)
            return
        info = self.info.setdefault(name, PluginInfo(name, origin))
        try:
            self.hooks.register(load(), name=name)
        except Exception as error:  # noqa: BLE001 - a broken plugin must not stop the daemon
            info.error = f"failed to load: {type(error).__name__}: {error}"
            log.error("plugin %s (%s) %s", name, origin, info.error)

    def _collect(self, kind: str) -> dict[str, Any]:
        hook = getattr(self.hooks.hook, PROVIDER_HOOKS[kind])
        collected: dict[str, Any] = {}
        for impl in hook.get_hookimpls():  # registration order: built-ins first, so they keep their names
            info = self.info.setdefault(impl.plugin_name, PluginInfo(impl.plugin_name, "registered"))
            try:
                provided = impl.function()
                if not isinstance(provided, Mapping):
                    raise TypeError(f"{PROVIDER_HOOKS[kind]}() returned {type(provided).__name__}, expected a mapping")
                for type_name, value in provided.items():
                    if not isinstance(type_name, str) or not _VALIDATORS[kind](value):
                        raise TypeError(f"{PROVIDER_HOOKS[kind]}() entry {type_name!r} is not a valid {kind[:-1]}")
                    if type_name in collected:
                        raise ValueError(f"{kind[:-1]} {type_name!r} is already provided by another plugin")
            except Exception as error:  # noqa: BLE001
                info.error = f"{type(error).__name__}: {error}"
                log.error("plugin %s: %s", impl.plugin_name, info.error)
                continue
            info.provides[kind] = sorted(provided)
            collected.update(provided)
        return collected

    def connector(self, type_name: str, options: Mapping[str, Any]) -> Connector:
        """Build a connector of ``type_name``; KeyError names the known types."""
        connectors = self.provided["connectors"]
        if type_name not in connectors:
            known = ", ".join(sorted(connectors)) or "none"
            raise KeyError(f"unknown connector type {type_name!r} (installed: {known})")
        return connectors[type_name](options)

    def call_event(self, hook_name: str, **kwargs: Any) -> None:
        """Call an event hook on every plugin; one that raises is logged by name and skipped."""
        for impl in reversed(getattr(self.hooks.hook, hook_name).get_hookimpls()):
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception:  # noqa: BLE001
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
