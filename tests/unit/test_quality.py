"""Data-quality checks beside the divergences: what each finds, its false alarms, its vote, its failures."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from monitor.config import ConfigError, FeaturesConfig, MeasureConfig, QualityConfig, build_config
from monitor.divergence import MeasureRegistry, ReferenceSummary
from monitor.domain.evaluate import evaluate_window, resolve_measures
from monitor.domain.quality import check_quality, quality_outcomes
from monitor.domain.reference import feature_kinds, summarize_rows

FEATURES = FeaturesConfig(numeric=["x", "y"], categorical=["c"])
KINDS = feature_kinds(FEATURES)
SETTINGS = resolve_measures({"ks": MeasureConfig(), "chi_square": MeasureConfig()}, MeasureRegistry())
ALL = QualityConfig.model_validate({name: {} for name in QualityConfig.model_fields})
VOTING = QualityConfig.model_validate({name: {"vote": True} for name in QualityConfig.model_fields})


def _table(rng: np.random.Generator, n: int, missing: float = 0.01, categories=("a", "b", "c"),
           p=(0.6, 0.3, 0.1), x_shift: float = 0.0) -> pa.Table:
    x = rng.normal(x_shift, 1, n)
    x[rng.random(n) < missing] = np.nan
    return pa.table({"x": x, "y": rng.normal(0, 1, n), "c": rng.choice(list(categories), n, p=list(p))})


def _summary(seed: int = 0) -> ReferenceSummary:
    summary, _ = summarize_rows(_table(np.random.default_rng(seed), 4_000), FEATURES, 10, 100_000, "test")
    return ReferenceSummary.from_bytes(summary.to_bytes())


def _check(window: pa.Table, summary: ReferenceSummary, config: QualityConfig = ALL):
    evaluation = evaluate_window(window, KINDS, summary, SETTINGS, "bh")
    return check_quality(window, KINDS, summary, config, evaluation, "bh", min_rows=30)


def _failed(evaluation) -> set[tuple[str, str]]:
    return {(feature, check) for feature, check, failed in quality_outcomes(evaluation.results) if failed}


def test_missing_rate_jump_is_found_with_scipys_p_value() -> None:
    summary = _summary()
    window = _table(np.random.default_rng(1), 1_000, missing=0.2)
    evaluation = _check(window, summary)
    assert ("x", "missing_rate") in _failed(evaluation)
    [result] = [r for r in evaluation.results if r.feature == "x" and r.measure == "quality.missing_rate"]
    missing = int(np.isnan(window.column("x").to_numpy()).sum())
    expected = stats.fisher_exact([[missing, 1_000 - missing],
                                   [summary.missing["x"], summary.rows - summary.missing["x"]]]).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.value == pytest.approx(missing / 1_000)
    assert "x" not in evaluation.feature_drifted or not evaluation.feature_drifted["x"]  # no vote by default


def test_each_check_finds_its_own_fault() -> None:
    summary = _summary()
    rng = np.random.default_rng(2)
    out = _table(rng, 1_000, x_shift=4.0)
    assert ("x", "out_of_range") in _failed(_check(out, summary))
    new = _table(rng, 1_000, categories=("a", "b", "c", "fault"), p=(0.5, 0.3, 0.1, 0.1))
    assert _failed(_check(new, summary)) == {("c", "new_category")}
    gone = _table(rng, 1_000, categories=("a", "b"), p=(0.7, 0.3))
    assert _failed(_check(gone, summary)) == {("c", "vanished_category")}
    flat = _table(rng, 1_000, categories=("a",), p=(1.0,)).set_column(1, "y", pa.array(np.full(1_000, 0.5)))
    assert {("y", "constant"), ("c", "constant")} <= _failed(_check(flat, summary))


def test_unchanged_windows_rarely_fail_a_check() -> None:
    failures = checks = 0
    for seed in range(60):
        evaluation = _check(_table(np.random.default_rng(100 + seed), 500), _summary(seed))
        outcomes = quality_outcomes(evaluation.results)
        checks += len(outcomes)
        failures += sum(failed for _, _, failed in outcomes)
    # 60 windows x 13 checks (x, y: missing rate, range, constant, type; c: missing rate, new, vanished,
    # constant, type)
    assert checks == 60 * 13
    assert failures <= 4, failures


def test_a_voting_check_makes_its_feature_drifted() -> None:
    summary = _summary()
    window = _table(np.random.default_rng(3), 1_000, missing=0.2)
    assert not _check(window, summary).feature_drifted["x"]
    assert _check(window, summary, VOTING).feature_drifted["x"]


def test_an_all_missing_column_fails_the_missing_rate_and_may_vote() -> None:
    summary = _summary()
    window = _table(np.random.default_rng(4), 500).set_column(0, "x", pa.nulls(500, pa.float64()))
    quiet = _check(window, summary)
    assert "x" in quiet.missing and ("x", "missing_rate") in _failed(quiet)
    voted = _check(window, summary, VOTING)
    assert voted.feature_drifted["x"] and "x" not in voted.missing


def test_an_old_reference_says_the_missing_rate_cannot_be_checked() -> None:
    summary = _summary()
    old = ReferenceSummary(summary.features, summary.multivariate)
    evaluation = _check(_table(np.random.default_rng(5), 500), old)
    assert "predates missing counts" in evaluation.failed_measures["quality.missing_rate"]
    assert set(evaluation.feature_drifted) == {"x", "y", "c"}  # no verdict taken away


def test_quality_is_configured_per_check() -> None:
    config = build_config({"monitors": [{
        "name": "m", "source": {"type": "synthetic"}, "features": {"numeric": ["temperature"]},
        "window": {"rows": 100}, "quality": {"missing_rate": {"threshold": 0.001, "vote": True}, "constant": {}}}]},
        "test", environ={})
    quality = config.monitors[0].quality
    assert quality.missing_rate.threshold == 0.001 and quality.missing_rate.vote
    assert quality.constant is not None and quality.out_of_range is None
    with pytest.raises(ConfigError, match="missing_ratio"):
        build_config({"monitors": [{"name": "m", "source": {"type": "synthetic"},
                                    "features": {"numeric": ["temperature"]}, "window": {"rows": 100},
                                    "quality": {"missing_ratio": {}}}]}, "test", environ={})


def test_a_rare_category_absent_from_a_small_window_is_not_vanished() -> None:
    """'c' (10% of the reference) is missing from 40 rows 1.5% of the time by chance: not a failure."""
    summary = _summary()
    window = _table(np.random.default_rng(6), 40, categories=("a", "b"), p=(0.7, 0.3))
    [result] = [r for r in _check(window, summary).results if r.measure == "quality.vanished_category"]
    assert result.value == 0.0 and not result.drifted
