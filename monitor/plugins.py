"""The plugin manager: built-ins and ``driftd`` entry points, loaded through the same hooks."""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

import pluggy
from pydantic import BaseModel, ValidationError

from monitor import hookspecs
from monitor.connector import Connector, describe_options_error

log = logging.getLogger("driftd.plugins")

BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.connectors.synthetic",
    "plugins.connectors.files",
    "plugins.connectors.sql",
    "plugins.connectors.redis_streams",
    "plugins.connectors.nats_jetstream",
    "plugins.connectors.mqtt",
    "plugins.connectors.rabbitmq",
    "plugins.connectors.http",
    "plugins.model_loaders",
    "plugins.adapters.importance_weighting",
    "plugins.adapters.feature_alignment",
    "plugins.adapters.label_shift",
    "plugins.adapters.finetune",
    "plugins.adapters.webhook",
    "plugins.adapters.command",
    "plugins.adapters.rebaseline",
    "plugins.adapters.augmentation",
    "plugins.adapters.ensemble",
    "plugins.notifiers.http",
    "plugins.notifiers.alertmanager",
    "plugins.notifiers.email",
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


class Provided(dict):  # type: ignore[type-arg]
    """What one plugin's provider hook returned, with the plugin's name (for ``driftd plugins``)."""

    def __init__(self, plugin: str, provided: Mapping[str, Any]) -> None:
        super().__init__(provided)
        self.plugin = plugin


class PluginManager:
    """Loads plugins, collects what they provide, and calls event hooks through pluggy.

    Every hook goes through pluggy's hook callers, so hookwrappers and pluggy's tracing see every
    call. Each plugin's own implementations are isolated: one that raises (or returns something
    that is not what its hook promises) is logged by name and contributes nothing; the others run.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, load_entry_points: bool = True) -> None:
        environ = os.environ if environ is None else environ
        self.hooks = pluggy.PluginManager(hookspecs.PROJECT)
        self.hooks.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._local = threading.local()  # the failures of one ``deliver`` call, on its thread
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
            plugin = load()
            self.hooks.register(plugin, name=name)
        except Exception as error:  # noqa: BLE001 - a broken plugin must not stop the daemon
            info.error = f"failed to load: {type(error).__name__}: {error}"
            log.error("plugin %s (%s) %s", name, origin, info.error)
            return
        unknown = self._unknown_hook(plugin)
        if unknown is not None:
            self.hooks.unregister(plugin)
            info.error = f"failed to load: {unknown}"
            log.error("plugin %s (%s) %s", name, origin, info.error)
            return
        self._isolate(name, plugin)

    def _unknown_hook(self, plugin: Any) -> str | None:
        """Why ``plugin`` implements a ``driftd_*`` hook no hookspec declares (pluggy's check_pending), or None."""
        known = [name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_")]
        try:
            self.hooks.check_pending()
        except pluggy.PluginValidationError:  # names the first plugin it met; every other one was checked at load
            hook = next((caller.name for caller in self.hooks.get_hookcallers(plugin) or []
                         if not caller.has_spec() and any(impl.plugin is plugin and not impl.optionalhook
                                                          for impl in caller.get_hookimpls())), None)
            if hook is None:
                return None
        else:  # a driftd_* function without @hookimpl would be ignored silently: refuse a misspelt one too
            hook = next((name for name in dir(plugin) if name.startswith(f"{hookspecs.PROJECT}_")
                         and name not in known and callable(getattr(plugin, name, None))), None)
            if hook is None:
                return None
        close = difflib.get_close_matches(hook, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; the hooks are {', '.join(known)}"
        return f"{hook} matches no driftd hook{hint}"

    def _isolate(self, name: str, plugin: Any) -> None:
        """Wrap each of the plugin's hook implementations so that a failure stays with the plugin."""
        for caller in self.hooks.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                    impl.function = self._guarded(impl.function, name, caller.name)

    def _guarded(self, function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
        kind = next((kind for kind, name in PROVIDER_HOOKS.items() if name == hook), None)

        def call(*args: Any) -> Any:
            try:
                result = function(*args)
                return result if kind is None else Provided(plugin, _checked(kind, result))
            except Exception as error:  # noqa: BLE001 - a plugin's failure must not stop the others
                if kind is None:
                    log.exception("plugin %s failed in %s", plugin, hook)
                    failures = getattr(self._local, "failures", None)
                    if failures is not None:
                        failures.append(error)
                else:
                    info = self.info.setdefault(plugin, PluginInfo(plugin, "registered"))
                    info.error = f"{type(error).__name__}: {error}"
                    log.error("plugin %s: %s", plugin, info.error)
                return None
        return call

    def _collect(self, kind: str) -> dict[str, Any]:
        collected: dict[str, Any] = {}
        # pluggy calls the newest plugin first; collect in registration order, so built-ins keep their names
        for provided in reversed(getattr(self.hooks.hook, PROVIDER_HOOKS[kind])()):
            if not isinstance(provided, Provided):
                continue  # a hookwrapper replaced the result: nothing to attribute
            info = self.info.setdefault(provided.plugin, PluginInfo(provided.plugin, "registered"))
            taken = [name for name in provided if name in collected]
            if taken:
                info.error = f"ValueError: {kind[:-1]} {taken[0]!r} is already provided by another plugin"
                log.error("plugin %s: %s", provided.plugin, info.error)
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
        """Call an event hook on every plugin through pluggy; one that raises is logged by name and skipped."""
        getattr(self.hooks.hook, hook_name)(**kwargs)

    def implementers(self, hook_name: str) -> list[str]:
        """The plugins that implement an event hook (hookwrappers aside), by name."""
        return sorted({name for impl in getattr(self.hooks.hook, hook_name).get_hookimpls()
                       if not (impl.hookwrapper or impl.wrapper) and (name := self.hooks.get_name(impl.plugin))})

    def configure(self, sections: Mapping[str, Any]) -> None:
        """Validate each ``plugins: {NAME: {...}}`` section with the model its plugin declares, then hand
        each plugin its settings (``driftd_configure``).

        All sections are validated before any is handed over. PluginConfigError, one line naming the
        plugin and the option (never quoting a text value: it may be a ``${VAR}`` secret), when a name
        is no loaded plugin, the plugin declares no model, a section is invalid or the plugin refuses it.
        """
        settings = {name: self.plugin_settings(name, section) for name, section in sections.items()}
        for name, value in settings.items():
            try:
                self._call_one(name, "driftd_configure", settings=value)
            except HookFailed as error:
                raise PluginConfigError(f"plugins.{name}: {str(error)[:300]}") from None

    def plugin_settings(self, name: str, section: Any) -> BaseModel:
        """The plugin's section validated by its ``driftd_config_model``; PluginConfigError (one line) if not."""
        if not self.hooks.has_plugin(name):
            loaded = sorted(n for n in self.info if self.hooks.has_plugin(n))
            close = difflib.get_close_matches(name[:200], loaded, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"loaded: {', '.join(loaded) or 'none'}"
            shown = name if len(name) <= 100 else name[:100] + "…"
            raise PluginConfigError(f"plugins: no plugin named {shown!r} is loaded ({hint})")
        try:
            models = self._call_one(name, "driftd_config_model")
        except (HookFailed, LookupError) as error:
            raise PluginConfigError(f"plugins.{name}: {error}") from None
        model = models[0] if models else None
        if model is None:
            raise PluginConfigError(f"plugins.{name}: the plugin takes no configuration "
                                    "(it declares no driftd_config_model)")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PluginConfigError(f"plugins.{name}: driftd_config_model returned {type(model).__name__}, "
                                    "expected a pydantic model class")
        if not isinstance(section, Mapping):
            raise PluginConfigError(f"plugins.{name}: expected a mapping of options, got {type(section).__name__}")
        try:
            return model.model_validate(dict(section))
        except ValidationError as error:
            why = describe_options_error(model, error, hide_text=True)
            raise PluginConfigError(f"plugins.{name}: {why}") from None

    def _call_one(self, plugin: str, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call one plugin's implementation of a hook through pluggy (hookwrappers see it); its results.

        [] when the plugin does not implement it; HookFailed when it raised; LookupError when it is not loaded.
        """
        target = self.hooks.get_plugin(plugin)
        if target is None:
            raise LookupError(f"plugin {plugin!r} is not loaded")
        caller = getattr(self.hooks.hook, hook_name)
        others = [impl.plugin for impl in caller.get_hookimpls() if impl.plugin is not target
                  and not (impl.hookwrapper or impl.wrapper)]
        subset = self.hooks.subset_hook_caller(hook_name, remove_plugins=others) if others else caller
        self._local.failures = []
        try:
            results = subset(**kwargs)
            failures = self._local.failures
        finally:
            self._local.failures = None
        if failures:
            raise HookFailed(f"plugin {plugin} failed in {hook_name}: {type(failures[0]).__name__}: {failures[0]}")
        return list(results)

    def deliver(self, plugin: str, hook_name: str, **kwargs: Any) -> None:
        """Call one plugin's implementation of an event hook through pluggy (hookwrappers see it too).

        Raises HookFailed when it raised, LookupError when the plugin (or its implementation) is gone.
        """
        target = self.hooks.get_plugin(plugin)
        caller = getattr(self.hooks.hook, hook_name)
        if target is None or not any(impl.plugin is target and not (impl.hookwrapper or impl.wrapper)
                                     for impl in caller.get_hookimpls()):
            raise LookupError(f"plugin {plugin!r} is not loaded or no longer implements {hook_name}")
        self._call_one(plugin, hook_name, **kwargs)


class HookFailed(Exception):
    """A plugin's event hook raised (the delivery is retried)."""


class PluginConfigError(ValueError):
    """A ``plugins:`` section names no loaded plugin, or its plugin's model refuses it (one line)."""


def _checked(kind: str, provided: Any) -> Mapping[str, Any]:
    """A provider hook's mapping, once every entry is valid; TypeError naming the first that is not."""
    hook = PROVIDER_HOOKS[kind]
    if not isinstance(provided, Mapping):
        raise TypeError(f"{hook}() returned {type(provided).__name__}, expected a mapping")
    for type_name, value in provided.items():
        if not isinstance(type_name, str) or not _VALIDATORS[kind](value):
            raise TypeError(f"{hook}() entry {type_name!r} is not a valid {kind[:-1]}")
    return provided
