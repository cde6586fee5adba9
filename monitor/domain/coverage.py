"""Which configured features can be flagged at all: a feature whose measures cannot vote at the
monitor's window size is unmonitored, and ``driftd config validate`` and start-up say so."""

from __future__ import annotations

from monitor.config import MonitorConfig
from monitor.divergence import MultivariateMeasure
from monitor.domain.evaluate import MeasureSetting


def unvoted_features(config: MonitorConfig, settings: list[MeasureSetting]) -> list[str]:
    """One line per feature that no configured measure can flag, naming the monitor and the feature.

    A test votes in any window (its p-value accounts for the size); a distance votes only with at
    least ``drift.min_rows`` values of the feature, so in ``window.rows`` windows smaller than that
    it never does (a ``span`` window's size is not known in advance). A multivariate test votes
    for the numeric features jointly.
    """
    rows, min_rows = config.window.rows, config.drift.min_rows
    lines = []
    for kind, names in (("numeric", config.features.numeric), ("categorical", config.features.categorical)):
        taking = [s.measure for s in settings if not isinstance(s.measure, MultivariateMeasure)
                  and kind in s.measure.kinds]
        if kind == "numeric" and any(isinstance(s.measure, MultivariateMeasure) for s in settings):
            continue
        if not taking:
            why = f"no configured measure takes {kind} features"
        elif any(m.is_test for m in taking) or rows is None or rows >= min_rows:
            continue
        else:
            why = (f"{', '.join(m.name for m in taking)} (distances) vote only from drift.min_rows "
                   f"({min_rows}) values, and window.rows is {rows}")
        hint = "ks" if kind == "numeric" else "chi_square"
        lines.extend(f"monitor {config.name!r}: {kind} feature {name!r} can never be flagged: {why}; "
                     f"add a test such as {hint}" for name in names)
    return lines
