"""The ``redis_streams`` connector: entries of a Redis stream, read by id with ``XRANGE``.

Each fetch is ``XRANGE stream (cursor + COUNT max_rows`` (``-`` instead of ``(cursor`` at the
start): no consumer group, nothing written to Redis, so any stored cursor can be replayed.

Columns: every field of the entries (or the ``fields`` option), or, with ``json_field``, the
keys of the JSON object that field holds; plus ``_id`` (the entry id, text) and ``_ts`` (the
millisecond time in the id, ``timestamp[ms, UTC]``). Plain field values are text: a column
becomes int64 when every value in the batch is an integer, float64 when every value is a
number, string otherwise; an empty value is null (see ``_records.text_column``). An entry
without a field has null there.

Rows are lost when the stream is trimmed (``MAXLEN``/``MINID``, ``XTRIM``) or entries are
deleted (``XDEL``) before driftd reads them. Each fetch asks ``XINFO STREAM`` in the same round
trip and logs one warning (per connector) when the last deleted entry is after the cursor (exact)
or the first remaining entry is (the stream was trimmed past the cursor: entries after it may
have gone too; Redis keeps no record of trimmed ids, so this can also fire when nothing unread
was lost, e.g. a MINID-trimmed stream that emptied during a quiet spell). Size ``MAXLEN``/``MINID``
to cover the longest time driftd may be down or behind.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    Backlog,
    Batch,
    Connector,
    ConnectorError,
    ConnectorOptionsError,
    Cursor,
    Duration,
    check_url,
    hookimpl,
    parse_options,
)
from plugins.connectors._records import (
    RecordError,
    column_names,
    json_column,
    json_object,
    readable_rows,
    text_column,
)

log = logging.getLogger(__name__)

#: The columns the connector adds to every row.
ID_COLUMN, TS_COLUMN = "_id", "_ts"
_ENTRY_ID = re.compile(r"^(\d+)-(\d+)$")
_SCHEMES = ("redis", "rediss", "unix")


class RedisStreamsOptions(BaseModel):
    """Options of the ``redis_streams`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    url: str = Field(min_length=1, description="redis://[user:password@]host:port/db; put secrets in ${ENV}")
    stream: str = Field(min_length=1, description="the stream's key")
    fields: list[str] | None = Field(default=None, min_length=1, description="read only these columns")
    json_field: str | None = Field(default=None, min_length=1,
                                   description="a field holding a JSON object whose keys are the columns")
    on_invalid: Literal["error", "skip"] = Field(
        default="error", description="an entry that cannot be read: stop with an error, or log and skip it")
    timeout: Duration = Field(default=5.0, description="seconds to connect and to wait for a reply")

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ValueError(f"must start with {', '.join(s + '://' for s in _SCHEMES)} (got {scheme or 'no'} scheme)")
        return check_url(url, _SCHEMES, needs_host=scheme != "unix")


def masked_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _backlog(cursor: str | None, info: Mapping[str, Any] | None) -> Backlog | None:
    """Seconds between the entry at ``cursor`` and the stream's newest (ids are milliseconds); rows are not known."""
    if info is None:
        return None
    newest = info.get("last-generated-id")
    first = info.get("first-entry")
    if not newest or not info.get("length"):
        return Backlog(seconds=0.0)
    start = cursor if cursor is not None else (first[0].decode() if first else None)
    if start is None:
        return None
    try:
        newest_ms, start_ms = parse_id(newest.decode() if isinstance(newest, bytes) else str(newest))[0], \
            parse_id(start)[0]
    except ValueError:
        return None
    return Backlog(seconds=max(0.0, (newest_ms - start_ms) / 1000))


def parse_id(value: str) -> tuple[int, int]:
    """An entry id ``ms-seq`` as a pair of integers; ValueError when it is not one."""
    match = _ENTRY_ID.match(value)
    if match is None:
        raise ValueError(f"not a stream entry id: {value!r}")
    return int(match[1]), int(match[2])


class RedisStreamsConnector(Connector):
    """Reads a Redis stream in id order; the cursor is the last entry id read (``"ms-seq"``)."""

    type_name = "redis_streams"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(RedisStreamsOptions, self.options, "redis_streams")
        self.source = f"redis_streams source {self.config.stream!r} at {masked_url(self.config.url)}"
        try:
            import redis
        except ImportError:
            raise ConnectorOptionsError(
                f"{self.source}: the redis client is not installed (pip install 'driftd[redis]')") from None
        self._redis = redis
        self._secrets = [s for s in (urlsplit(self.config.url).password,
                                     dict(parse_qsl(urlsplit(self.config.url).query)).get("password")) if s]
        self._client: Any = None
        self._warned_trim = False

    @property
    def client(self) -> Any:
        """The client, created on first use (building the connector never connects)."""
        if self._client is None:
            try:
                self._client = self._redis.Redis.from_url(
                    self.config.url, socket_connect_timeout=self.config.timeout,
                    socket_timeout=self.config.timeout, health_check_interval=30,
                    retry=self._redis.retry.Retry(self._redis.backoff.NoBackoff(), 0))
            except ValueError as error:
                raise ConnectorOptionsError(f"{self.source}: option 'url': {self._hide(str(error))}") from None
        return self._client

    def _hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` entries after ``cursor``, in id order."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        after = self._decode(cursor)
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.config.stream, min="-" if cursor is None else f"({cursor}", max="+", count=max_rows)
        pipe.xinfo_stream(self.config.stream)
        try:
            replies = pipe.execute(raise_on_error=False)
        except self._redis.RedisError as error:
            raise ConnectorError(f"{self.source}: {self._hide(str(error)) or type(error).__name__}") from error
        entries = replies[0]
        if isinstance(entries, self._redis.ResponseError):
            if "WRONGTYPE" in str(entries):
                raise ConnectorOptionsError(f"{self.source}: option 'stream': the key is not a stream")
            raise ConnectorError(f"{self.source}: {self._hide(str(entries))}")
        info = replies[1] if isinstance(replies[1], dict) else None
        if after is not None and info is not None:
            self._check_lost(cursor, after, info)
        if not entries:
            return Batch(self._table([], [], []), cursor, _backlog(cursor, info))
        ids = [entry_id.decode() for entry_id, _ in entries]
        rows, kept = self._rows(entries)
        return Batch(self._table(rows, [ids[i] for i in kept], [parse_id(ids[i])[0] for i in kept]), ids[-1],
                     _backlog(ids[-1], info))

    def _decode(self, cursor: Cursor) -> tuple[int, int] | None:
        if cursor is None:
            return None
        try:
            if not isinstance(cursor, str):
                raise ValueError("expected an entry id string")
            return parse_id(cursor)
        except ValueError as error:
            raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}: {error}") from None

    def _check_lost(self, cursor: str, after: tuple[int, int], info: Mapping[str, Any]) -> None:
        """Warn once when entries after the cursor were trimmed or deleted before they were read."""
        if self._warned_trim:
            return
        first = info.get("first-entry")
        first_id = parse_id(first[0].decode()) if first else None
        deleted = info.get("max-deleted-entry-id")
        deleted_id = parse_id(deleted.decode()) if deleted else (0, 0)
        if first_id is not None and first_id > after:
            how = (f"the stream was trimmed past the cursor: its first entry is now {first[0].decode()}, "
                   f"so entries after {cursor} and before it were removed (MAXLEN/MINID trimming, XTRIM)")
        elif deleted_id > after:
            how = f"entries after the cursor {cursor} were deleted (XDEL), the last one {deleted.decode()}"
        else:
            return
        self._warned_trim = True
        log.warning("%s: rows may be lost: %s before driftd read them; size the stream's MAXLEN to cover "
                    "the longest time driftd may be down or behind", self.source, how)

    def _rows(self, entries: list[tuple[bytes, Mapping[bytes, bytes]]]) -> tuple[list[dict[str, Any]], list[int]]:
        """Each readable entry as a row, and the positions of those entries."""
        return readable_rows(entries, lambda entry: f"entry {entry[0].decode()}", lambda entry: self._row(entry[1]),
                             (ID_COLUMN, TS_COLUMN), self.config.on_invalid, self.source,
                             "set on_invalid: skip to skip such entries, or XDEL it")

    def _row(self, fields: Mapping[bytes, bytes]) -> dict[str, Any]:
        try:
            if self.config.json_field is None:
                return {name.decode(): value.decode() for name, value in fields.items()}
            payload = fields.get(self.config.json_field.encode())
        except UnicodeDecodeError as error:
            raise RecordError(f"a field is not UTF-8 text ({error.reason})") from None
        if payload is None:
            raise RecordError(f"no field {self.config.json_field!r}")
        return json_object(payload)

    def _table(self, rows: list[dict[str, Any]], ids: list[str], millis: list[int]) -> pa.Table:
        names = column_names(rows, self.config.fields)
        make = text_column if self.config.json_field is None else json_column
        columns = {name: make([row.get(name) for row in rows]) for name in names}
        if not rows:
            columns = {}
        columns[ID_COLUMN] = pa.array(ids, type=pa.string())
        columns[TS_COLUMN] = pa.array(millis, type=pa.timestamp("ms", tz="UTC"))
        return pa.table(columns)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``redis_streams`` connector."""
    return {"redis_streams": RedisStreamsConnector}
