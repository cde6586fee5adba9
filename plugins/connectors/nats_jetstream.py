"""The ``nats`` connector: messages of a NATS JetStream stream, read by stream sequence.

Each fetch asks for the stream's state, and when there is anything after the cursor creates an
ephemeral pull consumer (``deliver_policy: by_start_sequence``, ``opt_start_seq: cursor + 1``,
no acks, in memory, one replica), pulls ``min(max_rows, pending)`` messages with one ``no_wait``
request and deletes the consumer. Nothing durable is left on the server (a consumer orphaned by
a crash expires after ``inactive_threshold``), and any stored cursor can be replayed.

Every message must be a JSON object; its keys become columns (Arrow infers their types; a key
mixing kinds becomes JSON text), plus ``_seq`` (the stream sequence, int64) and ``_ts`` (the time
the stream stored it, ``timestamp[us, UTC]``).

nats-py is asyncio: the connector runs one connection on a private event loop in a daemon
thread it owns, created on the first fetch and stopped by ``close()``. Reusing the connection
makes a fetch a few round trips; ``asyncio.run`` per fetch would add a TCP connect and
handshake to every poll. After any failure the connection is dropped and the next fetch
connects afresh, so the engine's retry schedule decides when the server is tried again.

Sequences are contiguous, so messages removed before driftd read them (``max_msgs``,
``max_bytes``, ``max_age`` limits, purges, deletes) are detected exactly: when the stream's first
sequence is past ``cursor + 1``, one warning names how many were lost, and the batch reports them
once (``Batch.lost``, counted in ``driftd_source_lost_total``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
from datetime import datetime, timezone
from typing import Any, Coroutine, Literal, Mapping, TypeVar
from urllib.parse import urlsplit

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
    column_names,
    json_column,
    json_object,
    readable_rows,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The columns the connector adds to every row.
SEQ_COLUMN, TS_COLUMN = "_seq", "_ts"
_SCHEMES = ("nats", "tls", "ws", "wss")
_NAME_FORBIDDEN = set(" \t\r\n.*>/\\")
#: Seconds an ephemeral consumer left behind by a crash lives on the server.
INACTIVE_THRESHOLD = 30.0


class NatsOptions(BaseModel):
    """Options of the ``nats`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    servers: list[str] = Field(default=["nats://127.0.0.1:4222"], min_length=1,
                               description="server URL(s); a single string is one server")
    stream: str = Field(min_length=1, description="the JetStream stream's name")
    subject: str | None = Field(default=None, min_length=1, description="read only messages on this subject filter")
    creds: str | None = Field(default=None, min_length=1, description="path of a .creds file (user JWT + nkey)")
    token: str | None = Field(default=None, min_length=1, description="auth token; put it in ${ENV}")
    fields: list[str] | None = Field(default=None, min_length=1, description="read only these columns")
    on_invalid: Literal["error", "skip"] = Field(
        default="error", description="a message that is not a JSON object: stop with an error, or log and skip it")
    timeout: Duration = Field(default=5.0, description="seconds to connect and to wait for a reply")

    @field_validator("servers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("servers")
    @classmethod
    def _nats_urls(cls, servers: list[str]) -> list[str]:
        normalised = []
        for server in servers:
            server = server if "://" in server else f"nats://{server}"
            parts = urlsplit(server)
            if parts.scheme not in _SCHEMES or not parts.hostname:
                raise ValueError(f"{masked_server(server)!r} is not a NATS URL ({', '.join(_SCHEMES)}://host:port)")
            normalised.append(check_url(server, _SCHEMES))
        return normalised

    @field_validator("stream")
    @classmethod
    def _stream_name(cls, stream: str) -> str:
        if _NAME_FORBIDDEN & set(stream):
            raise ValueError("a stream name cannot hold whitespace, '.', '*', '>', '/' or '\\'")
        return stream

    @field_validator("subject")
    @classmethod
    def _subject(cls, subject: str | None) -> str | None:
        if subject is not None:
            tokens = subject.split(".")
            if any(not t or set(t) & set(" \t\r\n") for t in tokens) or ">" in tokens[:-1]:
                raise ValueError("not a valid subject filter")
        return subject

    @field_validator("creds")
    @classmethod
    def _creds_file(cls, creds: str | None) -> str | None:
        if creds is not None and not os.path.isfile(os.path.expanduser(creds)):
            raise ValueError(f"no such file: {creds}")
        return creds


def masked_server(server: str) -> str:
    """A server URL with its password, or its token (a user without a password), as ``***``."""
    parts = urlsplit(server)
    if parts.username is None and parts.password is None:
        return server
    user = f"{parts.username}:***" if parts.password is not None else "***"
    return parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}").geturl()


def subject_within(subject: str, pattern: str) -> bool:
    """Whether every subject ``subject`` (a filter) matches is also matched by ``pattern``."""
    want, have = subject.split("."), pattern.split(".")
    for i, token in enumerate(have):
        if token == ">":
            return len(want) > i
        if i >= len(want) or want[i] == ">" or (token != "*" and (want[i] == "*" or want[i] != token)):
            return False
    return len(want) == len(have)


class _Loop:
    """A private asyncio event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the loop and wait for its result; cancel it after ``timeout`` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    def stop(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


class NatsConnector(Connector):
    """Reads a JetStream stream in sequence order; the cursor is the last stream sequence read (int)."""

    type_name = "nats"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(NatsOptions, self.options, "nats")
        servers = ", ".join(masked_server(s) for s in self.config.servers)
        self.source = f"nats source stream {self.config.stream!r} at {servers}"
        try:
            import nats
        except ImportError:
            raise ConnectorOptionsError(
                f"{self.source}: the NATS client is not installed (pip install 'driftd[nats]')") from None
        self._nats = nats
        parts = [urlsplit(s) for s in self.config.servers]
        self._secrets = [s for s in [self.config.token, *(p.password or p.username for p in parts)] if s]
        self._loop: _Loop | None = None
        self._nc: Any = None
        self._last_error: BaseException | None = None
        self._checked_subject = False
        self._warned: set[str] = set()

    # ---- plumbing ---------------------------------------------------------------------------

    def _hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())

    def _error(self, error: BaseException) -> ConnectorError:
        reason = str(error) or type(error).__name__
        if isinstance(error, self._nats.errors.NoServersError) and self._last_error is not None:
            reason = f"no server reachable ({type(self._last_error).__name__}: {self._last_error})"
        return ConnectorError(f"{self.source}: {self._hide(reason)}")

    async def _on_error(self, error: BaseException) -> None:
        self._last_error = error

    async def _connect(self) -> Any:
        if self._nc is not None and self._nc.is_connected:
            return self._nc
        await self._disconnect()
        self._last_error = None
        self._nc = await self._nats.connect(
            servers=self.config.servers, name="driftd", connect_timeout=self.config.timeout,
            max_reconnect_attempts=1, reconnect_time_wait=0.1, error_cb=self._on_error,
            token=self.config.token,
            user_credentials=os.path.expanduser(self.config.creds) if self.config.creds else None)
        return self._nc

    async def _disconnect(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001 - the connection is being thrown away
                log.debug("%s: closing a broken connection failed", self.source, exc_info=True)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    # ---- reading ----------------------------------------------------------------------------

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` messages after stream sequence ``cursor``, in sequence order."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        after = self._decode(cursor)
        if self._loop is None:
            self._loop = _Loop(f"driftd-nats-{self.config.stream}")
        try:
            return self._loop.run(self._fetch(cursor, after, max_rows), 4 * self.config.timeout)
        except ConnectorError:
            raise
        except (self._nats.errors.Error, OSError, asyncio.TimeoutError) as error:
            try:
                self._loop.run(self._disconnect(), self.config.timeout)
            except TimeoutError:
                self._nc = None
            raise self._error(error) from error

    def _decode(self, cursor: Cursor) -> int:
        if cursor is None:
            return 0
        if isinstance(cursor, int) and not isinstance(cursor, bool) and cursor >= 0:
            return cursor
        raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}, expected a stream sequence (int >= 0)")

    async def _fetch(self, cursor: Cursor, after: int, max_rows: int) -> Batch:
        nc = await self._connect()
        js = nc.jetstream(timeout=self.config.timeout)
        try:
            info = await js.stream_info(self.config.stream)
        except self._nats.js.errors.NotFoundError:
            raise ConnectorOptionsError(f"{self.source}: option 'stream': no such stream") from None
        self._check_subject(info.config.subjects or [])
        first, last = info.state.first_seq, info.state.last_seq
        if after > last:
            self._warn_once("ahead", "%s: the cursor %d is past the stream's last sequence %d (was the stream "
                            "deleted and created again?); nothing is read until the stream passes it",
                            self.source, after, last)
        lost = 0
        if after + 1 < first and after:
            lost = 0 if f"lost {first}" in self._warned else first - after - 1  # reported once
            self._warn_once(f"lost {first}", "%s: %d messages after the cursor %d were removed (stream limits, "
                            "purge or delete) before driftd read them; rows lost. Raise the stream's limits to "
                            "cover the longest time driftd may be down or behind", self.source, first - after - 1,
                            after)
        if last <= after:
            return Batch(self._table([], [], []), cursor, Backlog(rows=0), lost=lost)
        messages, pending = await self._pull(js, nc, after, max_rows)
        left = Backlog(rows=max(0, pending - len(messages)))  # the consumer counted the messages after `after`
        if not messages:
            return Batch(self._table([], [], []), cursor, left, lost=lost)
        rows, seqs, stamps = self._rows(messages)
        return Batch(self._table(rows, seqs, stamps), messages[-1].metadata.sequence.stream, left, lost=lost)

    def _check_subject(self, subjects: list[str]) -> None:
        subject = self.config.subject
        if self._checked_subject or subject is None:
            return
        if subjects and not any(subject_within(subject, pattern) for pattern in subjects):
            raise ConnectorOptionsError(f"{self.source}: option 'subject': {subject!r} is not within the "
                                        f"stream's subjects ({', '.join(subjects)})")
        self._checked_subject = True

    async def _pull(self, js: Any, nc: Any, after: int, max_rows: int) -> tuple[list[Any], int]:
        """Messages after sequence ``after``, at most ``max_rows``, through a short-lived consumer; and how
        many (of the subject) there were after ``after`` then."""
        api = self._nats.js.api
        consumer = await js.add_consumer(self.config.stream, api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1,
            ack_policy=api.AckPolicy.NONE, filter_subject=self.config.subject, mem_storage=True,
            num_replicas=1, inactive_threshold=INACTIVE_THRESHOLD, description="driftd fetch"))
        try:
            wanted = min(max_rows, consumer.num_pending)
            if wanted == 0:
                return [], 0
            inbox = nc.new_inbox()
            subscription = await nc.subscribe(inbox, pending_msgs_limit=wanted + 16, pending_bytes_limit=-1)
            try:
                await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.config.stream}.{consumer.name}",
                                 json.dumps({"batch": wanted, "no_wait": True}).encode(), reply=inbox)
                messages: list[Any] = []
                while len(messages) < wanted:
                    message = await subscription.next_msg(timeout=self.config.timeout)
                    status = (message.headers or {}).get("Status")
                    if status in ("404", "408"):  # no more messages / request expired
                        break
                    if status:
                        raise ConnectorError(f"{self.source}: the server answered {status} "
                                             f"{(message.headers or {}).get('Description', '')}".rstrip())
                    messages.append(message)
                return messages, consumer.num_pending
            finally:
                await subscription.unsubscribe()
        finally:
            try:
                await js.delete_consumer(self.config.stream, consumer.name)
            except self._nats.errors.Error:
                log.debug("%s: deleting consumer %s failed; it expires by itself", self.source, consumer.name)

    def _rows(self, messages: list[Any]) -> tuple[list[dict[str, Any]], list[int], list[datetime]]:
        rows, kept = readable_rows(
            messages, lambda message: f"message {message.metadata.sequence.stream}",
            lambda message: json_object(message.data), (SEQ_COLUMN, TS_COLUMN), self.config.on_invalid,
            self.source, "set on_invalid: skip to skip such messages")
        chosen = [messages[position].metadata for position in kept]
        return rows, [m.sequence.stream for m in chosen], [m.timestamp for m in chosen]

    def _table(self, rows: list[dict[str, Any]], seqs: list[int], stamps: list[datetime]) -> pa.Table:
        columns = {name: json_column([row.get(name) for row in rows])
                   for name in column_names(rows, self.config.fields)} if rows else {}
        columns[SEQ_COLUMN] = pa.array(seqs, type=pa.int64())
        columns[TS_COLUMN] = pa.array([s.astimezone(timezone.utc) for s in stamps], type=pa.timestamp("us", tz="UTC"))
        return pa.table(columns)

    def close(self) -> None:
        """Close the connection and stop the private event loop."""
        if self._loop is not None:
            try:
                self._loop.run(self._disconnect(), self.config.timeout)
            except Exception:  # noqa: BLE001
                log.debug("%s: closing the connection failed", self.source, exc_info=True)
            self._loop.stop()
            self._loop = None


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``nats`` connector."""
    return {"nats": NatsConnector}
