"""Segments: a shift confined to one of 20 sites is found there and nowhere else; false alarms held."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.config import FeaturesConfig, MeasureConfig, build_config
from monitor.divergence import MeasureRegistry, ReferenceSummary
from monitor.domain.evaluate import resolve_measures
from monitor.domain.reference import feature_kinds, summarize_rows
from monitor.domain.segments import evaluate_segments

SITES = [f"s{i:02d}" for i in range(20)]
FEATURES = FeaturesConfig(numeric=["x", "y"], categorical=["c"], segment_by=["site"], max_segments=20)
KINDS = feature_kinds(FEATURES)
SETTINGS = resolve_measures({"ks": MeasureConfig(threshold=0.01), "chi_square": MeasureConfig(threshold=0.01)},
                            MeasureRegistry())


def _plant(rng: np.random.Generator, n: int, shifted: str | None = None, shift: float = 1.0) -> pa.Table:
    site = rng.choice(SITES, n)
    offsets = {name: i * 0.5 for i, name in enumerate(SITES)}  # sites differ from each other
    x = rng.normal(0, 1, n) + np.array([offsets[s] for s in site])
    if shifted is not None:
        x = np.where(site == shifted, x + shift, x)
    return pa.table({"site": site, "x": x, "y": rng.normal(5, 2, n),
                     "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})


def _reference(seed: int) -> ReferenceSummary:
    summary, _ = summarize_rows(_plant(np.random.default_rng(seed), 20_000), FEATURES, 10, 100_000, "test")
    return ReferenceSummary.from_bytes(summary.to_bytes())


def test_the_reference_keeps_each_segment() -> None:
    summary = _reference(0)
    assert sorted(summary.segments) == [f"site={name}" for name in SITES]
    assert 800 <= summary.segments["site=s03"].rows <= 1200
    assert summary.segments["site=s03"].multivariate is None


@pytest.mark.parametrize("rows", [4_000, 10_000])
def test_a_shift_in_one_of_twenty_sites_is_found_there_only(rows: int) -> None:
    found_there = elsewhere = 0
    for seed in range(5):
        outcomes = evaluate_segments(_plant(np.random.default_rng(100 + seed), rows, shifted="s07"), KINDS,
                                     _reference(seed), SETTINGS, "bh", ["site"], min_rows=30)
        drifted = {o.segment: o.drifted_features for o in outcomes if o.drifted}
        found_there += drifted.get("site=s07") == ["x"]
        elsewhere += len(set(drifted) - {"site=s07"})
    assert found_there == 5 and elsewhere == 0


def test_false_alarms_across_segments_stay_at_the_tests_level() -> None:
    """Unchanged windows: the share of windows with any segment flagged stays near 1% (BH), not 1 - 0.99^60."""
    windows_flagged = 0
    for seed in range(60):
        outcomes = evaluate_segments(_plant(np.random.default_rng(500 + seed), 4_000), KINDS, _reference(seed % 10),
                                     SETTINGS, "bh", ["site"], min_rows=30)
        windows_flagged += any(o.drifted for o in outcomes)
    # uncorrected, 60 tests per window at 1% would flag ~45% of windows; corrected ≤ 1%: ≤ 3 of 60
    assert windows_flagged <= 3, windows_flagged


def test_without_correction_the_false_alarms_multiply() -> None:
    """The guarantee above comes from the correction: with none, unchanged windows are flagged often."""
    flagged = sum(any(o.drifted for o in evaluate_segments(_plant(np.random.default_rng(900 + seed), 4_000), KINDS,
                                                           _reference(seed), SETTINGS, "none", ["site"], min_rows=30))
                  for seed in range(10))
    assert flagged >= 3


def test_a_small_or_new_segment_is_listed_as_not_measured() -> None:
    summary = _reference(0)
    window = _plant(np.random.default_rng(1), 400)
    window = pa.concat_tables([window, pa.table({"site": ["new"] * 5, "x": [0.0] * 5, "y": [5.0] * 5,
                                                 "c": ["a"] * 5})])
    outcomes = {o.segment: o for o in evaluate_segments(window, KINDS, summary, SETTINGS, "bh", ["site"],
                                                        min_rows=30)}
    assert not outcomes["site=new"].in_reference and outcomes["site=new"].rows == 5
    small = [o for o in outcomes.values() if o.in_reference and o.rows < 30]
    assert all(o.missing_features == ["c", "x", "y"] for o in small)


def test_segment_by_is_bounded_and_validated() -> None:
    raw = {"name": "m", "source": {"type": "synthetic"}, "window": {"rows": 100},
           "features": {"numeric": ["temperature"], "segment_by": ["site"], "max_segments": 5}}
    features = build_config({"monitors": [raw]}, "test", environ={}).monitors[0].features
    assert features.segment_by == ["site"] and features.max_segments == 5
    summary, _ = summarize_rows(_plant(np.random.default_rng(0), 5_000), FeaturesConfig(
        numeric=["x"], segment_by=["site"], max_segments=5), 10, 100_000, "test")
    assert len(summary.segments) == 5
