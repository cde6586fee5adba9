"""``min_effect``: on large windows a test flags only a shift that is significant AND large enough."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.config import ConfigError, MeasureConfig, build_config
from monitor.divergence import MeasureRegistry, ReferenceSummary, summarize_numeric
from monitor.domain.evaluate import evaluate_window, resolve_measures


def ks_verdicts(shift: float, **config: float) -> tuple[bool, float, float]:
    rng = np.random.default_rng(5)
    summary = ReferenceSummary({"x": summarize_numeric(rng.normal(size=100_000))})
    window = pa.table({"x": rng.normal(shift, 1.0, size=100_000)})
    settings = resolve_measures({"ks": MeasureConfig(**config)}, MeasureRegistry())
    [result] = evaluate_window(window, {"x": "numeric"}, summary, settings, "bh").results
    assert result.p_value is not None
    return result.drifted, result.value, result.p_value


def test_a_significant_but_tiny_shift_is_not_flagged_with_min_effect() -> None:
    drifted, d, p = ks_verdicts(0.03)
    assert drifted and p < 1e-6 and d < 0.05  # 100k rows: 0.03 standard deviations is "significant"
    assert ks_verdicts(0.03, min_effect=0.05)[0] is False
    assert ks_verdicts(0.3, min_effect=0.05)[0] is True  # D about 0.12: large and significant


def test_min_effect_is_for_tests_and_must_be_finite() -> None:
    with pytest.raises(ValueError, match="'psi'.*min_effect applies to tests"):
        resolve_measures({"psi": MeasureConfig(min_effect=0.1)}, MeasureRegistry())
    raw = {"name": "m", "source": {"type": "files"}, "features": {"numeric": ["x"]}, "window": {"rows": 10}}
    for bad in ({"min_effect": float("nan")}, {"threshold": float("nan")}, {"min_effect": float("inf")}):
        with pytest.raises(ConfigError, match="'m'"):
            build_config({"monitors": [raw | {"measures": {"ks": bad}}]}, "test", environ={})
