"""Tumbling windows: cut a stream of rows into complete windows and a waiting remainder."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.domain.values import InvalidValues


class WindowError(Exception):
    """Rows cannot be placed into windows (e.g. the timestamp column is unusable)."""


@dataclass(frozen=True)
class WindowSlice:
    """The rows of one complete window, with the time it covers when known, and its values of another type.

    ``invalid``: per numeric feature, the window's values that were not numbers (read as missing in ``rows``).
    """

    rows: pa.Table
    started_at: datetime | None
    ended_at: datetime | None
    invalid: dict[str, InvalidValues] = field(default_factory=dict)


def epoch_seconds(column: pa.ChunkedArray | pa.Array, name: str) -> np.ndarray:
    """Seconds since the epoch from a timestamp, date, number or ISO-8601 string column."""
    kind = column.type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            try:
                column = pc.cast(column, pa.timestamp("us", tz="UTC"))
            except pa.ArrowInvalid:  # ISO strings without a zone offset: read as UTC
                column = pc.cast(column, pa.timestamp("us"))
            kind = column.type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            micros = pc.cast(pc.cast(column, pa.timestamp("us", tz=getattr(kind, "tz", None))), pa.int64())
            seconds = micros.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            seconds = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        else:
            raise WindowError(f"timestamp column {name!r} has type {kind}, expected a timestamp, number or ISO string")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise WindowError(f"timestamp column {name!r} cannot be read as time: {error}") from None
    if column.null_count or not np.all(np.isfinite(seconds)):
        raise WindowError(f"timestamp column {name!r} has missing or invalid values")
    return seconds


def _as_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _time_bounds(rows: pa.Table, timestamp: str | None) -> tuple[datetime | None, datetime | None]:
    if timestamp is None or rows.num_rows == 0 or timestamp not in rows.column_names:
        return None, None
    seconds = epoch_seconds(rows.column(timestamp), timestamp)
    return _as_datetime(float(seconds.min())), _as_datetime(float(seconds.max()))


def split_by_rows(rows: pa.Table, size: int, timestamp: str | None = None) -> tuple[list[WindowSlice], pa.Table]:
    """Cut complete windows of ``size`` rows; the remainder waits for more data."""
    complete = rows.num_rows // size
    windows = []
    for index in range(complete):
        chunk = rows.slice(index * size, size)
        windows.append(WindowSlice(chunk, *_time_bounds(chunk, timestamp)))
    return windows, rows.slice(complete * size)


def split_by_span(
    rows: pa.Table, timestamp: str, span: float, watermark: float | None
) -> tuple[list[WindowSlice], pa.Table]:
    """Cut windows aligned to multiples of ``span`` seconds of the ``timestamp`` column.

    A window closes once a row of a later window arrives. Rows older than ``watermark`` (the end
    of the last closed window) are late: they join the oldest open window instead of being lost.
    """
    if rows.num_rows == 0:
        return [], rows
    seconds = epoch_seconds(rows.column(timestamp), timestamp)
    bucket = np.floor(seconds / span)
    if watermark is not None:
        bucket = np.maximum(bucket, math.floor(watermark / span + 1e-9))
    order = np.argsort(bucket, kind="stable")
    rows, bucket = rows.take(pa.array(order)), bucket[order]
    open_bucket = bucket[-1]
    windows = []
    for value in np.unique(bucket[bucket < open_bucket]):
        members = np.flatnonzero(bucket == value)
        start = float(value) * span
        windows.append(WindowSlice(rows.slice(int(members[0]), len(members)),
                                   _as_datetime(start), _as_datetime(start + span)))
    first_open = int(np.searchsorted(bucket, open_bucket))
    return windows, rows.slice(first_open)
