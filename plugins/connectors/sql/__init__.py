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
categorical feature's counts (GROUP BY): see ``pushdown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import pyarrow as pa
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    NoSuchTableError,
    SQLAlchemyError,
)

from monitor.plugin import (
    Backlog,
    Batch,
    Connector,
    ConnectorError,
    ConnectorOptionsError,
    Cursor,
    check_url,
    hookimpl,
    mask_urls,
    parse_duration,
    parse_options,
)
from plugins.connectors.sql.pushdown import Pushdown
from plugins.connectors.sql.values import (
    arrow_column,
    arrow_type,
    from_json,
    python_type,
    to_json,
)


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

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_url(url, needs_host=False)  # SQLite has no host

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


#: Rows after the cursor the backlog counts at most (``driftd_source_backlog_rows`` shows this many for more).
BACKLOG_COUNT_LIMIT = 100_000

#: The extra that installs each database's driver.
_DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql"}


def _postgres_scheme(url: str) -> str:
    """``postgres://`` (as many hosting services write it) is PostgreSQL's ``postgresql://``."""
    stripped = url.strip()
    return "postgresql" + stripped[len("postgres"):] if re.match(r"postgres(\+|://)", stripped) else url


@dataclass
class SqlStats:
    """What a connector asked of its database: statements run for rows or aggregates, rows received."""

    queries: int = 0
    rows_returned: int = 0


class SqlConnector(Pushdown, Connector):
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
            self.url = make_url(_postgres_scheme(self.config.url))
        except ArgumentError:
            raise ConnectorOptionsError("sql connector: option 'url': not a valid SQLAlchemy URL") from None
        self.source = f"sql source {mask_urls(_postgres_scheme(self.config.url))}"
        try:
            self.url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ConnectorOptionsError(
                f"sql connector: option 'url': unknown database dialect {self.url.drivername[:40]!r}") from None
        except ImportError as error:
            extra = _DRIVER_EXTRAS.get(self.url.get_backend_name())
            fix = f": pip install 'driftd[{extra}]'" if extra else ""
            raise ConnectorOptionsError(
                f"{self.source}: the driver for {self.url.drivername!r} is not installed ({error.name}){fix}"
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
        return ConnectorError(f"{self.source}: {mask_urls(reason)}")

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
            found = [python_type(key.type) for key in keys]
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
            values = [from_json(cursor["value"], types[0])]
            if types[1] is not None:
                values.append(from_json(cursor["tiebreak"], types[1]))
        except (ValueError, ArithmeticError) as error:  # decimal.InvalidOperation is an ArithmeticError
            raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}: {error}") from None
        return values

    def _encode(self, row: Sequence[Any]) -> Cursor:
        tiebreak = row[1] if self.config.tiebreaker_column else None
        try:
            return {"value": to_json(row[0]), "tiebreak": None if tiebreak is None else to_json(tiebreak)}
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
                keys = len(self._key_columns(source))
                backlog = self._backlog(connection, source, rows[-1][:keys] if rows else None, len(rows) == max_rows)
        except SQLAlchemyError as error:
            raise self._error(error) from error
        if not rows:
            return Batch(self._empty(source), cursor, backlog)
        return Batch(self._table(source, [row[keys:] for row in rows]), self._encode(rows[-1][:keys]), backlog)

    def _backlog(self, connection: Connection, source: sa.FromClause, last: Sequence[Any] | None,
                 full: bool) -> Backlog:
        """What is left after a batch: nothing when it came back short of ``max_rows``; else the rows after its
        last row (counted up to ``BACKLOG_COUNT_LIMIT``) and, on a timestamp cursor column, the time from its
        last row to the newest one."""
        timed = self._timed(connection, source)
        if not full or last is None:
            return Backlog(rows=0, seconds=0.0 if timed else None)
        keys = self._key_columns(source)
        after = self._after(connection, keys, list(last))
        counted = sa.select(sa.literal(1)).select_from(source).where(*(k.is_not(None) for k in keys), after)
        rows = connection.scalar(sa.select(sa.func.count()).select_from(
            counted.limit(BACKLOG_COUNT_LIMIT).subquery()))
        seconds = None
        if timed and isinstance(last[0], datetime):
            newest = connection.scalar(sa.select(sa.func.max(keys[0])))
            if isinstance(newest, datetime) and (newest.tzinfo is None) == (last[0].tzinfo is None):
                seconds = max(0.0, (newest - last[0]).total_seconds())
        self.stats.queries += 2
        return Backlog(rows=int(rows or 0), seconds=seconds)

    def _timed(self, connection: Connection, source: sa.FromClause) -> bool:
        """Whether the cursor column holds times."""
        types = self._types(connection, source)
        return types is not None and issubclass(types[0], datetime)

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
            kind = arrow_type(column.type)
            try:
                arrays.append(arrow_column([row[i] for row in rows], kind))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
                raise ConnectorError(f"{self.source}: column {column.name!r} ({column.type}) holds a value "
                                     f"that does not fit {kind}: {error}") from None
        return pa.Table.from_arrays(arrays, names=[column.name for column in output])

    def _empty(self, source: sa.FromClause) -> pa.Table:
        return self._table(source, [])

    def close(self) -> None:
        """Dispose of the engine and its pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``sql`` connector."""
    return {"sql": SqlConnector}
