"""The ``sql`` connector: rows of a table or query in any SQLAlchemy database, read by keyset.

Rows are read in ``(cursor_column, tiebreaker_column)`` order, ``max_rows`` at a time, with

    WHERE (c, t) > (:c, :t) ORDER BY c, t LIMIT :n                   -- PostgreSQL
    WHERE c >= :c AND (c > :c OR t > :t) ORDER BY c, t LIMIT :n      -- elsewhere

(the same rows; each is the form that database's planner bounds by an index on ``c``), so rows
sharing a cursor value (a timestamp) are neither skipped nor repeated across batches. Every value
is a bound parameter, and every identifier from the options must name a table or column the
database itself reports (by reflection) before it is used, quoted, in a statement.

The cursor column must only grow: a row written later with a cursor value below the stored
cursor is not read. Rows whose cursor or tie-breaker column is NULL are not read.

With ``pushdown`` the rows stay in the database: ``aggregate`` asks it, for each complete window
of the monitor's span over the cursor column, for the row count, each numeric feature's counts in
the reference's bins (a CASE over bound edges, searched as a binary tree, then GROUP BY) and each
categorical feature's counts (GROUP BY). See ``monitor.domain.pushdown``.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError

from monitor.config import parse_duration
from monitor.connector import Batch, Connector, ConnectorError, ConnectorOptionsError, Cursor, parse_options
from monitor.hookspecs import hookimpl
from monitor.connector import AggregateBatch, AggregatePlan, CategoryCounts, NumericCounts, WindowAggregate

#: Cursor value types stored in JSON as strings, and how each is read back.
_PARSERS: dict[type, Callable[[str], Any]] = {
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    Decimal: Decimal,
    uuid.UUID: uuid.UUID,
}


def _to_json(value: Any) -> Any:
    """A cursor or tie-breaker value as JSON; TypeError for a type a cursor cannot hold."""
    if any(isinstance(value, kind) for kind in _PARSERS):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a cursor or tie-breaker column of type {type(value).__name__} is not supported")


def _from_json(value: Any, kind: type) -> Any:
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


class PushdownOptions(BaseModel):
    """Options of ``pushdown``: the database bins and counts each window; no row is transferred."""

    model_config = ConfigDict(extra="forbid", strict=False)

    max_windows: int = Field(24, ge=1, le=10_000, description="complete windows aggregated per fetch at most")
    grace: float = Field(
        0.0, ge=0, description="a window counts as complete once the source holds a row this far past its end "
                               "(a duration for a timestamp cursor, a number of ids for an integer one)")

    @field_validator("grace", mode="before")
    @classmethod
    def _grace(cls, value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
            return 0.0
        return parse_duration(value)


class SqlOptions(BaseModel):
    """Options of the ``sql`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    url: str = Field(min_length=1, description="SQLAlchemy URL; put secrets in ${ENV} references")
    table: str | None = Field(default=None, min_length=1)
    db_schema: str | None = Field(default=None, alias="schema", min_length=1)
    query: str | None = Field(
        default=None, min_length=1, validate_default=True,
        description="a SELECT read as a subquery; trusted operator input, never built from data "
                    "(write a literal colon before a name as '\\:')",
    )
    columns: list[str] | None = Field(default=None, min_length=1)
    cursor_column: str = Field(min_length=1)
    tiebreaker_column: str | None = Field(
        default=None, min_length=1, description="a unique column; omit only when cursor_column is unique",
    )
    pushdown: PushdownOptions | None = Field(
        default=None, description="true (or a mapping of max_windows, grace): the database aggregates each "
                                  "window itself and no row is transferred",
    )

    @field_validator("pushdown", mode="before")
    @classmethod
    def _pushdown(cls, value: Any) -> Any:
        if value is None or value is False:
            return None
        if value is True:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("expected true, false or a mapping of max_windows and grace")
        return value

    @field_validator("query")
    @classmethod
    def _table_or_query(cls, query: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("table") is None) == (query is None):
            raise ValueError("set exactly one of 'table' or 'query'")
        if query is not None and info.data.get("db_schema") is not None:
            raise ValueError("'schema' goes with 'table'; qualify names inside the query instead")
        return query


def _masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _arrow_type(kind: sa.types.TypeEngine[Any]) -> pa.DataType | None:
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


def _arrow_column(values: list[Any], kind: pa.DataType | None) -> pa.Array:
    values = [_plain(v) for v in values]
    if kind is not None:
        return pa.array(values, type=kind)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


@dataclass
class SqlStats:
    """What a connector asked of its database: statements run for rows or aggregates, rows received."""

    queries: int = 0
    rows_returned: int = 0


class SqlConnector(Connector):
    """Reads a table or query in keyset order; the cursor is ``{"value": v, "tiebreak": t}``.

    ``v`` and ``t`` are the cursor and tie-breaker values of the last row read (``t`` is None
    without a tie-breaker), as JSON: datetimes and dates as ISO strings (with their UTC offset
    when the database has one), decimals and UUIDs as strings. With ``pushdown`` the engine calls
    ``aggregate`` instead, whose cursor is ``{"window_end": e}``: the end of the last window counted.
    """

    type_name = "sql"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(SqlOptions, self.options, "sql")
        try:
            self.url = make_url(self.config.url)
        except ArgumentError:
            raise ConnectorOptionsError("sql connector: option 'url': not a valid SQLAlchemy URL") from None
        self.source = f"sql source {_masked(self.url)}"
        try:
            self.url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ConnectorOptionsError(
                f"sql connector: option 'url': unknown database dialect {self.url.drivername!r}") from None
        except ImportError as error:
            raise ConnectorOptionsError(
                f"{self.source}: the driver for {self.url.drivername!r} is not installed ({error.name})"
            ) from None
        self._engine: Engine | None = None
        self._from: sa.FromClause | None = None
        self._cursor_types: tuple[type, type | None] | None = None
        self.stats = SqlStats()

    @property
    def pushdown_column(self) -> str | None:
        """The cursor column push-down windows are cut on; None when rows are pulled."""
        return self.config.cursor_column if self.config.pushdown is not None else None

    # ---- connection and reflection -------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine, created on first use (building the connector never connects)."""
        if self._engine is None:
            self._engine = sa.create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def _error(self, error: SQLAlchemyError) -> ConnectorError:
        """A ConnectorError naming the source and the driver's reason, never the password."""
        reason = str(error.orig) if isinstance(error, DBAPIError) else str(error).split("\n(Background")[0]
        reason = " ".join(reason.split())
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return ConnectorError(f"{self.source}: {reason}")

    def _option_error(self, option: str, message: str) -> ConnectorOptionsError:
        return ConnectorOptionsError(f"{self.source}: option {option!r}: {message}")

    def _reflect(self, connection: Connection) -> sa.FromClause:
        """The table or query as a selectable whose columns the database itself reported."""
        if self.config.query is not None:
            probe = sa.text(self.config.query.rstrip().rstrip(";")).columns().subquery("driftd_source")
            names = list(connection.execute(sa.select(sa.literal_column("*")).select_from(probe).limit(0)).keys())
            source: sa.FromClause = sa.text(self.config.query.rstrip().rstrip(";")).columns(
                *(sa.column(name) for name in names)).subquery("driftd_source")
            what = "the query"
        else:
            source = self._reflect_table(connection)
            what = f"table {self.config.table!r}"
        available = list(source.columns.keys())
        wanted = [("cursor_column", self.config.cursor_column), ("tiebreaker_column", self.config.tiebreaker_column)]
        wanted += [("columns", name) for name in self.config.columns or []]
        for option, name in wanted:
            if name is not None and name not in available:
                raise self._option_error(option, f"{what} has no column {name!r} (it has {', '.join(available)})")
        return source

    def _reflect_table(self, connection: Connection) -> sa.Table:
        inspector = sa.inspect(connection)
        schema, name = self.config.db_schema, self.config.table
        assert name is not None
        if schema is not None and schema not in inspector.get_schema_names():
            raise self._option_error("schema", f"no schema {schema!r}")
        try:
            return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=connection)
        except NoSuchTableError:
            where = f" in schema {schema!r}" if schema else ""
            raise self._option_error("table", f"no table or view {name!r}{where}") from None

    def _prepared(self, connection: Connection) -> sa.FromClause:
        if self._from is None:
            self._from = self._reflect(connection)
        return self._from

    # ---- the cursor ----------------------------------------------------------------------

    def _key_columns(self, source: sa.FromClause) -> list[sa.ColumnElement[Any]]:
        names = [self.config.cursor_column, self.config.tiebreaker_column]
        return [source.c[name] for name in names if name is not None]

    def _types(self, connection: Connection, source: sa.FromClause) -> tuple[type, type | None] | None:
        """Python types of the cursor and tie-breaker values: from the SQL types, else from a row."""
        if self._cursor_types is None:
            keys = self._key_columns(source)
            found = [_python_type(key.type) for key in keys]
            if object in found:  # a query's columns, or a type SQLAlchemy cannot map
                row = connection.execute(sa.select(*keys).where(*(k.is_not(None) for k in keys)).limit(1)).first()
                if row is None:
                    return None
                found = [type(value) for value in row]
            self._cursor_types = (found[0], found[1] if len(found) > 1 else None)
        return self._cursor_types

    def _decode(self, cursor: Cursor, types: tuple[type, type | None]) -> list[Any]:
        if not (isinstance(cursor, Mapping) and set(cursor) == {"value", "tiebreak"}):
            raise ConnectorError(
                f"{self.source}: invalid cursor {cursor!r}, expected {{'value': ..., 'tiebreak': ...}}")
        try:
            values = [_from_json(cursor["value"], types[0])]
            if types[1] is not None:
                values.append(_from_json(cursor["tiebreak"], types[1]))
        except (ValueError, ArithmeticError) as error:  # decimal.InvalidOperation is an ArithmeticError
            raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}: {error}") from None
        return values

    def _encode(self, row: Sequence[Any]) -> Cursor:
        tiebreak = row[1] if self.config.tiebreaker_column else None
        try:
            return {"value": _to_json(row[0]), "tiebreak": None if tiebreak is None else _to_json(tiebreak)}
        except TypeError as error:
            raise ConnectorError(f"{self.source}: {error}") from None

    def _after(self, connection: Connection, keys: list[sa.ColumnElement[Any]],
               after: list[Any]) -> sa.ColumnElement[bool]:
        """Rows strictly after the cursor, in a form the database's planner bounds by index."""
        if len(keys) == 1:
            return keys[0] > after[0]
        (c, t), (value, tiebreak) = keys, after
        if connection.dialect.name == "postgresql":
            return sa.tuple_(c, t) > sa.tuple_(sa.literal(value, c.type), sa.literal(tiebreak, t.type))
        return sa.and_(c >= value, sa.or_(c > value, t > tiebreak))

    # ---- reading -------------------------------------------------------------------------

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` rows after ``cursor``, in cursor and tie-breaker order."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        try:
            with self.engine.connect() as connection:
                source = self._prepared(connection)
                statement = self._select(source)
                if cursor is not None:
                    types = self._types(connection, source)
                    if types is None:
                        return Batch(self._empty(source), cursor)
                    statement = statement.where(self._after(connection, self._key_columns(source),
                                                            self._decode(cursor, types)))
                result = connection.execute(statement.limit(max_rows))
                self.stats.queries += 1
                try:
                    rows = result.all()
                    self.stats.rows_returned += len(rows)
                except (TypeError, ValueError, ArithmeticError) as error:  # SQLite keeps any value in any column
                    raise ConnectorError(f"{self.source}: a value does not match its column's declared type: "
                                         f"{type(error).__name__}: {error}") from None
        except SQLAlchemyError as error:
            raise self._error(error) from error
        if not rows:
            return Batch(self._empty(source), cursor)
        keys = len(self._key_columns(source))
        return Batch(self._table(source, [row[keys:] for row in rows]), self._encode(rows[-1][:keys]))

    def _output(self, source: sa.FromClause) -> list[sa.ColumnElement[Any]]:
        names = self.config.columns or list(source.columns.keys())
        return [source.c[name] for name in names]

    def _select(self, source: sa.FromClause) -> sa.Select[Any]:
        """Key columns first (for the new cursor), then the output columns, in keyset order."""
        keys = self._key_columns(source)
        return (sa.select(*keys, *self._output(source))
                .where(*(key.is_not(None) for key in keys))
                .order_by(*keys))

    def _table(self, source: sa.FromClause, rows: list[Sequence[Any]]) -> pa.Table:
        output = self._output(source)
        arrays = []
        for i, column in enumerate(output):
            kind = _arrow_type(column.type)
            try:
                arrays.append(_arrow_column([row[i] for row in rows], kind))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
                raise ConnectorError(f"{self.source}: column {column.name!r} ({column.type}) holds a value "
                                     f"that does not fit {kind}: {error}") from None
        return pa.Table.from_arrays(arrays, names=[column.name for column in output])

    def _empty(self, source: sa.FromClause) -> pa.Table:
        return self._table(source, [])

    # ---- push-down: the database bins and counts each window ------------------------------

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
        return AggregateBatch(windows, {"window_end": _to_json(axis.value(k))})

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
        kind = _arrow_type(column.type)
        try:
            texts = pc.cast(_arrow_column([row[0] for row in rows], kind), pa.string()).to_pylist()
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

    def close(self) -> None:
        """Dispose of the engine and its pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


#: The largest finite float: a value outside +-this (or NULL, or NaN) is not finite.
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


def _python_type(kind: sa.types.TypeEngine[Any]) -> type:
    try:
        return kind.python_type
    except NotImplementedError:
        return object


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``sql`` connector."""
    return {"sql": SqlConnector}
