"""A self-contained HTML report of one comparison: per-feature distributions and every measure."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.divergence import DriftReport
from monitor.domain.records import ALL_FEATURES, ResultRecord

BINS = 30
WIDTH, HEIGHT = 360, 120
COLORS = {"reference": "#4c78a8", "live": "#f58518"}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:70rem}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
.verdict{padding:.6rem 1rem;border-radius:.3rem;display:inline-block}
.drift{background:#fde2e1;color:#9b1c1c} .ok{background:#def7ec;color:#03543f}
.feature{border-top:1px solid #ddd;padding:1rem 0;display:flex;gap:2rem;flex-wrap:wrap;align-items:flex-start}
table{border-collapse:collapse;font-size:.9rem} td,th{padding:.2rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} tr.flag td{color:#9b1c1c;font-weight:600}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""


def _numbers(table: pa.Table, name: str) -> np.ndarray:
    values = pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
    return values[np.isfinite(values)]


def _categories(table: pa.Table, name: str) -> dict[str, int]:
    counts = pc.value_counts(pc.drop_null(pc.cast(table.column(name), pa.string())))
    return {str(item["values"]): int(item["counts"]) for item in counts.to_pylist()}


def _bars(series: dict[str, np.ndarray], labels: Sequence[str]) -> str:
    """Side-by-side bars of proportions, one colour per series, as inline SVG."""
    peak = max((float(values.max()) for values in series.values() if values.size), default=0.0) or 1.0
    slot = WIDTH / max(len(labels), 1)
    width = slot / (len(series) + 0.5)
    shapes = []
    for offset, (name, values) in enumerate(series.items()):
        for index, value in enumerate(values):
            height = HEIGHT * float(value) / peak
            shapes.append(f'<rect x="{index * slot + offset * width:.1f}" y="{HEIGHT - height:.1f}" '
                          f'width="{width:.1f}" height="{height:.1f}" fill="{COLORS[name]}">'
                          f'<title>{html.escape(labels[index])}: {name} {value:.3f}</title></rect>')
    return (f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(shapes)}</svg>')


def numeric_plot(reference: np.ndarray, live: np.ndarray) -> str:
    """Histograms of both samples over common bins (proportions)."""
    both = np.concatenate([reference, live])
    if both.size == 0:
        return "<p>no values</p>"
    edges = np.histogram_bin_edges(both, bins=BINS)
    series = {name: np.histogram(values, edges)[0] / max(values.size, 1)
              for name, values in (("reference", reference), ("live", live))}
    labels = [f"{low:.4g}..{high:.4g}" for low, high in zip(edges[:-1], edges[1:])]
    return _bars(series, labels) + f'<div>{edges[0]:.4g} … {edges[-1]:.4g}</div>'


def categorical_plot(reference: dict[str, int], live: dict[str, int]) -> str:
    """Category frequencies of both samples (the 20 most frequent overall)."""
    totals = {key: reference.get(key, 0) + live.get(key, 0) for key in {*reference, *live}}
    labels = sorted(totals, key=lambda key: -totals[key])[:20]
    series = {name: np.array([counts.get(key, 0) for key in labels]) / max(sum(counts.values()), 1)
              for name, counts in (("reference", reference), ("live", live))}
    return _bars(series, labels) + f"<div>{html.escape(', '.join(labels[:8]))}{' …' if len(labels) > 8 else ''}</div>"


def _results_table(results: Sequence[ResultRecord]) -> str:
    rows = "".join(
        f'<tr class="{"flag" if r.drifted else ""}"><td>{html.escape(r.measure)}</td>'
        f'<td class="num">{r.value:.4g}</td>'
        f'<td class="num">{"" if r.p_value is None else f"{r.p_value:.3g}"}</td>'
        f'<td class="num">{r.threshold:g}</td><td>{"drift" if r.drifted else ""}</td></tr>'
        for r in results)
    return (f"<table><tr><th>measure</th><th>value</th><th>p-value</th><th>threshold</th><th></th></tr>"
            f"{rows}</table>")


def _changes(report: DriftReport) -> str:
    """The "what changed" list: one sentence per diagnosis, with its kind."""
    if not report.diagnoses:
        return '<section class="changes"><h2>What changed</h2><p>No change of a known kind found.</p></section>'
    items = "".join(f'<li data-kind="{html.escape(str(d["kind"]))}">{html.escape(str(d["sentence"]))} '
                    f'<small>[{html.escape(str(d["kind"]))}]</small></li>' for d in report.diagnoses)
    return f'<section class="changes"><h2>What changed</h2><ul>{items}</ul></section>'


def _segments(report: DriftReport) -> str:
    """The segments table (``segment_by``): each segment's rows and drifted features, drifted ones first."""
    if not report.segments:
        return ""
    ordered = sorted(report.segments, key=lambda o: not o["drifted"])
    rows = "".join(
        f'<tr class="{"flag" if o["drifted"] else ""}"><td>{html.escape(str(o["segment"]))}</td>'
        f'<td class="num">{o["rows"]}</td><td>{html.escape(", ".join(o["drifted_features"]))}</td>'
        f'<td>{"not in the reference" if not o["in_reference"] else html.escape(", ".join(o["missing_features"]))}'
        f'</td></tr>' for o in ordered)
    drifted = sum(1 for o in report.segments if o["drifted"])
    return (f'<section class="segments"><h2>Segments</h2><p>{drifted} of {len(report.segments)} segments drifted '
            f'(p-values corrected across segments).</p><table><tr><th>segment</th><th>rows</th>'
            f'<th>drifted features</th><th>not measured</th></tr>{rows}</table></section>')


def render_html(report: DriftReport, reference: pa.Table, live: pa.Table, numeric: Sequence[str],
                categorical: Sequence[str], title: str = "driftd report") -> str:
    """The whole report as one HTML document with no external resources."""
    verdict = "drift" if report.drift else "ok"
    sections = []
    joint = [r for r in report.results if r.feature == ALL_FEATURES]
    if joint:
        sections.append(f'<div class="feature"><div><h2>All numeric features jointly</h2>'
                        f'{_results_table(joint)}</div></div>')
    for name in [*numeric, *categorical]:
        results = [r for r in report.results if r.feature == name]
        if name in report.missing_features:
            body = f"<p>not measured: {html.escape(report.missing_features[name])}</p>"
        elif name in numeric:
            body = numeric_plot(_numbers(reference, name), _numbers(live, name))
        else:
            body = categorical_plot(_categories(reference, name), _categories(live, name))
        flag = " (drifted)" if name in report.drifted_features else ""
        said = "".join(f'<p class="change">{html.escape(str(d["sentence"]))}</p>' for d in report.diagnoses
                       if d["feature"] == name)
        sections.append(f'<div class="feature"><div><h2>{html.escape(name)}{flag}</h2>{said}{body}</div>'
                        f'<div>{_results_table(results)}</div></div>')
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Reference: {report.reference_rows} rows. Live: {report.window_rows} rows. Created {created}.</p>
<p class="verdict {verdict}">Dataset drift: {"YES" if report.drift else "no"} —
{report.drift_share:.0%} of features drifted{": " + html.escape(", ".join(report.drifted_features))
if report.drifted_features else ""}</p>
{_changes(report)}
{_segments(report)}
<p class="legend"><span style="background:{COLORS["reference"]}"></span>reference
<span style="background:{COLORS["live"]}"></span>live</p>
{"".join(sections)}
</body></html>
"""
