"""The ``sql`` connector's push-down: the database bins and counts each window; no row is transferred."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from monitor.plugin import (
    AggregateBatch,
    AggregatePlan,
    CategoryCounts,
    ConnectorError,
    Cursor,
    NumericCounts,
    WindowAggregate,
)
from plugins.connectors.sql.values import arrow_column, arrow_type, to_json


class Pushdown:
    """``aggregate``: for each complete window of the monitor's span over the cursor column, the row
    count, each numeric feature's counts in the reference's bins (a CASE over bound edges, searched as
    a binary tree, then GROUP BY) and each categorical feature's counts (GROUP BY)."""

    def aggregate(self, cursor: Cursor, plan: AggregatePlan) -> AggregateBatch:
        """Up to ``pushdown.max_windows`` complete windows after ``cursor``, counted by the database.

        Windows tumble over the cursor column, aligned to multiples of ``plan.span`` (seconds
        since the epoch, UTC, for a timestamp; ids for an integer), and a window is complete once
        the source holds a row ``grace`` or more past its end. Windows without rows are skipped.
        All of one call's statements read one snapshot on PostgreSQL and MariaDB/MySQL.
        """
        if self.config.pushdown is None:
            raise ConnectorError(f"{self.source}: push-down is off (set the option 'pushdown: true')")
        try:
            with self.engine.connect() as connection:
                if connection.dialect.name in {"postgresql", "mysql", "mariadb"}:
                    connection.execution_options(isolation_level="REPEATABLE READ")
                source = self._prepared(connection)
                return self._aggregate(connection, source, cursor, plan)
        except SQLAlchemyError as error:
            raise self._error(error) from error

    def _rows(self, connection: Connection, statement: sa.Executable) -> list[Sequence[Any]]:
        rows = list(connection.execute(statement).all())
        self.stats.queries += 1
        self.stats.rows_returned += len(rows)
        return rows

    def _aggregate(self, connection: Connection, source: sa.FromClause, cursor: Cursor,
                   plan: AggregatePlan) -> AggregateBatch:
        options = self.config.pushdown
        assert options is not None
        column = source.c[self.config.cursor_column]
        present = [key.is_not(None) for key in self._key_columns(source)]
        low, high = self._rows(connection, sa.select(sa.func.min(column), sa.func.max(column)).where(*present))[0]
        if high is None:
            return AggregateBatch([], cursor)
        axis = _Axis.of(high, plan.span, self.config.cursor_column, self.source)
        k = axis.bucket(low) if cursor is None else self._resume(cursor, axis)
        complete_below = axis.bucket(high, less=options.grace)
        numeric, categorical, missing = self._measurable(source, plan)
        windows: list[WindowAggregate] = []
        while len(windows) < options.max_windows and k < complete_below:
            probe = sa.select(sa.func.min(column)).where(column >= axis.value(k), *present)
            first = self._rows(connection, probe)[0][0]
            if first is None:
                break
            k = max(k, axis.bucket(first))  # skip windows without rows, as pulled rows make none
            if k >= complete_below:
                break
            inside = [column >= axis.value(k), column < axis.value(k + 1), *present]
            binned = {name: self._bin_counts(connection, source, numeric[name], plan.numeric[name], inside)
                      for name in numeric}
            counted: dict[str, CategoryCounts] = {}
            unusable = dict(missing)
            for name in categorical:
                found = self._category_counts(connection, source, categorical[name], inside)
                if isinstance(found, str):
                    unusable[name] = found
                else:
                    counted[name] = found
            totals = ([int(c.counts.sum()) + c.invalid for c in binned.values()]
                      + [sum(c.counts.values()) + c.nulls for c in counted.values()])
            rows = totals[0] if totals else self._rows(
                connection, sa.select(sa.func.count()).select_from(source).where(*inside))[0][0]
            start = float(k) * plan.span  # the bounds split_by_span gives the same rows
            windows.append(WindowAggregate(_utc(start), _utc(start + plan.span), int(rows), binned, counted, unusable))
            k += 1
        if not windows:
            return AggregateBatch([], cursor)
        return AggregateBatch(windows, {"window_end": to_json(axis.value(k))})

    def _resume(self, cursor: Cursor, axis: _Axis) -> int:
        """The first window to count after a push-down cursor (or after a pulled one, from its next window)."""
        if isinstance(cursor, Mapping) and set(cursor) == {"window_end"}:
            end = self._decode_position(cursor, cursor["window_end"], axis)
            k = axis.bucket(end)
            return k if axis.value(k) >= end else k + 1  # a span changed since: never count a row twice
        if isinstance(cursor, Mapping) and set(cursor) == {"value", "tiebreak"}:
            return axis.bucket(self._decode_position(cursor, cursor["value"], axis)) + 1
        raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}, expected {{'window_end': ...}}")

    def _decode_position(self, cursor: Cursor, value: Any, axis: _Axis) -> Any:
        try:
            if axis.kind == "int":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"expected an integer, got {value!r}")
                return value
            if not isinstance(value, str):
                raise ValueError(f"expected a datetime as a string, got {value!r}")
            moment = datetime.fromisoformat(value)
        except ValueError as error:
            raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}: {error}") from None
        if axis.kind == "aware":
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment

    def _measurable(self, source: sa.FromClause, plan: AggregatePlan) -> tuple[
            dict[str, sa.ColumnElement[Any]], dict[str, sa.ColumnElement[Any]], dict[str, str]]:
        """The plan's feature columns the source has (by reflection), and why the others are missing."""
        available = {column.name: column for column in self._output(source)}
        numeric, categorical, missing = {}, {}, {}
        for name in plan.numeric:
            column = available.get(name)
            if column is None:
                missing[name] = "column is missing from the source"
            elif not isinstance(column.type, (sa.Integer, sa.Numeric, sa.Float, sa.types.NullType)):
                missing[name] = f"column {name!r} holds {column.type}, not numbers"
            else:
                numeric[name] = column
        for name in plan.categorical:
            column = available.get(name)
            if column is None:
                missing[name] = "column is missing from the source"
            else:
                categorical[name] = column
        return numeric, categorical, missing

    def _bin_counts(self, connection: Connection, source: sa.FromClause, column: sa.ColumnElement[Any],
                    edges: np.ndarray, inside: list[sa.ColumnElement[bool]]) -> NumericCounts:
        """Counts per right-closed reference bin; NULL, NaN and +-inf go to ``invalid``."""
        finite = sa.and_(column >= sa.literal(-_FLOAT_MAX, sa.Double()), column <= sa.literal(_FLOAT_MAX, sa.Double()))
        index = sa.case((finite, _bin_case(column, [float(e) for e in edges], 0, int(edges.size))),
                        else_=sa.literal(-1, sa.Integer()))
        binned = sa.select(index.label("bin")).select_from(source).where(*inside).subquery("driftd_bins")
        counts = np.zeros(edges.size + 1, dtype=np.int64)
        invalid = 0
        for position, count in self._rows(connection, sa.select(binned.c.bin, sa.func.count()).group_by(binned.c.bin)):
            if position is None or int(position) < 0:
                invalid += int(count)
            else:
                counts[int(position)] += int(count)
        return NumericCounts(counts, invalid)

    def _category_counts(self, connection: Connection, source: sa.FromClause, column: sa.ColumnElement[Any],
                         inside: list[sa.ColumnElement[bool]]) -> CategoryCounts | str:
        """Counts per category, as the text the engine makes of pulled values; or why there are none."""
        if connection.dialect.name in {"mysql", "mariadb"} and isinstance(column.type, sa.String):
            # group by the bytes: a case-insensitive or PAD SPACE collation would merge 'x', 'X' and 'x '
            grouped = (sa.select(column.label("value"), sa.cast(column, sa.LargeBinary).label("bytes"))
                       .select_from(source).where(*inside).subquery("driftd_categories"))
            statement = sa.select(sa.func.min(grouped.c.value), sa.func.count()).group_by(grouped.c.bytes)
        else:
            grouped = sa.select(column.label("value")).select_from(source).where(*inside).subquery("driftd_categories")
            statement = sa.select(grouped.c.value, sa.func.count()).group_by(grouped.c.value)
        rows = self._rows(connection, statement)
        kind = arrow_type(column.type)
        try:
            texts = pc.cast(arrow_column([row[0] for row in rows], kind), pa.string()).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise ConnectorError(f"{self.source}: column {column.name!r} ({column.type}) holds a value "
                                 f"that does not fit {kind}: {error}") from None
        except pa.ArrowNotImplementedError:
            return f"column {column.name!r} holds {column.type}, which has no text form"
        counts: dict[str, int] = {}
        nulls = 0
        for text, (_, count) in zip(texts, rows):
            if text is None:
                nulls += int(count)
            else:
                counts[text] = counts.get(text, 0) + int(count)
        return CategoryCounts(counts, nulls)


_FLOAT_MAX = float(np.finfo(np.float64).max)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _bin_case(column: sa.ColumnElement[Any], edges: list[float], low: int, high: int) -> sa.ColumnElement[Any]:
    """The right-closed bin (``low``..``high``) of a finite value: a binary search of bound edges."""
    if low == high:
        return sa.literal(low, sa.Integer())
    middle = (low + high) // 2
    return sa.case((column <= sa.literal(edges[middle], sa.Double()), _bin_case(column, edges, low, middle)),
                   else_=_bin_case(column, edges, middle + 1, high))


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


@dataclass(frozen=True)
class _Axis:
    """Windows on the cursor column: window k holds the values v with floor(seconds(v) / span) == k."""

    span: float
    kind: str  # "int", "aware" (timestamps with a zone) or "naive" (read as UTC, as pulled rows are)

    @classmethod
    def of(cls, sample: Any, span: float, name: str, source: str) -> _Axis:
        if isinstance(sample, datetime):
            return cls(span, "naive" if sample.tzinfo is None else "aware")
        if isinstance(sample, int) and not isinstance(sample, bool):
            return cls(span, "int")
        raise ConnectorError(f"{source}: push-down windows need an integer or timestamp cursor column; "
                             f"{name!r} holds {type(sample).__name__} values")

    def seconds(self, value: Any) -> float:
        """The value as ``split_by_span`` reads it: seconds since the epoch (UTC), or the number."""
        if self.kind == "int":
            return float(value)
        epoch = _EPOCH if value.tzinfo is not None else _EPOCH.replace(tzinfo=None)
        return ((value - epoch) // timedelta(microseconds=1)) / 1e6

    def bucket(self, value: Any, less: float = 0.0) -> int:
        return math.floor((self.seconds(value) - less) / self.span)

    def value(self, k: int) -> Any:
        """The first cursor value of window k (the span is a whole number)."""
        start = float(k) * self.span
        if self.kind == "int":
            return int(start)
        moment = _utc(start)
        return moment if self.kind == "aware" else moment.replace(tzinfo=None)
