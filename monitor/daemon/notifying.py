"""Where each monitor's events go: the plugins' event hooks and the configured notifiers.

The routes decide which outbox messages a transaction writes; the notifiers themselves are
built from the ``driftd_notifiers`` plugins. A notifier that cannot be built (unknown type, bad
options) is reported by name and still routed: its messages wait in the outbox, failing with
that reason, until a reload fixes it; nothing is lost meanwhile.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from monitor.config import DriftdConfig, NotifierConfig
from monitor.daemon.errors import reason
from monitor.domain.events import EVENT_KINDS, HOOK_TARGET, HOOKS, NOTIFIER_TARGET, Routes
from monitor.plugins import PluginManager

log = logging.getLogger("driftd.notify")


def hook_routes(plugins: PluginManager) -> dict[str, tuple[str, ...]]:
    """Event kind → ``hook:PLUGIN`` for every plugin implementing that kind's hook."""
    return {kind: tuple(HOOK_TARGET + name for name in plugins.implementers(HOOKS[kind][0])) for kind in EVENT_KINDS}


def build_notifier(config: NotifierConfig, plugins: PluginManager) -> Any:
    """A notifier from its configuration; ValueError naming the notifier and the cause."""
    installed = plugins.provided["notifiers"]
    cls = installed.get(config.type)
    if cls is None:
        known = ", ".join(sorted(installed)) or "none"
        raise ValueError(f"notifier {config.label!r}: unknown notifier type {config.type!r} (installed: {known})")
    try:
        return cls(config.options)
    except Exception as error:  # noqa: BLE001 - a plugin's complaint about its options, by name
        raise ValueError(f"notifier {config.label!r}: {reason(error)}") from None


def notifier_problems(config: DriftdConfig, plugins: PluginManager) -> list[str]:
    """Why each notifier of ``config`` cannot be built (``driftd config validate``)."""
    problems = []
    for notifier in config.notifiers:
        try:
            built = build_notifier(notifier, plugins)
        except ValueError as error:
            problems.append(str(error))
        else:
            _close(built)
    return problems


class Notifiers:
    """The configured notifiers, built once per configuration, and each monitor's routes."""

    def __init__(self, config: DriftdConfig, plugins: PluginManager) -> None:
        self.plugins = plugins
        self._hooks = hook_routes(plugins)
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        self._routes: dict[str, Routes] = {}
        self.configure(config)

    def configure(self, config: DriftdConfig) -> None:
        """Build the notifiers of ``config`` (replacing earlier ones) and recompute every monitor's routes."""
        built, problems = {}, {}
        for notifier in config.notifiers:
            try:
                built[notifier.label] = build_notifier(notifier, self.plugins)
            except ValueError as error:
                problems[notifier.label] = str(error)
                log.error("%s (its events wait in the outbox until the configuration is fixed)", error)
        routes = {}
        for monitor in config.monitors:
            chosen = config.notifier_events(monitor)
            routes[monitor.name] = Routes({kind: self._hooks[kind] + tuple(
                NOTIFIER_TARGET + label for label, kinds in chosen.items() if kind in kinds) for kind in EVENT_KINDS})
        with self._lock:
            old, self._built, self.problems, self._routes = self._built, built, problems, routes
        for notifier in old.values():
            _close(notifier)

    def routes(self, monitor: str) -> Routes:
        """Where ``monitor``'s events go now (hooks only for a monitor the configuration does not name)."""
        with self._lock:
            found = self._routes.get(monitor)
        return found if found is not None else Routes(self._hooks)

    def get(self, label: str) -> Any:
        """The notifier named ``label``; LookupError when it is no longer configured, ValueError when it is broken."""
        with self._lock:
            if label in self._built:
                return self._built[label]
            if label in self.problems:
                raise ValueError(self.problems[label])
        raise LookupError(f"notifier {label!r} is no longer configured")

    def close(self) -> None:
        """Close every notifier."""
        with self._lock:
            old, self._built = self._built, {}
        for notifier in old.values():
            _close(notifier)


def _close(notifier: Any) -> None:
    try:
        close = getattr(notifier, "close", None)
        if callable(close):
            close()
    except Exception:  # noqa: BLE001 - closing must not fail a reload
        log.warning("closing notifier %r failed", notifier, exc_info=True)
