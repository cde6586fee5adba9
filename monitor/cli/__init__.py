"""The ``driftd`` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import NoReturn

import click
import pyarrow as pa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from monitor import __version__
from monitor.config import ConfigError, DriftdConfig, MonitorConfig, load_config
from monitor.daemon import Daemon
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.divergence import MeasureRegistry
from monitor.domain.calibrate import (
    DEFAULT_REPETITIONS,
    DEFAULT_WINDOW_SIZES,
    SHIFT_UNITS,
    CalibrationReport,
    calibrate,
)
from monitor.domain.evaluate import resolve_measures
from monitor.domain.reference import (
    ReferenceDataError,
    feature_kinds,
    read_table,
    summarize_table,
)
from monitor.http.face import HttpFace
from monitor.logs import LogFormat, setup_logging
from monitor.plugins import PluginManager
from monitor.store import Store, StoreError
from monitor.store.migrate import (
    SchemaOutOfDate,
    current_revision,
    head_revision,
    upgrade,
)

log = logging.getLogger("driftd")

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2

config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    envvar="DRIFTD_CONFIG", help="YAML configuration file (default: $DRIFTD_CONFIG, else the built-in demo).",
)


def _fail(message: str) -> NoReturn:
    click.echo(f"driftd: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _load(config_path: Path | None) -> tuple[DriftdConfig, bool]:
    """The configuration, and whether it is the built-in demo."""
    try:
        if config_path is None:
            from monitor.cli.demo import demo_config
            config, is_demo = demo_config(), True
        else:
            config, is_demo = load_config(config_path), False
    except ConfigError as error:
        _fail(str(error))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[_STORAGE_KEY] = config.storage.url
    return config, is_demo


_STORAGE_KEY = "driftd.storage_url"


def _database_problem(error: SQLAlchemyError, url: str | None) -> str:
    """One line for a database failure: where (password hidden) and the driver's own reason."""
    cause = getattr(error, "orig", None) or error
    where = "the database"
    if url:
        try:
            where = make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL fails earlier with its own message
            where = "the database"
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"{where}: {type(cause).__name__}: {reason}"


class _Main(click.Group):
    """The top-level group: a database that cannot be reached is one clean line and exit 2, not a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's own signature
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as error:
            _fail(_database_problem(error, ctx.meta.get(_STORAGE_KEY)))


def _store(config: DriftdConfig) -> Store:
    store = Store(config.storage.url)
    try:
        store.prepare()
    except SchemaOutOfDate as error:
        _fail(str(error))
    return store


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="driftd")
def main() -> None:
    """driftd: watch live data drift away from its reference, keep the history, export metrics."""


@main.command()
@config_option
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="DRIFTD_LOG_FORMAT", help="Plain text, or one JSON object per line.")
def run(config_path: Path | None, log_format: LogFormat) -> None:
    """Run the daemon (with no configuration: the built-in demo on embedded SQLite)."""
    config, is_demo = _load(config_path)
    setup_logging(config.logging.level, log_format)
    if is_demo:
        from monitor.cli.demo import DEMO_SHIFT_ROW
        log.info("no configuration file given: running the built-in demo (synthetic sensors drifting from "
                 "row %d, history in SQLite at %s); pass --config FILE to monitor your own data",
                 DEMO_SHIFT_ROW, config.storage.url)
    else:
        log.info("configuration: %s", config_path)
    daemon = Daemon(config)
    HttpFace.attach(daemon)
    try:
        daemon.run_forever(None if is_demo else lambda: load_config(config_path))
    except SchemaOutOfDate as error:
        _fail(str(error))
    except RuntimeError as error:
        _fail(str(error))


@main.command()
@config_option
@click.option("--max-batches", default=100, show_default=True, help="Fetches per monitor at most.")
@click.option("--adapt", is_flag=True, help="Also run the adaptations that drift queued, before exiting.")
def check(config_path: Path | None, max_batches: int, adapt: bool) -> None:
    """One pass over every monitor; exit 0 no drift, 1 drift, 2 error."""
    config, _ = _load(config_path)
    setup_logging("WARNING")
    daemon = Daemon(config)
    try:
        daemon.prepare()
    except SchemaOutOfDate as error:
        _fail(str(error))
    status = EXIT_ERROR if daemon.broken else EXIT_OK
    for name, problem in daemon.broken.items():
        click.echo(f"{name}: ERROR {problem}")
    lines: list[str] = []
    with click.progressbar(daemon.runners.items(), label="checking monitors", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as runners:
        for name, runner in runners:
            windows, state = 0, "ok"
            try:
                for _ in range(max_batches):
                    report = runner.tick()
                    windows += len(report.windows)
                    state = report.state
                    if report.rows_fetched == 0:
                        break
            except MonitorError as error:
                lines.append(f"{name}: ERROR {error}")
                status = EXIT_ERROR
                continue
            lines.append(f"{name}: {state} ({windows} new window(s))")
            if state == "drift" and status == EXIT_OK:
                status = EXIT_DRIFT
    for line in lines:
        click.echo(line)
    for name in daemon.runners if adapt else []:
        daemon.adaptation.run_pending(name)
    daemon.stop()
    sys.exit(status)


@main.command()
@click.argument("reference_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("live_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--numeric", help="Comma-separated numeric features (default: every number column).")
@click.option("--categorical", help="Comma-separated categorical features (default: every text column).")
@click.option("--measures", default="ks,psi,wasserstein,chi_square", show_default=True)
@click.option("--correction", type=click.Choice(["none", "bonferroni", "bh"]), default="bh", show_default=True)
@click.option("--share", type=float, default=0.3, show_default=True, help="Drifted share for dataset drift.")
@click.option("--backend", type=click.Choice(["numpy", "torch", "auto"]), default="numpy", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report with per-feature distribution plots.")
def compare(reference_file: str, live_file: str, numeric: str | None, categorical: str | None, measures: str,
            correction: str, share: float, backend: str, as_json: bool, html_path: Path | None) -> None:
    """Compare two files (CSV, Parquet, JSON lines); exit 0 no drift, 1 drift, 2 error."""
    from monitor.cli.report import render_html
    from monitor.compare import infer_features
    from monitor.divergence import compare as compare_tables

    def names(value: str | None) -> list[str]:
        return [name.strip() for name in (value or "").split(",") if name.strip()]

    try:
        with click.progressbar(length=3, label="comparing", file=sys.stderr, hidden=not sys.stderr.isatty()) as bar:
            reference = read_table(reference_file)
            bar.update(1)
            live = read_table(live_file)
            bar.update(1)
            features = (names(numeric), names(categorical)) if numeric or categorical else infer_features(reference)
            report = compare_tables(reference, live, names(measures), numeric=features[0], categorical=features[1],
                                    correction=correction, share=share, backend=backend)
            bar.update(1)
    except (ReferenceDataError, KeyError, ValueError, TypeError, ImportError) as error:
        _fail(str(error.args[0] if isinstance(error, KeyError) else error))
    if html_path is not None:
        html_path.write_text(render_html(report, reference, live, *features,
                                         title=f"driftd: {Path(live_file).name} vs {Path(reference_file).name}"),
                             encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"reference {reference_file}: {report.reference_rows} rows; "
                   f"live {live_file}: {report.window_rows} rows")
        click.echo(f"{'feature':<24} {'measure':<17} {'value':>10} {'p-value':>10}  drifted")
        for r in report.results:
            p_value = "" if r.p_value is None else f"{r.p_value:.3g}"
            click.echo(f"{r.feature:<24} {r.measure:<17} {r.value:>10.4g} {p_value:>10}  {'YES' if r.drifted else ''}")
        for feature, reason in report.missing_features.items():
            click.echo(f"{feature:<24} not measured: {reason}")
        for measure, reason in report.failed_measures.items():
            click.echo(f"{measure:<24} failed: {reason}")
        click.echo(f"dataset drift: {'YES' if report.drift else 'no'} "
                   f"({report.drift_share:.0%} of features drifted, threshold {share:.0%})")
    sys.exit(EXIT_DRIFT if report.drift else EXIT_OK)


@main.command()
@config_option
@click.argument("monitor")
@click.option("--limit", default=20, show_default=True, help="Windows to show, newest first.")
@click.option("--results/--no-results", default=False, help="Show every feature's results too.")
def history(config_path: Path | None, monitor: str, limit: int, results: bool) -> None:
    """Show a monitor's latest windows."""
    config, _ = _load(config_path)
    store = _store(config)
    try:
        windows = store.windows(monitor, limit)
    except StoreError as error:
        _fail(str(error))
    click.echo(f"{'window':>7}  {'evaluated at (UTC)':<19}  {'rows':>7}  {'state':<8}{'share':>6}  drifted features")
    for window in windows:
        click.echo(f"{window.seq:>7}  {window.evaluated_at:%Y-%m-%d %H:%M:%S}  {window.rows:>7}  "
                   f"{window.state:<8}{window.drift_share:>6.0%}  {', '.join(window.drifted_features) or '-'}")
        for result in store.results(window.id) if results else []:
            p_value = "" if result.p_value is None else f" p={result.p_value:.3g}"
            flag = " DRIFT" if result.drifted else ""
            click.echo(f"{'':9}{result.feature:<20} {result.measure:<15} {result.value:.4g}{p_value}{flag}")


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
    config, _ = _load(config_path)
    try:
        monitor_config = config.monitor(monitor)
    except ConfigError as error:
        _fail(str(error))
    store = _store(config)
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
        _fail(f"monitor {monitor!r}: {error}")
    stored = store.add_reference(store.monitor_id(monitor), new, activate=activate)
    state = "active" if activate else "inactive"
    click.echo(f"{monitor}: stored reference version {stored.version} ({stored.rows} rows, {origin}, {state})")


def _capture_from_source(store: Store, monitor: MonitorConfig, wanted: int) -> pa.Table:
    """The next ``wanted`` rows after the monitor's committed cursor; the cursor does not move."""
    _, connector = MonitorRunner.validate(monitor, PluginManager())
    position = store.load_progress(store.monitor_id(monitor.name), recent=0).position
    tables: list[pa.Table] = []
    try:
        while (have := sum(table.num_rows for table in tables)) < wanted:
            batch = connector.fetch(position, wanted - have)
            if batch.num_rows == 0:
                break
            tables.append(batch.table)
            position = batch.cursor
    except Exception as error:  # noqa: BLE001
        raise MonitorError(f"source {monitor.source.type!r}: {error}") from None
    finally:
        connector.close()
    if not tables:
        raise MonitorError("the source has no rows after the monitor's cursor")
    return pa.concat_tables(tables, promote_options="permissive")


@reference.command("list")
@config_option
@click.argument("monitor")
def reference_list(config_path: Path | None, monitor: str) -> None:
    """List a monitor's reference versions."""
    config, _ = _load(config_path)
    try:
        versions = _store(config).references(monitor)
    except StoreError as error:
        _fail(str(error))
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
    config, _ = _load(config_path)
    try:
        stored = _store(config).activate_reference(monitor, version)
    except StoreError as error:
        _fail(str(error))
    click.echo(f"{monitor}: reference version {stored.version} is active")


@main.command("calibrate")
@config_option
@click.argument("monitor")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False),
              help="A sample of the reference rows (default: the monitor's reference.path).")
@click.option("--window-sizes", help="Comma-separated window sizes "
              f"(default: {','.join(map(str, DEFAULT_WINDOW_SIZES))} and the monitor's window.rows).")
@click.option("--repetitions", default=DEFAULT_REPETITIONS, show_default=True, type=click.IntRange(min=1),
              help="Resampled windows per size.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def calibrate_command(config_path: Path | None, monitor: str, from_file: str | None, window_sizes: str | None,
                      repetitions: int, seed: int, as_json: bool) -> None:
    """Measure false alarms and the smallest detectable shifts on the monitor's own reference.

    Stores the report with the monitor's active reference version.
    """
    config, _ = _load(config_path)
    try:
        monitor_config = config.monitor(monitor)
    except ConfigError as error:
        _fail(str(error))
    path = from_file or monitor_config.reference.path
    if path is None:
        _fail(f"monitor {monitor!r}: only the summary of a reference is stored, not its rows: pass --from FILE "
              "with a sample of the reference rows (or set reference.path)")
    try:
        sizes = ([int(size) for size in window_sizes.split(",") if size.strip()] if window_sizes
                 else sorted({*DEFAULT_WINDOW_SIZES, *([monitor_config.window.rows] if monitor_config.window.rows
                                                      else [])}))
    except ValueError:
        _fail(f"monitor {monitor!r}: --window-sizes must be comma-separated whole numbers, got {window_sizes!r}")
    store = _store(config)
    try:
        active = next((v for v in store.references(monitor) if v.active), None)
    except StoreError:
        active = None
    if active is None:
        _fail(f"monitor {monitor!r} has no active reference version: run the monitor once or "
              f"`driftd reference capture {monitor}` first")
    try:
        settings = resolve_measures(monitor_config.measures,
                                    MeasureRegistry(PluginManager().provided["divergences"]))
        report = calibrate(read_table(path), feature_kinds(monitor_config.features), settings,
                           monitor_config.drift.correction, sizes, repetitions, seed,
                           bins=monitor_config.reference.bins, max_reference_rows=monitor_config.reference.max_rows)
    except (ReferenceDataError, KeyError, ValueError, TypeError) as error:
        _fail(f"monitor {monitor!r}: {error.args[0] if isinstance(error, KeyError) else error}")
    store.set_calibration(monitor, active.version, report.to_dict())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_calibration(monitor, active.version, path, report)


def _print_calibration(monitor: str, version: int, path: str, report: CalibrationReport) -> None:
    """The report as a table: one line per measure and window size."""
    click.echo(f"{monitor}: calibration of reference version {version} from {path} "
               f"({report.reference_rows} reference rows, {report.repetitions} repetitions, seed {report.seed})")
    kinds = list(SHIFT_UNITS)
    click.echo(f"{'measure':<15} {'rows':>6} {'FPR':>6} {'window FPR':>10}  "
               + " ".join(f"{kind:>9}" for kind in kinds))
    for entry in report.results:
        smallest = [entry.detectable.get(kind) for kind in kinds]
        cells = ["" if kind not in entry.detectable else ("-" if grade is None else f"{grade:g}")
                 for kind, grade in zip(kinds, smallest)]
        click.echo(f"{entry.measure:<15} {entry.window_size:>6} {entry.false_positive_rate:>6.1%} "
                   f"{entry.window_false_positive_rate:>10.1%}  " + " ".join(f"{cell:>9}" for cell in cells))
    click.echo("FPR: unshifted features flagged, without correction; window FPR: unshifted windows with any "
               f"feature flagged after the {report.correction!r} correction.")
    click.echo("Shift columns: the smallest grade flagged in 80% of windows (- none tried was); grades are "
               + "; ".join(f"{kind}: {unit}" for kind, unit in SHIFT_UNITS.items()) + ".")
    click.echo(f"Recommended: windows of {report.recommended_window_size} rows; measures "
               f"{', '.join(report.recommended_measures) or 'none'}.")
    for note in report.notes:
        click.echo(f"  - {note}")
    click.echo(f"Stored with reference version {version}.")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Migrate the database schema to this driftd's version."""
    config, _ = _load(config_path)
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


from monitor.cli.adaptations import register as _register_adaptations  # noqa: E402 - needs main defined

_register_adaptations(main, config_option, lambda path: _load(path), lambda config: _store(config), _fail)


@main.group("config")
def config_group() -> None:
    """Configuration files."""


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False,
                envvar="DRIFTD_CONFIG")
def config_validate(path: Path | None) -> None:
    """Validate a configuration file, its connectors and measures; exit 2 on a problem."""
    config, _ = _load(path)
    manager = PluginManager()
    problems = []
    for monitor in config.monitors:
        try:
            _, connector = MonitorRunner.validate(monitor, manager)
            connector.close()
        except MonitorError as error:
            problems.append(str(error))
    where = path or "built-in demo"
    for problem in problems:
        click.echo(f"driftd: error: {where}: {problem}", err=True)
    if problems:
        sys.exit(EXIT_ERROR)
    click.echo(f"{where}: OK ({len(config.monitors)} monitor(s), storage "
               f"{Store(config.storage.url).describe()})")
