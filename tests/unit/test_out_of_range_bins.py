"""Mass that moves outside the reference's range always counts, however few its distinct values.

Every numeric reference summary has a bin below its minimum and one above its maximum, in pulled
windows, in push-down counts, and in summaries stored before those bins existed (format 1).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from monitor.connector import NumericCounts, WindowAggregate
from monitor.divergence import (
    BUILTIN_MEASURES,
    NumericSummary,
    NumericWindow,
    ReferenceSummary,
    summarize_numeric,
)
from monitor.domain.evaluate import MeasureSetting
from monitor.domain.pushdown import CountReference, evaluate_aggregate

BINNED = ["psi", "jensen_shannon", "js_divergence", "kl", "kl_reverse", "hellinger"]
V1_SUMMARY = Path(__file__).parent.parent / "data" / "reference_summary_v1.npz"


@pytest.mark.parametrize("moved_to", [2.0, 5.0])
@pytest.mark.parametrize("name", BINNED)
def test_a_constant_reference_flags_a_window_that_moved(name: str, moved_to: float) -> None:
    measure = BUILTIN_MEASURES[name]
    summary = summarize_numeric(np.full(500, 3.0))
    score = measure.score(summary, NumericWindow(np.full(200, moved_to)))
    assert measure.drifted(score, measure.default_threshold), (name, score)
    assert measure.score(summary, NumericWindow(np.full(200, 3.0))).value == pytest.approx(0.0, abs=1e-12)


def test_a_near_constant_reference_counts_mass_beyond_its_maximum() -> None:
    summary = summarize_numeric(np.r_[np.zeros(990), np.ones(10)])  # every quantile is 0
    psi = BUILTIN_MEASURES["psi"]
    moved = psi.score(summary, NumericWindow(np.r_[np.zeros(180), np.full(20, 4.0)]))
    in_range = psi.score(summary, NumericWindow(np.r_[np.zeros(198), np.ones(2)]))
    assert psi.drifted(moved, 0.2) and not psi.drifted(in_range, 0.2)


def test_pushdown_counts_use_the_same_out_of_range_bins() -> None:
    summary = ReferenceSummary({"x": summarize_numeric(np.full(500, 3.0))})
    counted = CountReference(summary)
    edges = counted.plan({"x": "numeric"}, 60.0).numeric["x"]
    assert edges.tolist() == [np.nextafter(3.0, 0.0), 3.0]
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    window = WindowAggregate(now, now, rows=100, numeric={"x": NumericCounts(np.array([0, 0, 100]))})  # all above 3
    setting = MeasureSetting(BUILTIN_MEASURES["psi"], 0.2)
    evaluation = evaluate_aggregate(window, {"x": "numeric"}, counted, [setting], "bh")
    assert evaluation.feature_drifted == {"x": True}


def test_summaries_stored_before_the_out_of_range_bins_load_with_them() -> None:
    # Written by the summary code of version 1 (before these bins): a constant feature with no
    # edges at all, a gamma feature with its nine quantile edges, and a categorical feature.
    loaded = ReferenceSummary.from_bytes(V1_SUMMARY.read_bytes())
    constant, amount = loaded.features["constant"], loaded.features["amount"]
    assert isinstance(constant, NumericSummary) and isinstance(amount, NumericSummary)
    assert constant.edges.tolist() == [np.nextafter(3.0, 0.0), 3.0]
    assert constant.probs.tolist() == [0.0, 1.0, 0.0]
    assert amount.edges.size == 9 + 2
    assert amount.edges[0] == np.nextafter(amount.sorted_values[0], -np.inf)
    assert amount.edges[-1] == amount.sorted_values[-1]
    assert amount.probs.sum() == pytest.approx(1.0) and amount.probs[0] == amount.probs[-1] == 0.0
    counts = np.bincount(np.searchsorted(amount.edges, amount.sorted_values, side="left"), minlength=12)
    np.testing.assert_array_equal(amount.probs, counts / amount.n)
    assert loaded.features["channel"].categories == ("app", "pos", "web")
    psi = BUILTIN_MEASURES["psi"]
    assert psi.drifted(psi.score(constant, NumericWindow(np.full(50, 4.0))), 0.2)
    again = ReferenceSummary.from_bytes(loaded.to_bytes())
    assert again == loaded
