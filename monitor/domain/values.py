"""Feature columns as their configured kind, whatever type the source gave them in this batch.

A source's column can change type mid-stream: numbers for a while, then one ``"n/a"``; an int in
one file and text in the next; a JSON field that turns from number to string. Rows of different
batches then could not be put together, and the monitor would stop at them for good. Instead each
batch's numeric features become float64 and its categorical features text before they join the
waiting rows; a value of a numeric feature that is not a number becomes null and is counted as
*invalid* (the caller reports it), so the feature is measured on its other values, or listed as
missing in a window where none is left. With ``marks``, each such value also stays beside its row,
as text in a hidden column (``INVALID_PREFIX`` + feature), so a window knows how many of its own
values were of another type (``take_marks``; the ``type_changed`` quality check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from monitor.connector import as_text

#: Longest example value quoted in a report (values come from the source, they may be huge).
EXAMPLE_CHARS = 40
#: Text that spells a missing value (Arrow's CSV defaults, so a column reads the same whether Arrow
#: typed it as numbers or as text): null, not invalid. "nan" and its kin are NaN, also missing.
MISSING_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "N/A", "NA", "NULL", "n/a", "null", "None", "none"})
#: Name prefix of the hidden column holding a numeric feature's values that were not numbers.
INVALID_PREFIX = "__driftd_invalid__:"


@dataclass(frozen=True)
class InvalidValues:
    """Values of one numeric feature that are not numbers: how many, and one of them (cut short)."""

    count: int
    example: str

    def plus(self, other: InvalidValues) -> InvalidValues:
        """Both counts together (the first example kept)."""
        return InvalidValues(self.count + other.count, self.example)


def _cut(value: object) -> str:
    text = str(value)
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "…"


def _is_number_type(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_boolean(kind) or pa.types.is_null(kind))


def as_numbers(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray | pa.Array, InvalidValues | None]:
    """A column as float64; text that is not a number (Python's ``float()`` rule) becomes null, counted.

    Text that spells a missing value (empty, ``NA``, ``null``, …: ``MISSING_MARKERS``) is null, not invalid.
    """
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if _is_number_type(column.type):
        return pc.cast(column, pa.float64()), None
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            return pc.cast(column, pa.float64()), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _parse_numbers(pc.cast(column, pa.string()))
    # timestamps, binary, nested values: none of them is a number
    values = column.drop_null()
    example = _cut(values[0].as_py()) if len(values) else ""
    invalid = InvalidValues(len(values), example) if len(values) else None
    return pa.nulls(len(column), pa.float64()), invalid


def _parse_numbers(strings: pa.ChunkedArray) -> tuple[pa.Array, InvalidValues | None]:
    """Each distinct text parsed once; those that are not numbers become null."""
    valid_text, valid_numbers, bad = [], [], []
    for text in pc.unique(strings).to_pylist():
        if text is None or text.strip() in MISSING_MARKERS:  # a missing value, not an invalid one
            continue
        try:
            number = float(text)
        except ValueError:
            bad.append(text)
            continue
        valid_text.append(text)
        valid_numbers.append(number)
    position = pc.index_in(strings, value_set=pa.array(valid_text, type=pa.string()))
    numbers = pc.take(pa.array(valid_numbers, type=pa.float64()), position)
    markers = pa.array(sorted(MISSING_MARKERS), type=pa.string())
    blank = pc.sum(pc.is_in(pc.utf8_trim_whitespace(strings), value_set=markers)).as_py() or 0
    invalid = len(strings) - strings.null_count - blank - (len(numbers) - numbers.null_count)
    return numbers, InvalidValues(invalid, _cut(bad[0])) if invalid else None


def _invalid_text(original: pa.ChunkedArray, numbers: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Per row: the original value (as text, cut short) where it was present but not a number, else null."""
    if pa.types.is_dictionary(original.type):
        original = pc.cast(original, original.type.value_type)
    text = as_text(original)
    markers = pa.array(sorted(MISSING_MARKERS), type=pa.string())
    blank = pc.fill_null(pc.is_in(pc.utf8_trim_whitespace(text), value_set=markers), False)
    bad = pc.and_(pc.and_(pc.is_valid(original), pc.is_null(numbers)), pc.invert(blank))
    return pc.if_else(bad, pc.utf8_slice_codeunits(text, 0, EXAMPLE_CHARS), pa.scalar(None, pa.string()))


def normalise_features(table: pa.Table, kinds: Mapping[str, str],
                       marks: bool = False) -> tuple[pa.Table, dict[str, InvalidValues]]:
    """``table`` with its numeric features as float64 and its categorical ones as text; the invalid values.

    ``marks``: a numeric feature with invalid values gets a hidden column of them (``INVALID_PREFIX``).
    """
    invalid: dict[str, InvalidValues] = {}
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        kind = kinds.get(name)
        if kind == "numeric":
            original = column
            column, bad = as_numbers(column)
            if bad is not None:
                invalid[name] = bad
                if marks:
                    columns[INVALID_PREFIX + name] = _invalid_text(original, column)
        elif kind == "categorical" and not pa.types.is_string(column.type):
            column = as_text(pc.cast(column, column.type.value_type)
                             if pa.types.is_dictionary(column.type) else column)
        columns[name] = column
    return (pa.table(columns) if columns else table), invalid


def take_marks(rows: pa.Table) -> tuple[pa.Table, dict[str, InvalidValues]]:
    """``rows`` without the hidden columns of invalid values, and those values per feature (count, example)."""
    hidden = [name for name in rows.column_names if name.startswith(INVALID_PREFIX)]
    if not hidden:
        return rows, {}
    found: dict[str, InvalidValues] = {}
    for name in hidden:
        values = rows.column(name).drop_null()
        if len(values):
            found[name[len(INVALID_PREFIX):]] = InvalidValues(len(values), str(values[0].as_py()))
    return rows.drop_columns(hidden), found
