"""``driftd history`` and ``driftd reference capture|list|activate``: what the store holds."""

from __future__ import annotations

from pathlib import Path

import click
import pyarrow as pa

from monitor.cli.base import config_option, fail, load, main, open_store
from monitor.config import ConfigError, MonitorConfig
from monitor.connector import concat_tables
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.domain.reference import ReferenceDataError, feature_kinds, read_table, summarize_table
from monitor.domain.values import InvalidValues, normalise_features
from monitor.plugins import PluginManager
from monitor.store import Store, StoreError


@main.command()
@config_option
@click.argument("monitor")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="Windows to show, newest first.")
@click.option("--results/--no-results", default=False, help="Show every feature's results too.")
@click.option("--explain", is_flag=True, help="Say what changed: each feature's kind of shift, in one sentence.")
def history(config_path: Path | None, monitor: str, limit: int, results: bool, explain: bool) -> None:
    """Show a monitor's latest windows: state, drifted features, and features that could not be measured."""
    config, _ = load(config_path)
    store = open_store(config)
    try:
        windows = store.windows(monitor, limit)
        performance = store.window_performance([window.id for window in windows])
    except StoreError as error:
        fail(str(error))
    click.echo(f"{'window':>7}  {'ends (UTC)':<19}  {'rows':>7}  {'state':<8}{'share':>6}  drifted features")
    for window in windows:
        # the end of its data when it has a timestamp column (a backfilled window: its own time), else when evaluated
        click.echo(f"{window.seq:>7}  {window.ended_at or window.evaluated_at:%Y-%m-%d %H:%M:%S}  {window.rows:>7}  "
                   f"{window.state:<8}{window.drift_share:>6.0%}  {', '.join(window.drifted_features) or '-'}")
        if window.missing_features:
            click.echo(f"{'':9}not measured: {', '.join(window.missing_features)}")
        for diagnosis in (window.diagnoses or []) if explain else []:
            click.echo(f"{'':9}{diagnosis['sentence']}  [{diagnosis['kind']}]")
        drifted = [s for s in window.segments or [] if s.get("drifted")] if explain else []
        if drifted:
            click.echo(f"{'':9}segments drifted: " + "; ".join(
                f"{s['segment']} ({', '.join(s['drifted_features'])})" for s in drifted))
        for metric in performance.get(window.id, []):
            click.echo(f"{'':9}{performance_line(metric)}")
        for result in store.results(window.id) if results else []:
            p_value = "" if result.p_value is None else f" p={result.p_value:.3g}"
            flag = " DRIFT" if result.drifted else ""
            click.echo(f"{'':9}{result.feature:<20} {result.measure:<15} {result.value:.4g}{p_value}{flag}")


def performance_line(metric: dict) -> str:
    """One metric of a window: estimated with its interval, the reference's value, realized when labels came."""
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    line = (f"{metric['metric']:<9} estimated {number(metric['estimated'])} [{number(metric['lower'])}, "
            f"{number(metric['upper'])}]  reference {number(metric['reference'])}  realized "
            f"{number(metric['realized'])}")
    if metric["realized"] is not None:
        error = metric['estimation_error']
        line += f" ({metric['labelled_rows']} labels, error {'-' if error is None else f'{error:+.3g}'})"
    if not metric["reliable"]:
        line += "  UNRELIABLE: off the reference's support, cannot know without labels"
    if metric["alert"]:
        line += "  DROP"
    return line


@main.group()
def reference() -> None:
    """Capture, list and activate reference versions."""


@reference.command("capture")
@config_option
@click.argument("monitor")
@click.option("--rows", type=int, help="Rows to capture from the source (default: reference.first_rows or 10000).")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False), help="Take them from a file.")
@click.option("--activate/--no-activate", default=True, show_default=True)
def reference_capture(config_path: Path | None, monitor: str, rows: int | None, from_file: str | None,
                      activate: bool) -> None:
    """Store a new reference version from a file or the next rows of the monitor's source."""
    config, _ = load(config_path)
    try:
        monitor_config = config.monitor(monitor)
    except ConfigError as error:
        fail(str(error))
    store = open_store(config)
    wanted = rows or monitor_config.reference.first_rows or 10_000
    try:
        if from_file:
            table, origin = read_table(from_file), f"file:{from_file}"
        else:
            table, origin = _capture_from_source(store, monitor_config, wanted), "capture"
        new = summarize_table(table, monitor_config.features, monitor_config.reference.bins,
                              monitor_config.reference.max_rows, origin,
                              multivariate_sample=monitor_config.reference.multivariate_sample)
    except (ReferenceDataError, MonitorError) as error:
        fail(f"monitor {monitor!r}: {error}")
    stored = store.add_reference(store.monitor_id(monitor), new, activate=activate)
    state = "active" if activate else "inactive"
    click.echo(f"{monitor}: stored reference version {stored.version} ({stored.rows} rows, {origin}, {state})")


def _capture_from_source(store: Store, monitor: MonitorConfig, wanted: int) -> pa.Table:
    """The next ``wanted`` rows after the monitor's committed cursor; the cursor does not move.

    Features are read as their kind, as the daemon reads them: values of a numeric feature that
    are not numbers are left out of the reference and said on stderr. The connector's ``commit``
    is never called, so nothing is acknowledged; a source that hands rows out until they are
    acknowledged is refused: the rows read here would be the monitor's.
    """
    _, connector = MonitorRunner.validate(monitor, PluginManager())
    if getattr(connector, "acknowledges", False):
        connector.close()
        raise MonitorError(f"source {monitor.source.type!r} hands each message out once and cannot be read again, "
                           "so the rows a capture read would be taken from the monitor: capture from a file "
                           "(--from FILE) or let the monitor take its first rows (reference.first_rows)")
    position = store.load_progress(store.monitor_id(monitor.name), recent=0).position
    kinds = feature_kinds(monitor.features)
    tables: list[pa.Table] = []
    invalid: dict[str, InvalidValues] = {}
    try:
        while (have := sum(table.num_rows for table in tables)) < wanted:
            batch = connector.fetch(position, wanted - have)
            if batch.num_rows == 0:
                break
            table, bad = normalise_features(batch.table, kinds)
            tables.append(table)
            for feature, values in bad.items():
                invalid[feature] = invalid[feature].plus(values) if feature in invalid else values
            position = batch.cursor
    except Exception as error:  # noqa: BLE001
        raise MonitorError(f"source {monitor.source.type!r}: {error}") from None
    finally:
        connector.close()
    if not tables:
        raise MonitorError("the source has no rows after the monitor's cursor")
    for feature, values in invalid.items():
        click.echo(f"monitor {monitor.name!r}: feature {feature!r}: {values.count} value(s) are not numbers "
                   f"(e.g. {values.example!r}): left out of the reference", err=True)
    return concat_tables(tables)


@reference.command("list")
@config_option
@click.argument("monitor")
def reference_list(config_path: Path | None, monitor: str) -> None:
    """List a monitor's reference versions."""
    config, _ = load(config_path)
    try:
        versions = open_store(config).references(monitor)
    except StoreError as error:
        fail(str(error))
    for version in versions:
        mark = "*" if version.active else " "
        click.echo(f"{mark} v{version.version:<4} {version.created_at:%Y-%m-%d %H:%M:%S}  {version.rows:>8} rows  "
                   f"{version.origin}")


@reference.command("activate")
@config_option
@click.argument("monitor")
@click.argument("version", type=int)
def reference_activate(config_path: Path | None, monitor: str, version: int) -> None:
    """Make VERSION the monitor's active reference."""
    config, _ = load(config_path)
    try:
        stored = open_store(config).activate_reference(monitor, version)
    except StoreError as error:
        fail(str(error))
    click.echo(f"{monitor}: reference version {stored.version} is active")
