"""Explain a window's drift: per feature, what kind of change the window shows against the reference.

Drifted numeric features get their kind of shift (``monitor.domain.shifts``), or a swap when the
window matches another feature's reference; drifted categorical features their new, vanished and
re-weighted categories. Every feature's missing-value rate and every pair correlated in the
reference are tested too (a missing-rate jump or a broken correlation can leave the rest of the
distribution as it was, so no measure flags it). Every finding passes its own test at
``alpha``: on features that did not change, diagnoses stay near that false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special, stats

from monitor.divergence import (
    CategoricalSummary,
    CategoricalWindow,
    FeatureWindow,
    NumericSummary,
    NumericWindow,
    ReferenceSummary,
)
from monitor.domain.shifts import KINDS, Diagnosis, broken_correlations, ks_distance, numeric_shift, swaps

__all__ = ["KINDS", "Diagnosis", "Explanation", "explain_window"]

#: A category moves when its share changes by at least this much (and significantly).
MIN_MOVE = 0.02


@dataclass(frozen=True)
class Explanation:
    """The diagnoses of one window, and what could not be examined and why."""

    diagnoses: tuple[Diagnosis, ...] = ()
    unexamined: dict[str, str] = field(default_factory=dict)

    def kinds(self) -> dict[str, str]:
        """Each diagnosed feature's main kind (its first diagnosis)."""
        found: dict[str, str] = {}
        for diagnosis in self.diagnoses:
            found.setdefault(diagnosis.feature, diagnosis.kind)
        return found


def _numeric(column: pa.ChunkedArray) -> np.ndarray:
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return values.astype(np.float64, copy=False)


def explain_window(rows: pa.Table, kinds: Mapping[str, str], summary: ReferenceSummary, drifted: Iterable[str],
                   alpha: float = 0.01, windows: Mapping[str, FeatureWindow] | None = None) -> Explanation:
    """Diagnose one window: the drifted features' kinds of change, every feature's missing rate, correlations.

    ``alpha`` is each finding's false-alarm rate (halved between the distribution and missing-rate
    tests of a feature; Bonferroni across correlated pairs). ``windows``: the evaluation's prepared
    windows (``evaluate_window(..., keep_windows=True)``), whose sorted values and KS merges are reused.
    """
    drifted = [name for name in drifted if name in summary.features and name in rows.column_names]
    prepared = windows or {}
    unexamined: dict[str, str] = {}
    found: list[Diagnosis] = []
    numeric: dict[str, np.ndarray] = {}
    wanted = set(drifted)
    for name, kind in kinds.items():
        if name not in summary.features or name not in rows.column_names:
            continue
        column = rows.column(name)
        window = prepared.get(name)
        if kind == "numeric" and isinstance(window, NumericWindow):
            missing = rows.num_rows - window.n  # its values are the column's finite ones
        elif kind == "numeric":
            try:
                values = _numeric(column)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                unexamined[name] = f"column holds {column.type}, not numbers"
                continue
            finite = np.isfinite(values)
            missing = values.size - int(np.count_nonzero(finite))
            if name in wanted:  # only a drifted feature's values are examined further
                numeric[name] = values[finite] if missing else values
        else:
            missing = column.null_count
        found.extend(_missing_rate(name, summary, missing, rows.num_rows, alpha / 2, unexamined))
    references = {name: s.sorted_values for name, s in summary.features.items() if isinstance(s, NumericSummary)}
    # each drifted window sorted once, and its distance from its own reference merged once, for both uses
    # (the evaluation's own when it kept its windows: the same merge of the same arrays)
    sorted_windows: dict[str, np.ndarray] = {}
    own: dict[str, float] = {}
    for name in drifted:
        window = prepared.get(name)
        if name not in references:
            continue
        if isinstance(window, NumericWindow) and window.n:
            sorted_windows[name] = window.sorted
            own[name] = window.ks(references[name])
        elif name in numeric and numeric[name].size:
            sorted_windows[name] = np.sort(numeric[name])
            own[name] = ks_distance(references[name], sorted_windows[name])
    swapped = swaps(sorted_windows, references, alpha / 2, own_distances=own, sorted_windows=True)
    found.extend(swapped)
    explained = {d.feature for d in swapped}
    for name in drifted:
        if name in explained:
            continue
        reference = summary.features[name]
        if isinstance(reference, NumericSummary):
            if name in sorted_windows:
                found.extend(numeric_shift(name, reference.sorted_values, sorted_windows[name], alpha / 2,
                                           raw=own[name], window_sorted=True))
        elif isinstance(reference, CategoricalSummary):
            counted = prepared.get(name)
            found.extend(categorical_shift(name, reference, rows.column(name), alpha / 2,
                                           counted if isinstance(counted, CategoricalWindow) else None))
    found.extend(_correlations(rows, summary, explained, alpha))
    shown = {d.feature for d in found if d.kind not in ("missing_rate", "correlation")}
    found.extend(Diagnosis(name, "unclear", {}, f"{name}: drift flagged, but no shift of a known kind stands out")
                 for name in drifted if name not in shown and name not in unexamined)
    return Explanation(tuple(_primary_first(found, drifted)), unexamined)


def _primary_first(found: list[Diagnosis], drifted: list[str]) -> list[Diagnosis]:
    """Per feature, its distribution finding before its missing-rate or correlation one; features in order."""
    rank = {"missing_rate": 1, "correlation": 2}
    order = {name: i for i, name in enumerate(drifted)}
    return sorted(found, key=lambda d: (order.get(d.feature, len(order)), d.feature, rank.get(d.kind, 0)))


def _missing_rate(name: str, summary: ReferenceSummary, missing: int, rows: int, alpha: float,
                  unexamined: dict[str, str]) -> list[Diagnosis]:
    """A missing-value rate that differs from the reference's (Fisher's exact test at ``alpha``)."""
    if name not in summary.missing or summary.rows <= 0:
        unexamined[name] = "missing-value rate: the reference version predates missing counts (capture it again)"
        return []
    ref_missing, ref_rows = summary.missing[name], summary.rows
    if rows == 0:
        return []
    table = [[missing, rows - missing], [ref_missing, ref_rows - ref_missing]]
    p_value = float(stats.fisher_exact(table).pvalue) if missing + ref_missing else 1.0
    before, after = ref_missing / ref_rows, missing / rows
    if p_value >= alpha:
        return []
    return [Diagnosis(name, "missing_rate", {"reference_rate": before, "window_rate": after, "p_value": p_value},
                      f"{name}: missing values in {after:.1%} of rows (reference {before:.1%})")]


def categorical_shift(name: str, reference: CategoricalSummary, column: pa.ChunkedArray,
                      alpha: float, counted: CategoricalWindow | None = None) -> list[Diagnosis]:
    """New, vanished and re-weighted categories of one drifted categorical feature, largest change first.

    ``counted``: the column's counts when the caller has them (the evaluation's prepared window).
    """
    if counted is None:
        counted = CategoricalWindow.from_arrow(pc.cast(column, pa.string()))
    categories, counts = list(counted.categories), counted.counts
    n, n_ref = int(counts.sum()), reference.n
    if n == 0:
        return []
    window = dict(zip(categories, counts.tolist()))
    ref_share = {c: int(k) / n_ref for c, k in zip(reference.categories, reference.counts)}
    found: list[tuple[float, Diagnosis]] = []
    new = sorted((c for c in window if c not in ref_share), key=lambda c: -window[c])
    new_share = sum(window[c] for c in new) / n
    # Good-Turing: the reference's chance of a category it never saw is its share of singletons
    unseen = max(1, int(np.sum(reference.counts == 1))) / n_ref
    if new and stats.binomtest(sum(window[c] for c in new), n, unseen, alternative="greater").pvalue < alpha:
        top = new[0]
        others = f" and {len(new) - 1} more" if len(new) > 1 else ""
        found.append((new_share, Diagnosis(
            name, "new_category", {"new_share": new_share, "top": top, "top_share": window[top] / n, "count": len(new)},
            f"{name}: new category '{top}' in {window[top] / n:.0%} of rows{others}")))
    vanished = sorted((c for c, share in ref_share.items() if c not in window and (1 - share) ** n < alpha),
                      key=lambda c: -ref_share[c])
    if vanished:
        lost = sum(ref_share[c] for c in vanished)
        found.append((lost, Diagnosis(
            name, "vanished_category", {"vanished_share": lost, "top": vanished[0], "count": len(vanished)},
            f"{name}: category '{vanished[0]}' ({ref_share[vanished[0]]:.0%} of the reference) is gone"
            + (f", {len(vanished) - 1} more too" if len(vanished) > 1 else ""))))
    moves = _movers(window, ref_share, reference, set(vanished), alpha)
    if moves:
        moved = sum(abs(d) for _, d in moves) / 2
        top = moves[0][0]
        share = window.get(top, 0) / n
        found.append((moved, Diagnosis(
            name, "reweighted", {"top": top, "reference_share": ref_share[top], "window_share": share,
                                 "movers": ", ".join(c for c, _ in moves[:3])},
            f"{name}: '{top}' now {share:.0%} of rows (reference {ref_share[top]:.0%})")))
    return [d for _, d in sorted(found, key=lambda item: -item[0])]


def _movers(window: dict[str, int], ref_share: dict[str, float], reference: CategoricalSummary,
            vanished: set[str], alpha: float) -> list[tuple[str, float]]:
    """Known categories whose share among the known, present ones moved significantly, largest first.

    Shares are taken among the categories both sides have, so a new or vanished category does not
    count again as every other category's move. Two-proportion z test, Bonferroni across categories.
    """
    known = [c for c in ref_share if c not in vanished]
    n = sum(window.get(c, 0) for c in known)
    n_ref = int(sum(int(k) for c, k in zip(reference.categories, reference.counts) if c not in vanished))
    if n == 0 or n_ref == 0:
        return []
    moves = []
    for category in known:
        count = window.get(category, 0)
        before, after = ref_share[category] * reference.n / n_ref, count / n
        pooled = (before * n_ref + count) / (n_ref + n)
        se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n + 1 / n_ref))
        p_value = 2 * float(special.ndtr(-abs(after - before) / se)) * len(known)  # norm.sf, without its checks
        if p_value < alpha and abs(after - before) >= MIN_MOVE:
            moves.append((category, after - before))
    return sorted(moves, key=lambda m: -abs(m[1]))


def _correlations(rows: pa.Table, summary: ReferenceSummary, skip: set[str], alpha: float) -> list[Diagnosis]:
    """Broken correlations among the reference's numeric features (a swapped feature's already explained)."""
    joint = summary.multivariate
    if joint is None or any(name not in rows.column_names for name in joint.features):
        return []
    try:
        columns = np.column_stack([_numeric(rows.column(name)) for name in joint.features])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return []
    complete = columns[np.isfinite(columns).all(axis=1)]
    return [d for d in broken_correlations(joint.sample, complete, joint.features, alpha / 2)
            if d.feature not in skip and d.figures["partner"] not in skip]
