"""``driftd compare`` (two files) and ``driftd calibrate`` (a monitor's own reference)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from monitor.cli.base import EXIT_DRIFT, EXIT_OK, config_option, fail, load, main, open_store
from monitor.cli.calibration_report import print_calibration
from monitor.config import DEFAULT_MEASURES, ConfigError, DriftConfig, MonitorConfig
from monitor.divergence import MeasureRegistry
from monitor.domain.blocked import DEFAULT_SD_MULTIPLIER
from monitor.domain.calibrate import DEFAULT_REPETITIONS, DEFAULT_WINDOW_SIZES, calibrate
from monitor.domain.evaluate import resolve_measures
from monitor.domain.reference import ReferenceDataError, feature_kinds, read_table, reference_from_file
from monitor.plugins import PluginManager
from monitor.store import Store, StoredReference, StoreError


@main.command()
@click.argument("reference_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("live_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--numeric", help="Comma-separated numeric features (default: every number column).")
@click.option("--categorical", help="Comma-separated categorical features (default: every text column).")
@click.option("--measures", default=",".join(DEFAULT_MEASURES), show_default=True,
              help="Comma-separated measures (default: the daemon's defaults).")
@click.option("--correction", type=click.Choice(["none", "bonferroni", "bh"]), default="bh", show_default=True)
@click.option("--share", type=float, default=DriftConfig().share, show_default=True,
              help="Drifted share for dataset drift.")
@click.option("--backend", type=click.Choice(["numpy", "torch", "auto"]), default="numpy", show_default=True)
@click.option("--segment-by", help="Comma-separated columns whose values split both files into segments, each "
              "measured against the same segment of the reference (as features.segment_by).")
@click.option("--max-segments", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Segments kept: the reference's most frequent.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report with per-feature distribution plots.")
def compare(reference_file: str, live_file: str, numeric: str | None, categorical: str | None, measures: str,
            correction: str, share: float, backend: str, segment_by: str | None, max_segments: int, as_json: bool,
            html_path: Path | None) -> None:
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
            segments = names(segment_by)
            features = ((names(numeric), names(categorical)) if numeric or categorical else
                        tuple([name for name in found if name not in segments] for found in infer_features(reference)))
            report = compare_tables(reference, live, names(measures), numeric=features[0], categorical=features[1],
                                    correction=correction, share=share, backend=backend, segment_by=segments,
                                    max_segments=max_segments)
            bar.update(1)
    except (ReferenceDataError, KeyError, ValueError, TypeError, ImportError) as error:
        fail(str(error.args[0] if isinstance(error, KeyError) else error))
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
        for diagnosis in report.diagnoses:
            click.echo(f"what changed: {diagnosis['sentence']}  [{diagnosis['kind']}]")
        if report.segments:
            drifted = [o for o in report.segments if o["drifted"]]
            click.echo("segments drifted: " + (", ".join(f"{o['segment']} ({', '.join(o['drifted_features'])})"
                                                          for o in drifted) or "none")
                       + f" (of {len(report.segments)})")
        click.echo(f"dataset drift: {'YES' if report.drift else 'no'} "
                   f"({report.drift_share:.0%} of features drifted, threshold {share:.0%})")
    sys.exit(EXIT_DRIFT if report.drift else EXIT_OK)


@main.command("calibrate")
@config_option
@click.argument("monitor")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False),
              help="A sample of the reference rows, in time order (default: the monitor's reference.path).")
@click.option("--window-sizes", help="Comma-separated window sizes of the shuffled study "
              f"(default: {','.join(map(str, DEFAULT_WINDOW_SIZES))}; the monitor's own window is always added).")
@click.option("--repetitions", default=DEFAULT_REPETITIONS, show_default=True, type=click.IntRange(min=1),
              help="Resampled windows per size.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--sd-multiplier", default=DEFAULT_SD_MULTIPLIER, show_default=True, type=click.FloatRange(min=0),
              help="k of the auto thresholds: mean + k·sd of a statistic over the reference's own windows.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def calibrate_command(config_path: Path | None, monitor: str, from_file: str | None, window_sizes: str | None,
                      repetitions: int, seed: int, sd_multiplier: float, as_json: bool) -> None:
    """Measure false alarms (shuffled and in time order), power and auto thresholds on the monitor's reference.

    Stores the report with the monitor's active reference version (storing that version first from
    reference.path when there is none yet); measures with `threshold: auto` take their thresholds from it.
    """
    config, _ = load(config_path)
    try:
        monitor_config = config.monitor(monitor)
    except ConfigError as error:
        fail(str(error))
    path = from_file or monitor_config.reference.path
    if path is None:
        fail(f"monitor {monitor!r}: only the summary of a reference is stored, not its rows: pass --from FILE "
              "with a sample of the reference rows (or set reference.path)")
    try:
        sizes = ([int(size) for size in window_sizes.split(",") if size.strip()] if window_sizes
                 else list(DEFAULT_WINDOW_SIZES))
    except ValueError:
        fail(f"monitor {monitor!r}: --window-sizes must be comma-separated whole numbers, got {window_sizes!r}")
    store = open_store(config)
    active = _active_reference(store, monitor, monitor_config)
    try:
        settings = resolve_measures(monitor_config.measures,
                                    MeasureRegistry(PluginManager().provided["divergences"]))
        report = calibrate(read_table(path), feature_kinds(monitor_config.features), settings,
                           monitor_config.drift, sizes, repetitions, seed,
                           bins=monitor_config.reference.bins, max_reference_rows=monitor_config.reference.max_rows,
                           window=monitor_config.window, sd_multiplier=sd_multiplier,
                           multivariate_sample=monitor_config.reference.multivariate_sample)
    except (ReferenceDataError, KeyError, ValueError, TypeError) as error:
        fail(f"monitor {monitor!r}: {error.args[0] if isinstance(error, KeyError) else error}")
    store.set_calibration(monitor, active.version, report.to_dict())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    print_calibration(monitor, active.version, path, report, monitor_config.drift)


def _active_reference(store: Store, monitor: str, config: MonitorConfig) -> StoredReference:
    """The monitor's active reference version; stored from reference.path first (as the daemon would) if none."""
    try:
        active = next((v for v in store.references(monitor) if v.active), None)
    except StoreError:
        active = None
    if active is not None:
        return active
    if config.reference.path is None:
        fail(f"monitor {monitor!r} has no active reference version: run the monitor once or "
             f"`driftd reference capture {monitor}` first")
    try:
        new = reference_from_file(config.reference.path, config.features, config.reference)
    except ReferenceDataError as error:
        fail(f"monitor {monitor!r}: {error}")
    active = store.add_reference(store.monitor_id(monitor), new)
    click.echo(f"{monitor}: stored reference version {active.version} from {config.reference.path}", err=True)
    return active
