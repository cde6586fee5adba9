"""``driftd adaptations``: what adaptation did, the model versions it made, and how to undo one."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from monitor.cli.base import config_option, fail, load, main, open_store
from monitor.config import DriftdConfig, MonitorConfig
from monitor.daemon.adaptation_run import OPERATOR_REBASELINE
from monitor.daemon.model_versions import ModelStore
from monitor.plugins import PluginManager
from monitor.store import AdaptationRow, Store, StoreError
from monitor.store.adaptations import STATES, AdaptationRecords


def records(config_path: Path | None) -> tuple[DriftdConfig, Store, AdaptationRecords]:
    """The configuration, its store and the adaptation records in it."""
    config, _ = load(config_path)
    store = open_store(config)
    return config, store, AdaptationRecords(store)


def monitor_config(config: DriftdConfig, name: str) -> MonitorConfig | None:
    """The configured monitor named ``name``, if any."""
    return next((monitor for monitor in config.monitors if monitor.name == name), None)


@main.group("adaptations", invoke_without_command=True)
@config_option
@click.option("--monitor", "-m", help="Only this monitor's runs.")
@click.option("--state", type=click.Choice(STATES), help="Only runs in this state.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def adaptations(ctx: click.Context, config_path: Path | None, monitor: str | None, state: str | None,
                limit: int, as_json: bool) -> None:
    """List adaptation runs, newest first (subcommands: show, models, rollback, run, rebaseline)."""
    if ctx.invoked_subcommand is not None:
        return
    _, store, _ = records(config_path)
    runs = store.adaptation_page(limit, None, monitor, state).items
    if as_json:
        click.echo(json.dumps([_jsonable(run) for run in runs], indent=2, default=str))
        return
    click.echo(f"{'id':>5}  {'monitor':<16} {'event':>5}  {'adapter':<22} {'state':<11} {'model':>5}  reason")
    for run in runs:
        click.echo(f"{run.id:>5}  {run.monitor:<16} {run.event_id:>5}  {run.adapter:<22} {run.state:<11} "
                   f"{run.model_version or '-':>5}  {_short(run.reason or run.error or '')}")


@adaptations.command("show")
@config_option
@click.argument("run_id", type=int)
def show(config_path: Path | None, run_id: int) -> None:
    """Everything recorded about one run (JSON)."""
    _, _, runs = records(config_path)
    try:
        click.echo(json.dumps(_jsonable(runs.run(run_id)), indent=2, default=str))
    except StoreError as error:
        fail(str(error))


@adaptations.command("models")
@config_option
@click.argument("monitor")
def models(config_path: Path | None, monitor: str) -> None:
    """A monitor's model versions; the active one is starred."""
    _, _, runs = records(config_path)
    try:
        versions = runs.model_versions(monitor)
    except StoreError as error:
        fail(str(error))
    if not versions:
        click.echo(f"{monitor}: no model versions yet (version 1 is recorded at the first adaptation)")
    for version in versions:
        star = "*" if version.active else " "
        origin = f"adaptation {version.adaptation_id}" if version.adaptation_id else "configured"
        click.echo(f"{star} v{version.version:<4} {version.created_at:%Y-%m-%d %H:%M:%S}  {origin:<16} {version.path}")


@adaptations.command("rollback")
@config_option
@click.argument("monitor")
@click.option("--to", "to_version", type=int, help="The version to go back to (default: the one before).")
def rollback(config_path: Path | None, monitor: str, to_version: int | None) -> None:
    """Make an earlier model version active again; the adaptation that made the newer one is rolled back."""
    config, _, runs = records(config_path)
    configured = monitor_config(config, monitor)
    loaders = PluginManager().provided["model_loaders"]
    try:
        left, now = ModelStore(runs, loaders).rollback(monitor, configured.model if configured else None, to_version)
    except StoreError as error:
        fail(str(error))
    click.echo(f"{monitor}: model version {now.version} is active again (was {left.version}): {now.path}")


@adaptations.command("run")
@config_option
@click.argument("monitor")
@click.option("--event", "event_id", type=int, help="The drift event to adapt to (default: the latest).")
@click.option("--force", is_flag=True,
              help="Run the adapters on the monitor's latest rows without a drift event (the daemon holding the "
                   "monitor records them at its next tick).")
def run(config_path: Path | None, monitor: str, event_id: int | None, force: bool) -> None:
    """Queue the monitor's configured adapters for a drift event; the daemon runs them within seconds."""
    config, _, runs = records(config_path)
    configured = monitor_config(config, monitor)
    if configured is None or configured.adaptation is None:
        fail(f"monitor {monitor!r} has no adaptation section in the configuration")
    if force:
        if event_id is not None:
            fail("--force runs on the latest rows; it takes no --event")
        _force(runs, configured)
        return
    queued = _queue(runs, monitor, event_id, [(a.label, a.type) for a in configured.adaptation.adapters], fail)
    click.echo(f"{monitor}: queued adaptation run(s) {', '.join(map(str, queued))}")


def _force(runs: AdaptationRecords, configured: MonitorConfig) -> None:
    """Record the request; say who takes it, or that no daemon evaluates the monitor now (exit 1)."""
    try:
        evaluator = runs.request_forced(configured.name)
    except StoreError as error:
        fail(str(error))
    taken, message = evaluator.takes_request(configured.name, configured.schedule.interval, datetime.now(timezone.utc))
    if taken:
        click.echo(message)
        return
    click.echo(f"driftd: {message}", err=True)
    sys.exit(1)


@adaptations.command("rebaseline")
@config_option
@click.argument("monitor")
@click.option("--event", "event_id", type=int, help="The drift event whose rows to use (default: the latest).")
def rebaseline(config_path: Path | None, monitor: str, event_id: int | None) -> None:
    """Make a drift event's target rows the new active reference (run by the daemon, recorded as a run)."""
    config, _, runs = records(config_path)
    configured = monitor_config(config, monitor)
    if configured is None or configured.adaptation is None:
        fail(f"monitor {monitor!r} has no adaptation section in the configuration")
    queued = _queue(runs, monitor, event_id, [(OPERATOR_REBASELINE, "rebaseline")], fail)
    click.echo(f"{monitor}: queued re-baseline run {queued[0]}")


def _queue(runs: AdaptationRecords, monitor: str, event_id: int | None, adapters: list[tuple[str, str]],
           fail: Any) -> list[int]:
    try:
        event_id = event_id or runs.latest_event_id(monitor)
        if event_id is None:
            fail(f"monitor {monitor!r} has no drift event with target rows to adapt to")
        return runs.queue(monitor, event_id, adapters)
    except StoreError as error:
        fail(str(error))


def _jsonable(run: AdaptationRow) -> dict[str, Any]:
    return dict(vars(run))


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
