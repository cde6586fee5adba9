"""Building a monitor's parts from its configuration: measures, backend, adapters and connector.

Every problem is a MonitorError naming the monitor and the cause; ``driftd config validate`` and
the daemon build monitors the same way.
"""

from __future__ import annotations

from monitor.config import MonitorConfig
from monitor.connector import Connector, pushdown_column
from monitor.daemon.errors import MonitorError, reason
from monitor.divergence import Backend, MeasureRegistry, resolve_backend
from monitor.domain.evaluate import MeasureSetting, resolve_measures
from monitor.domain.pushdown import pushdown_problems
from monitor.plugins import PluginManager


def resolve_monitor(config: MonitorConfig, plugins: PluginManager) -> list[MeasureSetting]:
    """Resolve the measures, the backend and the adapters; MonitorError names the monitor and the cause."""
    try:
        measures = resolve_measures(config.measures, MeasureRegistry(plugins.provided["divergences"]))
    except (KeyError, ValueError, TypeError) as error:
        raise MonitorError(f"monitor {config.name!r}: measures: {error.args[0]}") from None
    monitor_backend(config)
    _check_adaptation(config, plugins)
    return measures


def validate_monitor(config: MonitorConfig, plugins: PluginManager) -> tuple[list[MeasureSetting], Connector]:
    """Resolve the measures and build the connector; MonitorError names the monitor and the cause."""
    measures = resolve_monitor(config, plugins)
    try:
        connector = plugins.connector(config.source.type, config.source.options)
    except Exception as error:  # noqa: BLE001 - any plugin failure becomes a clear monitor error
        raise MonitorError(f"monitor {config.name!r}: source {config.source.type!r}: {reason(error)}") from None
    column = pushdown_column(connector)
    problems = [] if column is None else pushdown_problems(config, measures, column)
    if problems:
        connector.close()
        raise MonitorError(f"monitor {config.name!r}: push-down source: " + "; ".join(problems))
    return measures, connector


def monitor_backend(config: MonitorConfig) -> Backend:
    """The monitor's compute backend; MonitorError when it cannot be had (e.g. torch missing)."""
    try:
        return resolve_backend(config.backend.name, config.backend.device, config.backend.dtype)
    except (ImportError, ValueError, RuntimeError) as error:
        raise MonitorError(f"monitor {config.name!r}: backend: {error}") from None


def _check_adaptation(config: MonitorConfig, plugins: PluginManager) -> None:
    """Every adapter type is installed and accepts its options, and the model loader exists."""
    if config.model is not None and config.model.loader not in plugins.provided["model_loaders"]:
        known = ", ".join(sorted(plugins.provided["model_loaders"])) or "none"
        raise MonitorError(f"monitor {config.name!r}: model.loader {config.model.loader!r} is not installed "
                           f"(installed: {known})")
    for adapter in config.adaptation.adapters if config.adaptation else []:
        cls = plugins.provided["adapters"].get(adapter.type)
        if cls is None:
            known = ", ".join(sorted(plugins.provided["adapters"])) or "none"
            raise MonitorError(f"monitor {config.name!r}: adaptation: unknown adapter type {adapter.type!r} "
                               f"(installed: {known})")
        try:
            cls(adapter.options)
        except Exception as error:  # noqa: BLE001 - a plugin's complaint about its options, by name
            raise MonitorError(f"monitor {config.name!r}: adaptation: adapter {adapter.label!r}: "
                               f"{reason(error)}") from None
        if config.model is None and getattr(cls, "needs_model", True):
            free = sorted(name for name, kind in plugins.provided["adapters"].items()
                          if not getattr(kind, "needs_model", True))
            raise MonitorError(f"monitor {config.name!r}: adaptation: adapter {adapter.label!r} needs a 'model' "
                               f"(path, label, training_data); only adapters with needs_model = False work "
                               f"without one ({', '.join(free) or 'none installed'})")
