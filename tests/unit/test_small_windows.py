"""Distances from a handful of rows do not cry drift; tests still judge small windows by their p-values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from monitor.divergence import compare

MEASURES = ["ks", "psi", "wasserstein", "jensen_shannon"]


def _tables(rows: int, shift: float, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    reference = pa.table({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    window = pa.table({"a": rng.normal(shift, 1, rows), "b": rng.normal(shift, 1, rows)})
    return reference, window


def test_a_few_unshifted_rows_are_not_drift_although_their_distances_are_large() -> None:
    for rows in (1, 2, 5, 20):
        report = compare(*_tables(rows, 0.0, seed=rows), MEASURES)
        assert not report.drift and report.drifted_features == [], rows
    noisy = compare(*_tables(5, 0.0), MEASURES, min_rows=0)
    assert noisy.drifted_features == ["a", "b"], "without the minimum, PSI on 5 rows flags everything"


def test_a_big_shift_in_a_small_window_is_still_caught_by_the_test() -> None:
    report = compare(*_tables(20, 3.0), MEASURES)
    assert report.drift and report.drifted_features == ["a", "b"]
    assert all(r.drifted for r in report.results if r.measure == "ks")
    assert not any(r.drifted for r in report.results if r.measure == "psi")  # recorded, not voting


def test_enough_rows_let_distances_vote() -> None:
    report = compare(*_tables(500, 1.0), ["psi"])
    assert report.drifted_features == ["a", "b"]
