"""Rows of JSON objects as an Arrow table, shared by the connectors that read JSON records."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pyarrow as pa


def column_array(values: list[Any], kind: pa.DataType | None = None) -> pa.Array:
    """One column: Arrow infers the type, and values of mixed types fall back to text (JSON)."""
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values], type=pa.string())


def records_table(records: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """A table with one column per key seen, in order of first appearance; a missing key is null."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    types = types or {}
    return pa.Table.from_arrays(
        [column_array([record.get(name) for record in records], types.get(name)) for name in names],
        names=list(names),
    )
