"""Data-quality checks of a window beside the divergences: missing values, range, categories, types, constants.

Each configured check gives every feature it applies to one result (measure ``quality.<check>``),
stored and exported like a measure's; a check with ``vote: true`` makes a feature it fails drifted.
A value of a numeric feature that is not a number was read as missing (``monitor.domain.values``),
and the window knows how many of its values were such (``WindowSlice.invalid``): ``type_changed``
fails on their share, and on a categorical feature's values that read as numbers where none of
the reference's categories did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from monitor.config import QualityConfig
from monitor.divergence import CategoricalSummary, NumericSummary, ReferenceSummary, adjust_p_values
from monitor.domain.evaluate import WindowEvaluation
from monitor.domain.records import ResultRecord
from monitor.domain.shifts import Diagnosis
from monitor.domain.values import InvalidValues

PREFIX = "quality."
#: Each check's default level: a significance level (missing_rate) or a share.
DEFAULTS = {"missing_rate": 0.01, "out_of_range": 0.05, "new_category": 0.02, "vanished_category": 0.05,
            "constant": 0.5, "type_changed": 0.01}
#: A category's absence, or a constant column, counts only when chance would give it less often than this.
CHANCE = 0.001


@dataclass(frozen=True)
class Column:
    """One feature's window values: the usable ones, how many rows were missing, the reference summary.

    ``invalid``: how many of the missing ones were values that were not numbers (numeric features).
    """

    name: str
    values: np.ndarray | dict[str, int]
    missing: int
    rows: int
    reference: NumericSummary | CategoricalSummary
    invalid: int = 0


def _column(rows: pa.Table, name: str, kind: str, reference: NumericSummary | CategoricalSummary,
            invalid: InvalidValues | None) -> Column:
    column = rows.column(name)
    if kind == "numeric":
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        usable = values[np.isfinite(values)]
        return Column(name, usable, values.size - usable.size, rows.num_rows, reference,
                      invalid.count if invalid is not None else 0)
    counted = pc.value_counts(pc.drop_null(pc.cast(column, pa.string())))
    counts = {str(v): int(c) for v, c in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())}
    return Column(name, counts, column.null_count, rows.num_rows, reference)


def _missing_rate(column: Column, summary: ReferenceSummary) -> tuple[float, float | None]:
    """Window missing share, and Fisher's exact p-value against the reference's missing share."""
    if column.name not in summary.missing or summary.rows <= 0:
        raise LookupError("the reference version predates missing counts (capture it again)")
    ref_missing = summary.missing[column.name]
    table = [[column.missing, column.rows - column.missing], [ref_missing, summary.rows - ref_missing]]
    p_value = float(stats.fisher_exact(table).pvalue) if column.missing + ref_missing else 1.0
    return column.missing / column.rows, p_value


def _out_of_range(column: Column, summary: ReferenceSummary) -> tuple[float, float | None]:
    if not isinstance(column.reference, NumericSummary):
        raise TypeError
    values = column.values
    assert isinstance(values, np.ndarray)
    if values.size == 0:
        raise LookupError("no usable values in the window")
    reference = column.reference.sorted_values
    return float(np.mean((values < reference[0]) | (values > reference[-1]))), None


def _category_counts(column: Column) -> tuple[CategoricalSummary, dict[str, int], int]:
    """A categorical column's reference, its window counts and their total (LookupError when empty)."""
    if not isinstance(column.reference, CategoricalSummary):
        raise TypeError
    counts = column.values
    assert isinstance(counts, dict)
    total = sum(counts.values())
    if total == 0:
        raise LookupError("no usable values in the window")
    return column.reference, counts, total


def _new_category(column: Column, summary: ReferenceSummary) -> tuple[float, float | None]:
    reference, counts, total = _category_counts(column)
    known = reference.index
    return sum(count for category, count in counts.items() if category not in known) / total, None


def _vanished_category(column: Column, summary: ReferenceSummary) -> tuple[float, float | None]:
    reference, counts, total = _category_counts(column)
    shares = reference.counts / reference.n
    return float(sum(share for category, share in zip(reference.categories, shares)
                     if category not in counts and (1 - share) ** total < CHANCE)), None


def _constant(column: Column, summary: ReferenceSummary) -> tuple[float, float | None]:
    """1 when the window holds one value where the reference held several and chance would rarely do so."""
    reference = column.reference
    if isinstance(reference, NumericSummary):
        values = column.values
        assert isinstance(values, np.ndarray)
        n, distinct = values.size, np.unique(values).size
        ref = reference.sorted_values
        top = float(np.max(np.unique(ref, return_counts=True)[1])) / ref.size
    else:
        counts = column.values
        assert isinstance(counts, dict)
        n, distinct = sum(counts.values()), len(counts)
        top = float(reference.counts.max()) / reference.n
    if n == 0:
        raise LookupError("no usable values in the window")
    return float(distinct == 1 and top < 1 and top ** n < CHANCE), None


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers_among(counts: dict[str, int]) -> list[str]:
    """The categories that read as numbers, most frequent first."""
    return sorted((c for c in counts if _reads_as_number(c)), key=lambda c: -counts[c])


def _type_changed(column: Column, summary: ReferenceSummary) -> tuple[float, float | None]:
    """Share of the window's present values not of the feature's type.

    Numeric: values that were not numbers. Categorical: values that read as numbers, where none of the
    reference's categories did (a reference with numeric-looking categories is not checked).
    """
    reference = column.reference
    if isinstance(reference, NumericSummary):
        present = column.rows - column.missing + column.invalid
        if present == 0:
            raise LookupError("no values in the window")
        return column.invalid / present, None
    if any(_reads_as_number(category) for category in reference.categories):
        raise TypeError  # numbers are among its categories: a number is no change of type
    counts = column.values
    assert isinstance(counts, dict)
    total = sum(counts.values())
    if total == 0:
        raise LookupError("no usable values in the window")
    return sum(counts[c] for c in _numbers_among(counts)) / total, None


CHECKS: dict[str, Callable[[Column, ReferenceSummary], tuple[float, float | None]]] = {
    "missing_rate": _missing_rate, "out_of_range": _out_of_range, "new_category": _new_category,
    "vanished_category": _vanished_category, "constant": _constant, "type_changed": _type_changed,
}


def check_quality(rows: pa.Table, kinds: Mapping[str, str], summary: ReferenceSummary, config: QualityConfig,
                  evaluation: WindowEvaluation, correction: str, min_rows: int = 0,
                  invalid: Mapping[str, InvalidValues] | None = None) -> WindowEvaluation:
    """``evaluation`` with the configured checks' results added, and their votes.

    ``invalid``: per numeric feature, the window's values that were not numbers (``WindowSlice.invalid``).
    The missing-rate p-values are corrected across features like a test's. A check that cannot be
    made on a feature is listed in ``failed_measures`` with the reason; it takes no verdict away.
    Share checks need ``min_rows`` usable values to fail (a few rows are too noisy to judge).
    """
    configured = {name: check for name in CHECKS if (check := getattr(config, name)) is not None}
    if not configured:
        return evaluation
    invalid = invalid or {}
    columns = {name: _column(rows, name, kind, summary.features[name], invalid.get(name))
               for name, kind in kinds.items()
               if name in summary.features and name in rows.column_names}
    results, drifted = list(evaluation.results), dict(evaluation.feature_drifted)
    missing, failed = dict(evaluation.missing), dict(evaluation.failed_measures)
    for check, options in configured.items():
        threshold = DEFAULTS[check] if options.threshold is None else options.threshold
        scored, reasons = [], {}
        for name, column in columns.items():
            try:
                scored.append((name, *CHECKS[check](column, summary)))
            except TypeError:
                continue  # the check does not apply to this kind of feature
            except LookupError as error:
                reasons[name] = str(error)
        if reasons:
            failed[PREFIX + check] = "; ".join(f"feature {name!r}: {why}" for name, why in reasons.items())
        adjusted = (adjust_p_values([p for _, _, p in scored], correction) if check == "missing_rate"
                    else [None] * len(scored))
        for (name, value, p_value), p_adjusted in zip(scored, adjusted):
            if p_adjusted is not None:
                flagged = p_adjusted < threshold
            else:
                column = columns[name]
                present = column.rows - column.missing + (column.invalid if check == "type_changed" else 0)
                enough = check == "constant" or present >= min_rows
                flagged = enough and value >= threshold if check != "constant" else value >= 1
            results.append(ResultRecord(name, PREFIX + check, value, p_value,
                                        None if p_adjusted is None else float(p_adjusted), threshold, bool(flagged)))
            if flagged and options.vote:
                drifted[name] = True
                missing.pop(name, None)
    return replace(evaluation, results=results, feature_drifted=drifted, missing=missing, failed_measures=failed)


def type_changes(rows: pa.Table, results: list[ResultRecord],
                 invalid: Mapping[str, InvalidValues]) -> list[Diagnosis]:
    """A sentence for each feature that failed ``type_changed`` in the window (kind ``type_changed``)."""
    found = []
    for result in results:
        if result.measure != PREFIX + "type_changed" or not result.drifted:
            continue
        name, share = result.feature, result.value
        if name in invalid:
            example, what = invalid[name].example, "not numbers"
        else:
            counted = pc.value_counts(pc.drop_null(pc.cast(rows.column(name), pa.string())))
            counts = dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))
            numbers = _numbers_among(counts)
            example, what = (numbers[0] if numbers else ""), "numbers where the reference held text"
        found.append(Diagnosis(name, "type_changed", {"share": share, "example": example},
                               f"{name}: {share:.0%} of values are {what} (e.g. {example!r}) — "
                               "the column's type changed?"))
    return found


def quality_outcomes(results: list[ResultRecord]) -> list[tuple[str, str, bool]]:
    """(feature, check, failed) of each quality check among a window's results."""
    return [(r.feature, r.measure[len(PREFIX):], r.drifted) for r in results if r.measure.startswith(PREFIX)]


__all__ = ["CHECKS", "DEFAULTS", "PREFIX", "check_quality", "quality_outcomes", "type_changes"]
