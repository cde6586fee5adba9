"""The connector contract: what a source plugin gives the engine.

A connector returns rows strictly after a cursor (``fetch``). The engine tells it when a cursor
has been committed (``commit``): a source that hands rows out once (a message queue) acknowledges
them then, and not before. One that can count in its own
engine may also offer *push-down* windows: ``pushdown_column`` (the column its windows are cut on,
``None`` while push-down is off) and ``aggregate(cursor, plan) -> AggregateBatch``: for each
*complete* window after ``cursor`` (tumbling, aligned to multiples of ``plan.span`` of that
column, exactly as pulled rows are cut) its row count, per numeric feature the counts in the
reference's bins (right-closed, as ``NumericSummary`` defines them) and the non-finite count, and
per categorical feature the count of each category's text and of nulls; plus the cursor after the
last window (JSON, committed by the engine with that window's results).
"""

from __future__ import annotations

import contextvars
import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Mapping, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ValidationError

from monitor.config.values import check_model_values
from monitor.redact import cut, echo

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Where a source was read up to. Anything JSON can hold; ``None`` means "from the start".
Cursor = Any


class ConnectorError(Exception):
    """A source could not be read (down, unreachable, unreadable data)."""


class ConnectorOptionsError(ConnectorError):
    """A connector was given options it cannot work with."""


@dataclass(frozen=True)
class Backlog:
    """How far the cursor after a batch is behind the newest data the source holds (0: caught up).

    ``rows``: rows (messages, entries) after the cursor; ``seconds``: the time between the last row
    read and the newest one. None where the connector cannot tell.
    """

    rows: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Batch:
    """Rows read from a source strictly after a cursor, and the cursor after them.

    ``backlog``: what is left after this batch, when the connector can tell (``driftd_source_backlog_*``).
    ``lost``: messages the source no longer held between ``cursor`` given to ``fetch`` and these
    rows (removed by its retention before they were read). The connector logs them and reports
    each loss in one batch only (a fetch retried from the same cursor does not report it again);
    the engine counts them in ``driftd_source_lost_total``.
    """

    table: pa.Table
    cursor: Cursor
    #: What the source still holds after these rows, when the connector can tell.
    backlog: Backlog | None = None
    lost: int = field(default=0, kw_only=True)
    #: How many files the source matched, for file-based connectors (``driftd_source_files``); else None.
    files: int | None = field(default=None, kw_only=True)

    @property
    def num_rows(self) -> int:
        """How many rows the batch holds."""
        return self.table.num_rows


class Connector:
    """Base class for connectors: built from ``options``; ``fetch`` rows after a cursor.

    A connector keeps no durable state of its own. The engine stores the cursor in the same
    transaction as the results of the rows it covers, and hands it back on the next ``fetch``;
    after that transaction it calls ``commit`` with the same cursor.
    """

    #: The type name users write in ``source.type``.
    type_name: ClassVar[str] = ""
    #: True when the source hands each row out until ``commit`` acknowledges it and cannot be read
    #: again afterwards (a classic message queue, an MQTT session): rows fetched and never
    #: committed come back; ``driftd reference capture`` refuses such a source, since the rows it
    #: read would be the monitor's. May be set per instance (it can depend on the options).
    acknowledges: bool = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return at most ``max_rows`` rows strictly after ``cursor`` and the cursor after them."""
        raise NotImplementedError

    def commit(self, cursor: Cursor) -> None:
        """``cursor`` and every row up to it are committed to driftd's history: acknowledge them now.

        Called by the engine after the transaction that stored ``cursor`` (never before, and
        never for a cursor that was not committed), and once when a monitor starts (or resumes
        after a failure) with its last committed cursor, which may be None or the cursor of an
        earlier commit. A cursor that was committed may be handed back more than once. Acknowledge
        everything up to the cursor, including rows of earlier cursors whose commit failed. An
        exception is logged and counted (``driftd_source_commit_errors_total``); the committed
        rows stay committed and the next commit tries again. Sources that can be read again from
        any cursor need nothing here (the default does nothing).
        """

    def close(self) -> None:
        """Release connections and files; the connector is not used afterwards."""


_fetching_for: contextvars.ContextVar[str | None] = contextvars.ContextVar("driftd_fetching_for", default=None)


def fetching_for() -> str | None:
    """The monitor whose fetch is running in this thread (the engine sets it), for a connector's log lines."""
    return _fetching_for.get()


def set_fetching_for(monitor: str | None) -> contextvars.Token[str | None]:
    """Name the monitor a fetch runs for (the engine's side of ``fetching_for``)."""
    return _fetching_for.set(monitor)


def as_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column as text: Arrow's cast where there is one, else each value as JSON (nested values)."""
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if value is None else json.dumps(value, default=str) for value in column.to_pylist()],
                        type=pa.string())


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Rows of several tables in order: types promoted where they can be, text where they disagree.

    A column holding numbers in one table and text in another (a source whose column changed type
    mid-stream) becomes text in all of them; the engine then reads each value as its feature's kind.
    """
    tables = [table for table in tables if table.num_columns]
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for column in table.schema:
            types.setdefault(column.name, set()).add(column.type)
    clashing = set()
    for name, kinds in types.items():
        try:
            pa.unify_schemas([pa.schema([pa.field(name, kind)]) for kind in kinds], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            clashing.add(name)
    texts = [pa.table({name: as_text(table.column(name)) if name in clashing else table.column(name)
                       for name in table.column_names}) for table in tables]
    return pa.concat_tables(texts, promote_options="permissive")


def parse_options(model: type[ModelT], options: Mapping[str, Any], type_name: str) -> ModelT:
    """Validate connector options with a pydantic model; ConnectorOptionsError names each bad option."""
    try:
        check_model_values(model, options)
    except ValueError as error:
        raise ConnectorOptionsError(f"{type_name} connector: {error}") from None
    try:
        return model.model_validate(options)
    except ValidationError as error:
        raise ConnectorOptionsError(f"{type_name} connector: " + describe_options_error(model, error)) from None


#: Options whose values are never echoed in an error.
_SECRET_NAME = re.compile(r"pass|secret|token|key|auth|credential", re.IGNORECASE)


def describe_options_error(model: type[BaseModel], error: ValidationError, hide_text: bool = False) -> str:
    """One line naming each bad option of a plugin's options model (unknown, missing, invalid).

    A value is never quoted when its option's name says it is a secret, nor any text value with
    ``hide_text`` (it may be a secret that came from ``${VAR}``).
    """
    lines = []
    for detail in error.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"]).lstrip(".")
        if detail["type"] == "extra_forbidden":
            names = [field.alias or name for name, field in model.model_fields.items()]
            close = difflib.get_close_matches(str(detail["loc"][-1]), names, n=1, cutoff=0.6)
            known = f"; did you mean {close[0]!r}?" if close and len(detail["loc"]) == 1 else \
                f"; expected one of {', '.join(names)}" if len(detail["loc"]) == 1 else ""
            lines.append(f"option {cut(loc, 40)!r} is unknown{known}")
        elif detail["type"] == "missing":
            lines.append(f"option {loc!r} is required")
        else:
            message = detail["msg"].removeprefix("Value error, ")
            hidden = (isinstance(detail["input"], Mapping) or _SECRET_NAME.search(loc)
                      or (hide_text and isinstance(detail["input"], str)))
            got = f" (got {echo(detail['input'])})" if not hidden and echo(detail["input"]) not in message else ""
            lines.append(f"option {loc!r}: {message}{got}")
    more = f"; … and {len(lines) - 10} more" if len(lines) > 10 else ""
    return "; ".join(lines[:10]) + more


# ---- push-down windows -------------------------------------------------------------------------

@dataclass(frozen=True)
class AggregatePlan:
    """What the source counts per window: the window span, the numeric bins, the categories."""

    #: Window width in the cursor column's units: seconds for a timestamp, ids for an integer.
    span: float
    #: Numeric feature → the reference's bin edges (bins ``(-inf, e0], (e0, e1], …, (e_last, inf)``).
    numeric: Mapping[str, np.ndarray]
    #: Categorical features, counted per category text.
    categorical: tuple[str, ...]


@dataclass(frozen=True)
class NumericCounts:
    """One numeric feature in one window: counts per reference bin, and null/NaN/inf values."""

    counts: np.ndarray
    invalid: int = 0


@dataclass(frozen=True)
class CategoryCounts:
    """One categorical feature in one window: count per category text, and nulls."""

    counts: Mapping[str, int]
    nulls: int = 0


@dataclass(frozen=True)
class WindowAggregate:
    """One complete window as the source counted it."""

    started_at: datetime
    ended_at: datetime
    rows: int
    numeric: Mapping[str, NumericCounts] = field(default_factory=dict)
    categorical: Mapping[str, CategoryCounts] = field(default_factory=dict)
    #: Feature → why the source could not count it (e.g. its column is missing).
    missing: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregateBatch:
    """The complete windows after a cursor, and the cursor after the last of them."""

    windows: list[WindowAggregate]
    cursor: Any

    @property
    def num_rows(self) -> int:
        """The source rows the windows cover (none of them was transferred)."""
        return sum(window.rows for window in self.windows)


def pushdown_column(connector: object) -> str | None:
    """The column a connector cuts push-down windows on, or None when it pulls rows."""
    column = getattr(connector, "pushdown_column", None)
    return column if isinstance(column, str) and callable(getattr(connector, "aggregate", None)) else None
