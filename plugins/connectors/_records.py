"""Rows of JSON-like records as Arrow tables, shared by the record-reading connectors."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from monitor.plugin import ConnectorError

log = logging.getLogger("driftd.connectors")
T = TypeVar("T")


class RecordError(ValueError):
    """An entry that cannot become a row (not a JSON object, not UTF-8)."""


def text_column(values: list[str | None]) -> pa.Array:
    """Text values as int64 if every one is an integer, else float64 if every one is a number, else string.

    Empty strings and missing values are nulls. The rule is applied to the whole column of one
    batch, so a column never mixes types; Arrow's strict casts decide what a number is
    (``"12"``, ``"-3.5"``, ``"1e3"``, ``"nan"``; not ``" 12"`` or ``"1_000"``).
    """
    array = pa.array([value or None for value in values], type=pa.string())
    if array.null_count == len(array):
        return array
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(array, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return array


def json_object(data: bytes | str) -> dict[str, Any]:
    """A payload parsed as a JSON object; RecordError says why it is not one."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise RecordError(f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise RecordError(f"a JSON {type(value).__name__}, expected an object")
    return value


def json_column(values: list[Any], kind: pa.DataType | None = None) -> pa.Array:
    """JSON values as Arrow (of ``kind``, or inferred); a column mixing kinds becomes JSON text."""
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values],
                        type=pa.string())


def column_names(rows: Iterable[Mapping[str, Any]], wanted: list[str] | None) -> list[str]:
    """The wanted names, or every key in order of first appearance."""
    if wanted is not None:
        return list(wanted)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def check_reserved(names: Iterable[str], reserved: Iterable[str], where: str) -> None:
    """RecordError when an entry's own column would hide one the connector adds."""
    clash = sorted(set(names) & set(reserved))
    if clash:
        raise RecordError(f"{where}: field {clash[0]!r} clashes with the column the connector adds")


def records_table(records: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """A table with one column per key seen, in order of first appearance; a missing key is null."""
    names = column_names(records, None)
    types = types or {}
    return pa.Table.from_arrays(
        [json_column([record.get(name) for record in records], types.get(name)) for name in names], names=names)


def readable_rows(items: Sequence[T], label: Callable[[T], str], parse: Callable[[T], dict[str, Any]],
                  reserved: Iterable[str], on_invalid: str, source: str, hint: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Parse each item into a row; returns the rows and the positions of the items they came from.

    An unreadable item (RecordError) stops the fetch with a ConnectorError when ``on_invalid`` is
    ``error`` (``hint`` says what to do), or is logged and skipped.
    """
    reserved = tuple(reserved)
    rows, kept = [], []
    for position, item in enumerate(items):
        where = label(item)
        try:
            row = parse(item)
            check_reserved(row, reserved, where)
        except RecordError as error:
            problem = str(error) if str(error).startswith(where) else f"{where}: {error}"
            if on_invalid == "error":
                raise ConnectorError(f"{source}: {problem} ({hint})") from None
            log.warning("%s: skipping %s", source, problem)
            continue
        rows.append(row)
        kept.append(position)
    return rows, kept
