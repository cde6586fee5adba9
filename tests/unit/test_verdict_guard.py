"""NaN is never a verdict: every result passes one check before it may vote, in every path.

A plugin measure injects the bad results; each must come back as a failure with its reason
(``failed_measures``, the log, the window's stored ``failed_measures``, the
``driftd_measure_failures_total`` counter), and the feature it leaves without a verdict is listed
as missing, never counted as "not drifted".
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import generate_latest

from monitor.compare import compare
from monitor.connector import NumericCounts, WindowAggregate
from monitor.divergence import (
    Measure,
    MultivariateMeasure,
    ReferenceSummary,
    Score,
    summarize_multivariate,
    summarize_numeric,
)
from monitor.domain.evaluate import MeasureSetting, evaluate_window
from monitor.domain.pushdown import CountReference, evaluate_aggregate
from monitor.hookspecs import hookimpl
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store.migrate import upgrade
from monitor.store import Store
from monitor.daemon.engine import MonitorRunner
from tests.helpers import monitor_config, sample_table, write_csv


class Injected(Measure):
    """Returns whatever score it was built with, on every numeric feature."""

    kinds = frozenset({"numeric"})
    default_threshold = 0.05
    description = "returns a fixed, broken score"
    counts_only = True

    def __init__(self, name: str, score: Any, is_test: bool = True) -> None:
        self.name, self.fixed, self.is_test = name, score, is_test

    def score(self, reference: Any, window: Any) -> Any:
        return self.fixed


BROKEN = {
    "nan_value": (Score(math.nan, 0.01), "its value is NaN"),
    "nan_p_value": (Score(0.3, math.nan), "its p-value is nan"),
    "no_p_value": (Score(0.3), "returned no p-value"),
    "p_above_one": (Score(0.3, 1.5), "outside 0..1"),
    "not_a_score": ((0.3, 0.01), "not a Score"),
}


class Plugin:
    """A plugin providing the broken measures."""

    def __init__(self, measures: dict[str, Measure]) -> None:
        self.measures = measures

    @hookimpl
    def driftd_divergences(self) -> dict[str, Measure]:
        return self.measures


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_result_is_a_failure_with_its_reason_never_not_drifted(name: str) -> None:
    score, reason = BROKEN[name]
    reference = pa.table({"a": np.arange(100.0), "b": np.arange(100.0)})
    window = pa.table({"a": np.arange(0.0, 100.0, 2.0), "b": np.arange(50.0) + 500})  # b moved far: ks flags it
    summary = ReferenceSummary({n: summarize_numeric(reference.column(n).to_numpy()) for n in ("a", "b")})
    from monitor.divergence import BUILTIN_MEASURES

    settings = [MeasureSetting(Injected(name, score), 0.05), MeasureSetting(BUILTIN_MEASURES["ks"], 0.05)]
    evaluation = evaluate_window(window, {"a": "numeric", "b": "numeric"}, summary, settings, "bh")
    assert reason in evaluation.failed_measures[name]
    assert {(f.measure, f.feature) for f in evaluation.failures} == {(name, "a"), (name, "b")}
    assert name not in {r.measure for r in evaluation.results}
    # a: ks saw nothing and the broken measure gave no verdict: no verdict at all, not "not drifted"
    assert "a" not in evaluation.feature_drifted and reason in evaluation.missing["a"]
    # b: ks flagged it, which a failure of another measure does not take back
    assert evaluation.feature_drifted == {"b": True}


def test_push_down_counts_pass_the_same_check() -> None:
    summary = ReferenceSummary({"a": summarize_numeric(np.arange(100.0))})
    counted = CountReference(summary)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    counts = np.full(counted.plan({"a": "numeric"}, 60.0).numeric["a"].size + 1, 5)
    window = WindowAggregate(now, now, rows=int(counts.sum()), numeric={"a": NumericCounts(counts)})
    setting = MeasureSetting(Injected("nan_value", Score(math.nan, 0.01), is_test=False), 0.1)
    evaluation = evaluate_aggregate(window, {"a": "numeric"}, counted, [setting], "bh")
    assert "its value is NaN" in evaluation.failed_measures["nan_value"]
    assert evaluation.feature_drifted == {} and "a" in evaluation.missing


class NaNMultivariate(MultivariateMeasure):
    name = "nan_mv"
    is_test = True
    default_threshold = 0.05
    description = "a multivariate test whose p-value is NaN"

    def score(self, reference: Any, window: Any, backend: Any = None) -> Score:
        return Score(0.2, math.nan)


def test_a_multivariate_nan_is_a_failure_not_a_quiet_window() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 2))
    summary = ReferenceSummary({n: summarize_numeric(rows[:, i]) for i, n in enumerate("xy")},
                               multivariate=summarize_multivariate(rows, ["x", "y"]))
    window = pa.table({"x": rng.normal(size=80), "y": rng.normal(size=80)})
    evaluation = evaluate_window(window, {"x": "numeric", "y": "numeric"}, summary,
                                 [MeasureSetting(NaNMultivariate(), 0.05)], "bh")
    assert "its p-value is nan" in evaluation.failed_measures["nan_mv"]
    assert evaluation.results == [] and not evaluation.multivariate_drift


def test_the_daemon_records_logs_stores_and_counts_a_nan_plugin_measure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(2000, seed=1))
    plugins = PluginManager(load_entry_points=False)
    plugins.register(Plugin({"nan_test": Injected("nan_test", Score(0.3, math.nan))}), "nan_plugin")
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    upgrade(store.engine)
    metrics = Metrics()
    runner = MonitorRunner(monitor_config(measures=["nan_test", "ks", "chi_square"], max_rows=5000), store,
                           plugins, metrics)
    runner.tick()
    with caplog.at_level(logging.ERROR, logger="driftd.engine"):
        windows = runner.tick().windows
    assert len(windows) == 2
    for window in windows:
        assert "its p-value is nan" in window.failed_measures["nan_test"]
        # a and b: no verdict unless ks flagged them; never "not drifted". c was judged by chi_square
        assert {"a", "b"} <= set(window.missing_features) | set(window.drifted_features)
    assert "measure 'nan_test' failed" in caplog.text
    stored, _ = store.window_results("m", 1)
    assert "its p-value is nan" in stored.failed_measures["nan_test"]
    exposition = generate_latest(metrics.registry).decode()
    assert 'driftd_measure_failures_total{measure="nan_test",monitor="m"} 2.0' in exposition
    assert 'driftd_measure_failures_total{measure="ks",monitor="m"} 0.0' in exposition


def test_compare_reports_the_failure_and_its_json_is_valid() -> None:
    reference = {"a": np.arange(100.0)}
    report = compare(reference, {"a": np.arange(0.0, 100.0, 2.5)}, measures=["anderson_darling"])
    assert report.failed_measures == {} and report.drifted_features == []
    tiny = compare({"a": np.array([1.0, 2.0])}, {"a": np.array([1.5])}, measures=["anderson_darling", "ks"])
    assert "its value is NaN" in tiny.failed_measures["anderson_darling"]  # < 4 pooled values
    assert "a" in tiny.missing_features and tiny.drift is False
    json.dumps(tiny.to_dict(), allow_nan=False)


class RaisingVerdict(Injected):
    """Scores fine, but its own ``drifted`` raises."""

    def drifted(self, score: Score, threshold: float) -> bool:
        raise ZeroDivisionError("no verdict today")


def test_a_measure_whose_verdict_raises_is_a_failure_too() -> None:
    summary = ReferenceSummary({"a": summarize_numeric(np.arange(100.0))})
    setting = MeasureSetting(RaisingVerdict("raising", Score(0.3, 0.01)), 0.05)
    evaluation = evaluate_window(pa.table({"a": np.arange(50.0)}), {"a": "numeric"}, summary, [setting], "bh")
    assert "ZeroDivisionError: no verdict today" in evaluation.failed_measures["raising"]
    assert evaluation.feature_drifted == {} and "a" in evaluation.missing
