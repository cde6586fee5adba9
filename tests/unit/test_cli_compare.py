"""`driftd compare REF LIVE`: a one-off report on two files."""

from __future__ import annotations

import json
from pathlib import Path

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
