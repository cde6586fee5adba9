"""`driftd compare REF LIVE`: a one-off report on two files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from click.testing import CliRunner

from monitor.cli import main
from tests.helpers import sample_table, write_csv


def _files(tmp_path: Path, shift: float) -> tuple[str, str]:
    ref = write_csv(tmp_path / "ref.csv", sample_table(2000, seed=1).drop_columns(["id"]))
    live = write_csv(tmp_path / "live.parquet.csv", sample_table(1000, seed=2, shift=shift).drop_columns(["id"]))
    return str(ref), str(live)


def test_compare_reports_drift_with_exit_code_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=1.0), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["drift"] is True and report["drifted_features"] == ["a"]
    assert {r["measure"] for r in report["results"] if r["feature"] == "c"} == {"chi_square"}


def test_compare_same_distribution_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=0.0)])
    assert result.exit_code == 0, result.output
    assert "dataset drift: no" in result.output


def test_compare_names_an_unknown_measure(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=0.0), "--measures", "ks,bogus"])
    assert result.exit_code == 2 and "bogus" in result.output


def test_compare_writes_a_self_contained_html_report(tmp_path: Path) -> None:
    from html.parser import HTMLParser

    target = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=1.0), "--html", str(target),
                                       "--measures", "ks,psi,chi_square,mmd"])
    assert result.exit_code == 1, result.output
    page = target.read_text(encoding="utf-8")

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str | None]]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append((tag, dict(attrs)))

    parser = Collect()
    parser.feed(page)
    assert sum(tag == "svg" for tag, _ in parser.tags) == 3  # a, b and c
    assert not [attrs for tag, attrs in parser.tags if tag in {"script", "link", "img"}], "no external resources"
    assert "a (drifted)" in page and "All numeric features jointly" in page and "Dataset drift: YES" in page


def test_compare_says_what_changed(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=1.0), "--html", str(target)])
    assert result.exit_code == 1, result.output
    assert "what changed: a: mean up" in result.output and "[location]" in result.output
    page = target.read_text(encoding="utf-8")
    assert "<h2>What changed</h2>" in page and 'data-kind="location"' in page
    assert '<p class="change">a: mean up' in page
    report = json.loads(CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=1.0), "--json"]).output)
    assert [(d["feature"], d["kind"]) for d in report["diagnoses"]] == [("a", "location")]
    calm = json.loads(CliRunner().invoke(main, ["compare", *_files(tmp_path, shift=0.0), "--json"]).output)
    assert calm["diagnoses"] == []


def _sites(rng: np.random.Generator, per_site: int, shifted: str | None) -> pa.Table:
    """20 sites of x ~ N(0, 1) and c in {p, q}; x shifted by 1 at site ``shifted``."""
    site = np.repeat([f"s{i:02d}" for i in range(20)], per_site)
    x = rng.normal(0, 1, site.size) + np.where(site == shifted, 1.0, 0.0)
    return pa.table({"site": site, "x": x, "c": rng.choice(["p", "q"], site.size)})


def test_compare_with_segments_names_the_segment_that_drifted(tmp_path: Path) -> None:
    ref = write_csv(tmp_path / "ref.csv", _sites(np.random.default_rng(40), 300, None))
    live = write_csv(tmp_path / "live.csv", _sites(np.random.default_rng(41), 200, "s07"))
    target = tmp_path / "report.html"
    args = ["compare", str(ref), str(live), "--measures", "ks,chi_square", "--segment-by", "site"]
    result = CliRunner().invoke(main, [*args, "--json", "--html", str(target)])
    report = json.loads(result.output)
    assert {r["feature"] for r in report["results"]} == {"x", "c"}  # the segment column is no feature
    assert len(report["segments"]) == 20
    assert [(o["segment"], o["drifted_features"]) for o in report["segments"] if o["drifted"]] == [("site=s07", ["x"])]
    assert {o["rows"] for o in report["segments"]} == {200}
    page = target.read_text(encoding="utf-8")
    assert "<h2>Segments</h2>" in page and "1 of 20 segments drifted" in page
    assert '<tr class="flag"><td>site=s07</td><td class="num">200</td><td>x</td>' in page
    text = CliRunner().invoke(main, args)
    assert "segments drifted: site=s07 (x) (of 20)" in text.output, text.output
    plain = json.loads(CliRunner().invoke(main, ["compare", str(ref), str(live), "--json"]).output)
    assert plain["segments"] == [] and "site" in {r["feature"] for r in plain["results"]}
    without = CliRunner().invoke(main, [*args[:-1], "zone"])
    assert without.exit_code == 2 and "segment column 'zone' is missing" in without.output, without.output
