"""Shift diagnosis on seeded scenarios: the right kind for drifted features, few findings on the others."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from monitor.config import FeaturesConfig, MeasureConfig
from monitor.divergence import MeasureRegistry, ReferenceSummary
from monitor.domain.diagnosis import Diagnosis, explain_window
from monitor.domain.evaluate import evaluate_window, resolve_measures
from monitor.domain.reference import feature_kinds, summarize_rows
from tests.explain_scenario import CATEGORICAL, INJECTED, NUMERIC, UNCHANGED, sensors

FEATURES = FeaturesConfig(numeric=NUMERIC, categorical=CATEGORICAL)
KINDS = feature_kinds(FEATURES)
SETTINGS = resolve_measures({"ks": MeasureConfig(threshold=0.01), "chi_square": MeasureConfig(threshold=0.01)},
                            MeasureRegistry())
ALPHA = 0.01


def _reference(seed: int) -> ReferenceSummary:
    summary, _ = summarize_rows(sensors(np.random.default_rng(seed), 5_000, drifted=False), FEATURES, 10, 100_000,
                                "test")
    return ReferenceSummary.from_bytes(summary.to_bytes())  # as the daemon reads it back


def _explain(window: pa.Table, summary: ReferenceSummary) -> dict[str, str]:
    evaluation = evaluate_window(window, KINDS, summary, SETTINGS, "bonferroni")
    drifted = [name for name, flagged in evaluation.feature_drifted.items() if flagged]
    return explain_window(window, KINDS, summary, drifted, alpha=ALPHA).kinds()


@pytest.mark.parametrize("rows", [300, 1_000, 5_000])
def test_the_diagnosis_names_the_injected_kind(rows: int) -> None:
    right = total = 0
    wrong = []
    for seed in range(6):
        summary = _reference(seed)
        kinds = _explain(sensors(np.random.default_rng(1000 + seed), rows, drifted=True), summary)
        for feature, expected in INJECTED.items():
            total += 1
            if kinds.get(feature) == expected:
                right += 1
            else:
                wrong.append((seed, feature, expected, kinds.get(feature)))
    assert right / total >= 0.9, wrong


def test_few_diagnoses_where_nothing_changed() -> None:
    """Undrifted windows: findings on at most the false-alarm rate of feature-windows (binomial slack)."""
    findings = checked = 0
    for seed in range(40):
        summary = _reference(seed)
        for rows in (300, 2_000):
            kinds = _explain(sensors(np.random.default_rng(5000 + seed), rows, drifted=False), summary)
            findings += len(kinds)
            checked += len(KINDS)
    # 1040 feature-windows at 1%: the mean is ≤ 10.4; 22 is past its 99.99th percentile
    assert findings <= 22, findings


def test_unchanged_features_in_a_drifted_window_stay_quiet() -> None:
    noisy = 0
    for seed in range(20):
        kinds = _explain(sensors(np.random.default_rng(9000 + seed), 1_000, drifted=True), _reference(seed))
        noisy += sum(1 for name in UNCHANGED if name in kinds)
    assert noisy <= 3, noisy


def test_the_sentences_say_what_happened() -> None:
    summary = _reference(0)
    window = sensors(np.random.default_rng(1), 2_000, drifted=True)
    evaluation = evaluate_window(window, KINDS, summary, SETTINGS, "bonferroni")
    drifted = [name for name, flagged in evaluation.feature_drifted.items() if flagged]
    sentences = {d.feature: d.sentence for d in explain_window(window, KINDS, summary, drifted).diagnoses}
    assert sentences["pressure"] == "pressure: values now look like humidity's (swap?)"
    assert sentences["status"].startswith("status: new category 'fault' in 1")
    assert re.fullmatch(r"temperature: mean up (0\.9\d*|1\.0\d*) reference sd", sentences["temperature"])
    assert "spread ×2" in sentences["vibration"]
    assert "voltage: missing values in 2" in sentences["voltage"]


def test_an_old_reference_says_the_missing_rate_is_not_measured() -> None:
    summary = _reference(0)
    old = ReferenceSummary(summary.features, summary.multivariate)
    explanation = explain_window(sensors(np.random.default_rng(1), 500, drifted=True), KINDS, old, [])
    assert "predates missing counts" in explanation.unexamined["voltage"]
    assert "missing_rate" not in explanation.kinds().values()


def test_vanished_and_reweighted_categories() -> None:
    summary = _reference(0)
    rng = np.random.default_rng(3)
    window = sensors(rng, 2_000, drifted=False)
    status = np.where(window.column("status").to_numpy(zero_copy_only=False) == "warn", "ok",
                      window.column("status").to_numpy(zero_copy_only=False))
    mode = rng.choice(["auto", "manual"], 2_000, p=[0.5, 0.5])
    window = window.set_column(window.schema.get_field_index("status"), "status", pa.array(status.astype(str)))
    window = window.set_column(window.schema.get_field_index("mode"), "mode", pa.array(mode))
    explanation = explain_window(window, KINDS, summary, ["status", "mode"])
    found = {d.feature: d for d in explanation.diagnoses}
    assert found["status"].kind == "vanished_category"
    assert "'warn'" in found["status"].sentence
    assert found["mode"].kind == "reweighted"
    assert found["mode"].figures["top"] in ("auto", "manual")


def test_a_diagnosis_round_trips_as_json() -> None:
    diagnosis = Diagnosis("x", "location", {"shift_sd": 1.5, "partner": "y"}, "x: mean up 1.5 reference sd")
    assert Diagnosis.from_dict(diagnosis.as_dict()) == diagnosis


def test_the_reference_keeps_its_missing_counts() -> None:
    summary = _reference(0)
    assert summary.rows == 5_000
    assert 20 <= summary.missing["voltage"] <= 80  # 1% of 5000
    assert summary.missing["temperature"] == 0 and summary.missing["status"] == 0


def test_the_demo_is_explained_as_it_was_injected() -> None:
    """The built-in demo's four shifts (mean, variance, new category, swapped sensors), named right."""
    from monitor.cli.demo import DEMO_REFERENCE_ROWS, DEMO_SHIFT_ROW, DEMO_WINDOW_ROWS, demo_monitor
    from monitor.config import build_config
    from plugins.connectors.synthetic import SyntheticConnector

    config = build_config({"monitors": [demo_monitor()]}, "test", {}).monitors[0]
    connector = SyntheticConnector(config.source.options)
    parts, cursor = [], None
    while sum(part.num_rows for part in parts) < DEMO_SHIFT_ROW + DEMO_WINDOW_ROWS:
        batch = connector.fetch(cursor, DEMO_WINDOW_ROWS)
        parts.append(batch.table)
        cursor = batch.cursor
    rows = pa.concat_tables(parts)
    summary, _ = summarize_rows(rows.slice(0, DEMO_REFERENCE_ROWS), config.features, config.reference.bins,
                                config.reference.max_rows, "demo")
    kinds = feature_kinds(config.features)
    settings = resolve_measures(config.measures, MeasureRegistry())
    found = {}
    for start in (DEMO_REFERENCE_ROWS, DEMO_SHIFT_ROW):
        window = rows.slice(start, DEMO_WINDOW_ROWS)
        evaluation = evaluate_window(window, kinds, summary, settings, config.drift.correction)
        drifted = [name for name, flagged in evaluation.feature_drifted.items() if flagged]
        found[start] = explain_window(window, kinds, summary, drifted).kinds()
    assert found[DEMO_REFERENCE_ROWS] == {}
    assert found[DEMO_SHIFT_ROW] == {"temperature": "location", "vibration": "scale", "status": "new_category",
                                     "pressure": "swap", "humidity": "swap"}


def test_swap_search_stays_cheap_on_wide_monitors() -> None:
    """200 numeric features, 50 drifted: each drifted window meets at most SWAP_CANDIDATES references."""
    import time

    from monitor.domain.shifts import swaps

    rng = np.random.default_rng(0)
    references = {f"f{i}": np.sort(rng.normal(i, 1, 5_000)) for i in range(200)}
    drifted = {f"f{i}": rng.normal(i + 3, 1, 1_000) for i in range(50)}
    started = time.perf_counter()
    found = swaps(drifted, references, 0.01)
    assert time.perf_counter() - started < 5
    assert {d.feature: d.figures["looks_like"] for d in found} == {f"f{i}": f"f{i + 3}" for i in range(50)}


PAIR = FeaturesConfig(numeric=["u", "v"])


def _pair(rng: np.random.Generator, n: int, r: float) -> pa.Table:
    """u, v ~ N(0, 1) with correlation ``r`` (their marginals do not depend on it)."""
    u, noise = rng.normal(0, 1, n), rng.normal(0, 1, n)
    return pa.table({"u": u, "v": r * u + np.sqrt(1 - r * r) * noise})


def _correlation_findings(window: pa.Table, summary: ReferenceSummary) -> list[Diagnosis]:
    found = explain_window(window, feature_kinds(PAIR), summary, [], alpha=ALPHA).diagnoses
    return [d for d in found if d.kind == "correlation"]


def test_a_tiny_but_significant_correlation_move_is_not_a_broken_correlation() -> None:
    summary, _ = summarize_rows(_pair(np.random.default_rng(30), 20_000, 0.8), PAIR, 10, 100_000, "test")
    summary = ReferenceSummary.from_bytes(summary.to_bytes())
    assert summary.multivariate is not None
    reference_r = float(np.corrcoef(summary.multivariate.sample, rowvar=False)[0, 1])
    window = _pair(np.random.default_rng(31), 100_000, 0.7)  # a large window: 0.8 -> 0.7 is far from chance
    window_r = float(np.corrcoef(window.column("u").to_numpy(), window.column("v").to_numpy())[0, 1])
    se = np.sqrt(1 / (summary.multivariate.sample.shape[0] - 3) + 1 / (window.num_rows - 3))
    p_value = 2 * stats.norm.sf(abs(np.arctanh(reference_r) - np.arctanh(window_r)) / se)
    assert p_value < ALPHA / 1_000 and abs(reference_r - window_r) < 0.3
    assert _correlation_findings(window, summary) == []  # significant, but too small a change to name
    broken = _correlation_findings(_pair(np.random.default_rng(32), 100_000, 0.0), summary)
    assert {(d.feature, d.figures["partner"]) for d in broken} == {("u", "v"), ("v", "u")}
    assert broken[0].figures["reference_r"] == pytest.approx(reference_r)
    assert abs(float(broken[0].figures["window_r"])) < 0.02


def test_a_large_correlation_move_in_a_few_rows_is_chance_not_a_broken_correlation() -> None:
    summary, _ = summarize_rows(_pair(np.random.default_rng(30), 20_000, 0.8), PAIR, 10, 100_000, "test")
    summary = ReferenceSummary.from_bytes(summary.to_bytes())
    rng = np.random.default_rng(33)
    u = rng.normal(0, 1, 12)
    u = (u - u.mean()) / u.std()
    noise = rng.normal(0, 1, 12)
    noise -= noise.mean() + (noise @ u) / (u @ u) * u  # orthogonal to u: the sample correlation is exactly 0.45
    v = 0.45 * u + np.sqrt(1 - 0.45 ** 2) * noise / noise.std()
    assert np.corrcoef(u, v)[0, 1] == pytest.approx(0.45)
    assert _correlation_findings(pa.table({"u": u, "v": v}), summary) == []  # moved by 0.35, but on 12 rows
