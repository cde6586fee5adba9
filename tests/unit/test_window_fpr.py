"""The whole default rule holds its false-alarm rate: on data that does not drift, at most alpha
of the windows end in the drift state.

Every piece the daemon uses is the real one: the default measures (``MonitorConfig``'s), the
default drift rule (Benjamini–Hochberg across features, the drift share, consecutive windows,
``min_rows``), ``evaluate_window`` and ``DriftPolicy`` fed window after window. 1,000 seeded
windows per monitor and size, drawn from the reference's own distribution: 20 references of 50
windows each, as a two-sample test's level holds over the draws of both samples (against one
fixed reference the rate over its windows scatters around alpha, the more so the larger the
windows are next to the reference). The windows are slices of one table generated at once.

Where one flagged feature reaches the share, the rule's level IS alpha (Benjamini–Hochberg keeps
the family-wise rate at alpha when nothing drifts), so "at most alpha" is checked up to the Monte
Carlo error of 1,000 windows: a count that a rate of exactly alpha exceeds with probability under
1% fails (more than 67 alarms; without the correction three features alone give about 140).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from monitor.config import build_config
from monitor.divergence import MeasureRegistry, ReferenceSummary
from monitor.domain.evaluate import evaluate_window, resolve_measures
from monitor.domain.policy import DriftPolicy
from monitor.domain.reference import feature_kinds, summarize_table

REFERENCES, WINDOWS = 20, 50
REFERENCE_ROWS = 1_000
ALPHA = 0.05  # the default threshold of both default tests
#: The most alarms in 1,000 windows that a rule of level exactly ALPHA reaches 99% of the time.
MOST_ALARMS = int(stats.binom.ppf(0.99, REFERENCES * WINDOWS, ALPHA))
MONITORS = {
    "numeric": {"numeric": ["gamma", "normal", "counts"]},
    "categorical": {"categorical": ["colour", "plan", "flag"]},
    "mixed": {"numeric": ["gamma", "counts"], "categorical": ["colour", "flag"]},
}


def draw(rows: int, rng: np.random.Generator) -> pa.Table:
    """Every feature, drawn independently: skewed, symmetric, tied integers, and three category sets."""
    return pa.table({
        "gamma": rng.gamma(2.0, 3.0, rows),
        "normal": rng.normal(10.0, 2.0, rows),
        "counts": rng.poisson(4.0, rows).astype(np.float64),
        "colour": rng.choice(["red", "green", "blue", "grey"], rows, p=[0.4, 0.3, 0.2, 0.1]),
        "plan": rng.choice(["free", "pro"], rows, p=[0.8, 0.2]),
        "flag": rng.choice(["a", "b", "c", "d", "e"], rows, p=[0.35, 0.25, 0.2, 0.15, 0.05]),
    })


@pytest.mark.parametrize("rows", [40, 150])  # distances vote from min_rows (30) on
@pytest.mark.parametrize("kind", sorted(MONITORS))
def test_default_rule_false_alarms_at_most_alpha_of_windows(kind: str, rows: int) -> None:
    config = build_config({"monitors": [{
        "name": kind, "source": {"type": "files"}, "features": MONITORS[kind], "window": {"rows": rows}}]},
        "test", environ={}).monitors[0]
    settings = resolve_measures(config.measures, MeasureRegistry())
    kinds = feature_kinds(config.features)
    rng = np.random.default_rng(rows * 7 + len(kind))
    alarms = 0
    for _ in range(REFERENCES):
        summary = ReferenceSummary.from_bytes(summarize_table(
            draw(REFERENCE_ROWS, rng), config.features, config.reference.bins, REFERENCE_ROWS, "fpr").summary)
        live = draw(WINDOWS * rows, rng).select(list(kinds))
        policy = DriftPolicy(config.drift)
        for i in range(WINDOWS):
            evaluation = evaluate_window(live.slice(i * rows, rows), kinds, summary, settings,
                                         config.drift.correction, min_rows=config.drift.min_rows)
            assert not evaluation.failed_measures and not evaluation.missing
            alarms += policy.decide(evaluation.feature_drifted).state == "drift"
    windows = REFERENCES * WINDOWS
    assert alarms <= MOST_ALARMS, f"{kind} monitor, {rows}-row windows: {alarms} of {windows} windows alarmed"
