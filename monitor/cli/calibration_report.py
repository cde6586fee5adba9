"""``driftd calibrate``'s report as text: the shuffled study, the time-ordered one, the auto thresholds."""

from __future__ import annotations

import click

from monitor.config import DriftConfig
from monitor.domain.blocked import BlockedCalibration
from monitor.domain.calibrate import POWER, SHIFT_UNITS, CalibrationReport


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def print_calibration(monitor: str, version: int, path: str, report: CalibrationReport, drift: DriftConfig) -> None:
    """The report as tables: one line per measure and window size, then the monitor's own windows."""
    click.echo(f"{monitor}: calibration of reference version {version} from {path} "
               f"({report.reference_rows} reference rows, {report.repetitions} repetitions, seed {report.seed})")
    click.echo("")
    click.echo("Shuffled windows (rows drawn at random: each window is independent of the others)")
    kinds = list(SHIFT_UNITS)
    click.echo(f"{'measure':<17} {'rows':>6} {'FPR':>6} {'window FPR':>10} {'min effect':>10}  "
               + " ".join(f"{kind:>9}" for kind in kinds))
    for entry in report.results:
        if not entry.votes:
            click.echo(f"{entry.measure:<17} {entry.window_size:>6}  does not vote: a distance needs "
                       f"drift.min_rows = {drift.min_rows} values of a feature")
            continue
        cells = ["" if kind not in entry.detectable else
                 ("-" if (grade := entry.detectable.get(kind)) is None else f"{grade:g}") for kind in kinds]
        effect = "-" if entry.min_effect is None else f"{entry.min_effect:.3g}"
        click.echo(f"{entry.measure:<17} {entry.window_size:>6} {entry.false_positive_rate:>6.1%} "
                   f"{entry.window_false_positive_rate:>10.1%} {effect:>10}  " + " ".join(f"{c:>9}" for c in cells))
    click.echo("FPR: unshifted features flagged, without correction; window FPR: unshifted windows with any "
               f"feature flagged after the {report.correction!r} correction. Min effect: the measure's own value "
               f"(KS D, PSI, ...) at the smallest shift it detects with {POWER:.0%} power, the floor for its "
               "min_effect.")
    click.echo(f"Shift columns: the smallest grade flagged in {POWER:.0%} of windows (- none tried was); grades are "
               + "; ".join(f"{kind}: {unit}" for kind, unit in SHIFT_UNITS.items()) + ".")
    rule = (f"{report.correction} correction, share {drift.share:g}, {drift.consecutive} consecutive window(s), "
            f"min_rows {drift.min_rows}")
    click.echo(f"Whole rule ({rule}): drift in "
               + ", ".join(f"{rate:.1%} at {size} rows" for size, rate in sorted(report.alarm_rate.items()))
               + " of shuffled windows.")
    click.echo(f"Recommended: windows of {report.recommended_window_size} rows; measures "
               f"{', '.join(report.recommended_measures) or 'none'}.")
    for note in report.notes:
        click.echo(f"  - {note}")
    if report.blocked is not None:
        _print_blocked(report, report.blocked)
    click.echo(f"Stored with reference version {version}.")


def _print_blocked(report: CalibrationReport, blocked: BlockedCalibration) -> None:
    """The time-ordered study: false alarms both ways side by side, and the thresholds ``auto`` uses."""
    shuffled = {entry.measure: entry for entry in report.results if entry.window_size == blocked.window_rows}
    click.echo("")
    click.echo(f"Time-ordered windows (the reference in {blocked.ordered_by}, cut into {blocked.windows} windows "
               f"of the monitor's {_window(blocked)}, each measured against the rest of the reference)")
    click.echo(f"{'measure':<17} {'threshold':>9} {'shuffled':>9} {'in order':>9} {'auto held-out':>13}  "
               f"auto thresholds (mean + {blocked.sd_multiplier:g} sd of the statistic)")
    for entry in blocked.measures:
        fpr = shuffled.get(entry.measure)
        thresholds = ", ".join(f"{feature} {t.threshold:.4g}" for feature, t in entry.thresholds.items()) or "none"
        threshold = f"{entry.threshold:g}" + ("*" if entry.auto else "")
        click.echo(f"{entry.measure:<17} {threshold:>9} {_percent(fpr.window_false_positive_rate if fpr else None):>9} "
                   f"{_percent(entry.window_fpr):>9} {_percent(entry.holdout_auto_window_fpr):>13}  {thresholds}")
    click.echo("Shuffled / in order: windows with any feature flagged at the threshold shown, shuffled at the same "
               "size and in time order. Auto held-out: with thresholds from the earlier half of the windows, on the "
               "later half. * threshold: auto is configured: the default threshold is shown, the auto thresholds "
               "are what the monitor uses.")
    shuffled_rule = report.alarm_rate.get(blocked.window_rows)
    line = (f"Whole rule: drift in {_percent(shuffled_rule)} of shuffled windows and "
            f"{_percent(blocked.alarm_rate)} of time-ordered windows")
    if blocked.holdout_alarm_rate is not None:
        line += f" ({_percent(blocked.holdout_alarm_rate)} held out, with the auto thresholds of the earlier half)"
    click.echo(line + ".")
    if shuffled_rule is not None and blocked.alarm_rate is not None and blocked.alarm_rate > 2 * shuffled_rule + 0.05:
        click.echo("  - the reference's own windows differ far more than shuffled rows do (seasons, slow changes, "
                   "autocorrelation): the shuffled rates do not carry over to this series; consider threshold: auto")
    for note in blocked.notes:
        click.echo(f"  - {note}")


def _window(blocked: BlockedCalibration) -> str:
    if blocked.window.get("rows") is not None:
        return f"{blocked.window['rows']} rows"
    return f"{blocked.window['span']:g} s of {blocked.window['timestamp']!r} (median {blocked.window_rows} rows)"
