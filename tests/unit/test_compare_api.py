"""The public Python API: ``monitor.divergence.compare``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.divergence import as_table, compare
from tests.helpers import sample_table


def test_compare_tables_reports_the_shifted_feature() -> None:
    report = compare(sample_table(2000, seed=1), sample_table(1000, seed=2, shift=0.7),
                     measures=["ks", "psi", "chi_square"], numeric=["a", "b"], categorical=["c"])
    assert report.drift and report.drifted_features == ["a"]
    assert report.reference_rows == 2000 and report.window_rows == 1000
    assert {(r.feature, r.measure) for r in report.results} == {
        ("a", "ks"), ("b", "ks"), ("a", "psi"), ("b", "psi"), ("c", "psi"), ("c", "chi_square")}
    assert report.to_dict()["results"][0]["feature"] == "a"


def test_compare_infers_features_and_takes_numpy_and_mappings() -> None:
    generator = np.random.default_rng(3)
    reference = generator.normal(size=(1500, 3))
    same = generator.normal(size=(800, 3))
    report = compare(reference, same, measures={"ks": {}, "mmd": {"options": {"permutations": 30}}})
    assert not report.drift and {r.feature for r in report.results} == {"x0", "x1", "x2", "*"}
    shifted = {"x0": same[:, 0] + 1.0, "x1": same[:, 1], "x2": same[:, 2]}
    assert compare(reference, shifted, measures=["mmd"]).drifted_features == ["*"]


def test_compare_names_bad_input() -> None:
    with pytest.raises(KeyError, match="unknown measure 'nope'"):
        compare(sample_table(100, seed=1), sample_table(100, seed=2), measures=["nope"])
    with pytest.raises(TypeError, match="cannot compare a str"):
        as_table("not a table")
    with pytest.raises(ValueError, match="2-D"):
        as_table(np.zeros(3))


def test_compare_measures_each_segment_against_its_own_reference() -> None:
    reference, window = sample_table(3000, seed=4), sample_table(2000, seed=5)
    # segment "c" is a site: its values split both sides; only site x's a moved
    window = window.set_column(1, "a", pa.array(np.where(np.asarray(window.column("c")) == "x", 0.5, 0.0)
                                                + np.asarray(window.column("a"))))
    report = compare(reference.drop_columns(["id"]), window.drop_columns(["id"]), measures=["ks", "chi_square"],
                     segment_by=["c"])
    assert {r.feature for r in report.results} == {"a", "b"}  # inferred features leave the segment column out
    drifted = {o["segment"]: o["drifted_features"] for o in report.segments if o["drifted"]}
    assert drifted == {"c=x": ["a"]}
    assert [o["segment"] for o in report.segments] == ["c=x", "c=y", "c=z"]  # most frequent in the reference first
    assert report.to_dict()["segments"] == report.segments
