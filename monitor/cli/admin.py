"""``driftd db upgrade``, ``driftd plugins`` and ``driftd config validate``."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from monitor.cli.base import EXIT_ERROR, config_option, fail, load, main
from monitor.config import MonitorConfig
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.daemon.notifying import notifier_problems
from monitor.domain.coverage import unvoted_features
from monitor.domain.reference import ReferenceDataError, reference_columns
from monitor.logs import setup_logging
from monitor.plugins import PluginConfigError, PluginManager
from monitor.redact import cut
from monitor.store import Store
from monitor.store.migrate import current_revision, head_revision, upgrade

def reference_problems(monitor: MonitorConfig) -> list[str]:
    """Features a monitor's ``reference.path`` has no column for (an unreadable file is a warning)."""
    path = monitor.reference.path
    if path is None:
        return []
    try:
        columns = reference_columns(path)
    except ReferenceDataError as error:  # it may be put in place before the daemon runs (a CI check)
        click.echo(f"driftd: warning: monitor {monitor.name!r}: reference.path: {error} (the monitor cannot "
                   "evaluate until it can be read)", err=True)
        return []
    problems = []
    for feature in monitor.features.names:
        if feature not in columns:
            close = difflib.get_close_matches(feature, columns, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (it has {cut(', '.join(columns), 200)})"
            problems.append(f"monitor {monitor.name!r}: feature {feature!r} is not a column of the reference "
                            f"{path}{hint}")
    return problems


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Migrate the database schema to this driftd's version."""
    config, _ = load(config_path)
    store = Store(config.storage.url)
    before = current_revision(store.engine)
    upgrade(store.engine)
    click.echo(f"{store.describe()}: schema {before or 'empty'} -> {head_revision()}")


@main.command("plugins")
def plugins_command() -> None:
    """List plugins and what they provide."""
    from monitor.divergence.registry import BUILTIN

    setup_logging("ERROR")
    manager = PluginManager()
    click.echo("driftd  [built-in measures]")
    click.echo(f"    measures: {', '.join(BUILTIN)}")
    for info in manager.info.values():
        click.echo(f"{info.name}  [{info.origin}]")
        for kind, names in sorted(info.provides.items()):
            click.echo(f"    {_KIND_LABELS.get(kind, kind)}: {', '.join(names)}")
        if info.name in manager.implementers("driftd_config_model"):
            click.echo(f"    configuration: plugins.{info.name}")
        if info.error:
            click.echo(f"    ERROR: {info.error}")
    kinds = {kind: sorted(manager.provided[kind]) for kind in _KIND_LABELS}
    kinds["divergences"] = [*BUILTIN, *kinds["divergences"]]
    click.echo("every kind:")
    for kind, label in _KIND_LABELS.items():
        click.echo(f"    {label}: {', '.join(kinds[kind]) or 'none'}")


#: The name each provider hook's kind has for a user (``driftd_divergences`` provides measures).
_KIND_LABELS = {"connectors": "connectors", "divergences": "measures", "adapters": "adapters",
                "notifiers": "notifiers", "model_loaders": "model loaders"}


@main.group("config")
def config_group() -> None:
    """Configuration files."""


@config_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@config_option
def config_validate(file: Path | None, config_path: Path | None) -> None:
    """Validate a configuration file (FILE or -c FILE), its connectors, measures and notifiers; exit 2 on a problem."""
    from_command_line = click.get_current_context().get_parameter_source("config_path") == ParameterSource.COMMANDLINE
    if file is not None and config_path is not None and file != config_path and from_command_line:
        fail(f"two configuration files given ({file} and -c {config_path}): pass one")
    path = file or config_path
    config, _ = load(path)
    manager = PluginManager()
    problems, warnings = [], []
    for monitor in config.monitors:
        try:
            settings, connector = MonitorRunner.validate(monitor, manager)
            connector.close()
            warnings.extend(unvoted_features(monitor, settings))
        except MonitorError as error:
            problems.append(str(error))
        problems += reference_problems(monitor)
    problems += notifier_problems(config, manager)
    for name, section in config.plugins.items():
        try:
            manager.plugin_settings(name, section)
        except PluginConfigError as error:
            problems.append(str(error))
    where = path or "built-in demo"
    for warning in warnings:
        click.echo(f"driftd: warning: {where}: {warning}", err=True)
    for monitor in config.monitors:
        auto = [name for name, measure in monitor.measures.items() if measure.threshold == "auto"]
        if auto:
            click.echo(f"driftd: note: {where}: monitor {monitor.name!r}: measure(s) {', '.join(map(repr, auto))} "
                       f"have threshold: auto: the monitor evaluates no window until `driftd calibrate "
                       f"{monitor.name}` has stored a calibration with its active reference version (again after "
                       "each new version, or a change of window)", err=True)
    for problem in problems:
        click.echo(f"driftd: error: {where}: {problem}", err=True)
    if problems:
        sys.exit(EXIT_ERROR)
    click.echo(f"{where}: OK ({len(config.monitors)} monitor(s), {len(config.notifiers)} notifier(s), storage "
               f"{Store(config.storage.url).describe()})")
