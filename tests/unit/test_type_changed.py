"""The type_changed quality check: a window knows its own values of another type, the check judges their share."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.config import FeaturesConfig, MeasureConfig, QualityConfig
from monitor.daemon.explaining import explain
from monitor.daemon.windowing import PendingRows, serialised
from monitor.divergence import MeasureRegistry, ReferenceSummary
from monitor.domain.evaluate import evaluate_window, resolve_measures
from monitor.domain.quality import check_quality, quality_outcomes
from monitor.domain.reference import feature_kinds, summarize_rows
from monitor.domain.values import INVALID_PREFIX, InvalidValues
from tests.helpers import monitor_config

FEATURES = FeaturesConfig(numeric=["a", "b"], categorical=["c"])
KINDS = feature_kinds(FEATURES)
SETTINGS = resolve_measures({"ks": MeasureConfig(), "chi_square": MeasureConfig()}, MeasureRegistry())
CHECK = QualityConfig.model_validate({"type_changed": {}})


def _numbers(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table({"a": rng.normal(0, 1, n), "b": rng.normal(10, 2, n),
                     "c": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])})


def _summary(categories: tuple[str, ...] = ("x", "y", "z")) -> ReferenceSummary:
    rng = np.random.default_rng(0)
    table = _numbers(rng, 3_000).set_column(2, "c", pa.array(rng.choice(list(categories), 3_000)))
    summary, _ = summarize_rows(table, FEATURES, 10, 100_000, "test")
    return ReferenceSummary.from_bytes(summary.to_bytes())


def _as_text(table: pa.Table, name: str, bad: dict[int, str]) -> pa.Table:
    """``table`` with column ``name`` as text, the rows in ``bad`` holding that text instead of a number."""
    values = [bad.get(i, repr(v)) for i, v in enumerate(table.column(name).to_pylist())]
    return table.set_column(table.column_names.index(name), name, pa.array(values, pa.string()))


def test_each_window_knows_its_own_values_that_were_not_numbers() -> None:
    pending = PendingRows(monitor_config(window={"rows": 100}))
    rng = np.random.default_rng(1)
    first = _numbers(rng, 150)  # one window, 50 rows wait
    second = _as_text(_numbers(rng, 150), "a", {i: "unknown" for i in range(10, 40)} | {50: "NA", 51: ""})
    rows = pending.combine(first)
    windows, remainder = pending.split(rows)
    assert [w.invalid for w in windows] == [{}]
    pending.committed(remainder)
    # the waiting rows go to the database and come back (a restart): their marks with them
    pending = PendingRows(monitor_config(window={"rows": 100}), serialised(pending.table))
    windows, remainder = pending.split(pending.combine(second))
    assert len(windows) == 2 and remainder.num_rows == 0
    # second's rows 10-39 are in the first of these windows; "NA" and "" are missing, not of another type
    assert windows[0].invalid == {"a": InvalidValues(30, "unknown")}
    assert windows[1].invalid == {}
    assert not any(name.startswith(INVALID_PREFIX) for w in windows for name in w.rows.column_names)
    assert windows[0].rows.column("a").null_count == 30
    assert pending.take_invalid() == {"a": InvalidValues(30, "unknown")}  # the counter, as before


def _check(window: pa.Table, summary: ReferenceSummary, invalid: dict[str, InvalidValues],
           config: QualityConfig = CHECK, min_rows: int = 30):
    evaluation = evaluate_window(window, KINDS, summary, SETTINGS, "bh")
    return check_quality(window, KINDS, summary, config, evaluation, "bh", min_rows=min_rows, invalid=invalid)


def _result(evaluation, feature: str):
    [result] = [r for r in evaluation.results if r.feature == feature and r.measure == "quality.type_changed"]
    return result


def test_a_numeric_feature_fails_on_the_share_of_values_that_were_not_numbers() -> None:
    summary = _summary()
    window = _numbers(np.random.default_rng(2), 500)
    a = window.column("a").to_numpy().copy()
    a[:60] = np.nan  # 60 rows read as missing: 40 were text, 20 were truly missing
    window = window.set_column(0, "a", pa.array(a))
    evaluation = _check(window, summary, {"a": InvalidValues(40, "unknown")})
    result = _result(evaluation, "a")
    assert result.value == pytest.approx(40 / 480)  # of the values present, not of the rows
    assert result.threshold == 0.01 and result.drifted
    assert ("b", "type_changed", False) in quality_outcomes(evaluation.results)
    assert not evaluation.feature_drifted.get("a")  # reports only, unless it votes
    voting = QualityConfig.model_validate({"type_changed": {"vote": True, "threshold": 0.05}})
    assert _check(window, summary, {"a": InvalidValues(40, "unknown")}, voting).feature_drifted["a"]
    quiet = _check(window, summary, {"a": InvalidValues(4, "unknown")}, voting)  # 4/444 < 5%
    assert not _result(quiet, "a").drifted and not quiet.feature_drifted.get("a")


def test_an_all_text_column_fails_and_a_tiny_window_does_not() -> None:
    summary = _summary()
    window = _numbers(np.random.default_rng(3), 200)
    window = window.set_column(0, "a", pa.nulls(200, pa.float64()))
    result = _result(_check(window, summary, {"a": InvalidValues(200, "err")}), "a")
    assert result.value == 1.0 and result.drifted
    small = _numbers(np.random.default_rng(4), 20).set_column(0, "a", pa.nulls(20, pa.float64()))
    assert not _result(_check(small, summary, {"a": InvalidValues(20, "err")}), "a").drifted  # < min_rows


def test_a_categorical_feature_fails_when_numbers_arrive_where_the_reference_held_text() -> None:
    window = _numbers(np.random.default_rng(5), 500)
    c = window.column("c").to_pylist()
    c[:50] = [str(i % 7) for i in range(50)]
    window = window.set_column(2, "c", pa.array(c))
    result = _result(_check(window, _summary(), {}), "c")
    assert result.value == pytest.approx(0.1) and result.drifted
    # a reference whose categories include numbers: a number is no change of type, so no result
    numeric_codes = _check(window, _summary(("x", "y", "3")), {})
    assert not [r for r in numeric_codes.results if r.feature == "c" and r.measure == "quality.type_changed"]


def test_a_failed_check_has_its_sentence_among_the_diagnoses() -> None:
    config = monitor_config(quality={"type_changed": {}}, measures=["ks", "chi_square"])
    summary = _summary()
    window = _numbers(np.random.default_rng(6), 500).set_column(0, "a", pa.array([np.nan] * 60 + [0.0] * 440))
    invalid = {"a": InvalidValues(60, "unknown")}
    evaluation = _check(window, summary, invalid)
    diagnoses = explain(config, window, KINDS, summary, evaluation, 1, invalid)
    [found] = [d for d in diagnoses if d["kind"] == "type_changed"]
    assert found["feature"] == "a" and found["figures"] == {"share": 0.12, "example": "unknown"}
    assert found["sentence"] == "a: 12% of values are not numbers (e.g. 'unknown') — the column's type changed?"
    assert not [d for d in explain(config, window, KINDS, summary, _check(window, summary, {}), 1, {})
                if d["kind"] == "type_changed"]
