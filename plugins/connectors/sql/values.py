"""Values of the ``sql`` connector: cursors as JSON (committed, and bound back), SQL types as Arrow and Python types."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

import pyarrow as pa
import sqlalchemy as sa

#: Cursor value types stored in JSON as strings, and how each is read back.
_PARSERS: dict[type, Callable[[str], Any]] = {
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    Decimal: Decimal,
    uuid.UUID: uuid.UUID,
}


def to_json(value: Any) -> Any:
    """A cursor or tie-breaker value as JSON; TypeError for a type a cursor cannot hold."""
    if any(isinstance(value, kind) for kind in _PARSERS):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a cursor or tie-breaker column of type {type(value).__name__} is not supported")


def from_json(value: Any, kind: type) -> Any:
    """A stored cursor value back as a ``kind`` to bind; ValueError when it is not one."""
    for parsed, parse in _PARSERS.items():
        if issubclass(kind, parsed):
            if not isinstance(value, str):
                raise ValueError(f"expected a {parsed.__name__} as a string, got {value!r}")
            return parse(value)
    if issubclass(kind, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and isinstance(value, bool) == issubclass(kind, bool):
        return value
    raise ValueError(f"expected {kind.__name__}, got {value!r}")


def arrow_type(kind: sa.types.TypeEngine[Any]) -> pa.DataType | None:
    """The Arrow type for a column's SQL type, or None to infer it from the values."""
    if isinstance(kind, sa.Boolean):
        return pa.bool_()
    if isinstance(kind, sa.Integer):
        return pa.int64()
    if isinstance(kind, (sa.Numeric, sa.Float)):  # Float is no Numeric subclass in SQLAlchemy 2.1
        return pa.float64()
    if isinstance(kind, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if kind.timezone else None)
    if isinstance(kind, sa.Date):
        return pa.date32()
    if isinstance(kind, sa.String):
        return pa.string()
    if isinstance(kind, sa.LargeBinary):
        return pa.binary()
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def arrow_column(values: list[Any], kind: pa.DataType | None) -> pa.Array:
    values = [_plain(v) for v in values]
    if kind is not None:
        return pa.array(values, type=kind)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


#: The largest finite float: a value outside +-this (or NULL, or NaN) is not finite.
def python_type(kind: sa.types.TypeEngine[Any]) -> type:
    try:
        return kind.python_type
    except NotImplementedError:
        return object
