"""``driftd db upgrade``, ``driftd plugins`` and ``driftd config validate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.cli.base import EXIT_ERROR, config_option, load, main
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.domain.coverage import unvoted_features
from monitor.logs import setup_logging
from monitor.plugins import PluginManager
from monitor.store import Store
from monitor.store.migrate import current_revision, head_revision, upgrade


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
    setup_logging("ERROR")
    manager = PluginManager()
    for info in manager.info.values():
        click.echo(f"{info.name}  [{info.origin}]")
        for kind, names in sorted(info.provides.items()):
            click.echo(f"    {kind}: {', '.join(names)}")
        if info.error:
            click.echo(f"    ERROR: {info.error}")


@main.group("config")
def config_group() -> None:
    """Configuration files."""


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False,
                envvar="DRIFTD_CONFIG")
def config_validate(path: Path | None) -> None:
    """Validate a configuration file, its connectors and measures; exit 2 on a problem."""
    config, _ = load(path)
    manager = PluginManager()
    problems, warnings = [], []
    for monitor in config.monitors:
        try:
            settings, connector = MonitorRunner.validate(monitor, manager)
            connector.close()
        except MonitorError as error:
            problems.append(str(error))
            continue
        warnings.extend(unvoted_features(monitor, settings))
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
    click.echo(f"{where}: OK ({len(config.monitors)} monitor(s), storage "
               f"{Store(config.storage.url).describe()})")
