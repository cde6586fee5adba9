"""The ``rabbitmq`` connector: JSON messages from a RabbitMQ stream (by offset) or classic queue (acknowledged).

**Stream queues** (``stream: true``, a queue declared with ``x-queue-type: stream``) are logs that
any reader can read again: the cursor is the offset of the last message read, and every fetch
continues after it (a consumer with ``x-stream-offset``). A consumer stays attached between ticks;
a fetch from another cursor (a tick that failed before its commit) drops it with its channel and
attaches again at the cursor. Exactly once, while the stream holds the messages. The consumer is
attached AT the committed offset, not after it, to check that the stream still holds that message:
when the first message it gets is a later one, the stream's retention removed the committed offset
and the messages after it that driftd had not read. Each segment of a stream starts with one offset
that holds no message, so up to ``first - cursor - 2`` messages were lost: that many are logged in
a warning and counted (``Batch.lost``, ``driftd_source_lost_total``); an upper bound when several
segments went. Stream deliveries are acknowledged when handed out: for a stream an
acknowledgement is only credit for the next messages.

**Classic (and quorum) queues** hand each message to one consumer and keep it until it is
acknowledged; they cannot be read again. driftd acknowledges a message only in ``commit``, after
the transaction that counted it; a message fetched but not committed is handed out again by a
fetch from the older cursor, and one held when driftd stops or crashes is redelivered by the broker.
The cursor numbers the messages this connector handed out (``seq``; numbering continues from a
stored cursor after a restart) and lists the messages up to it that were not acknowledged yet,
plus those acknowledged since the previous cursor (an acknowledgement has no reply and may die
with the connection), each as a 64-bit hash of exchange, routing key, message id, timestamp and
body::

    {"seq": 1234, "unacked": ["9f86d081884c7d65", ...]}

A redelivered message whose hash the committed cursor lists is acknowledged and dropped (logged
at INFO): it was counted before its acknowledgement reached the broker. Redeliveries come first
(the broker puts them back at the head of the queue), so the first message delivered for the first
time ends the list. At least once: a message is counted twice only if it is redelivered after a
crash that came after its acknowledgement left the connection and after two later commits; a
message is wrongly dropped only if it is byte-identical (the hashed fields) to one acknowledged
just before a crash and is itself redelivered. Publishers that set a unique ``message_id`` rule the
latter out.

Each row is one message whose body is a JSON object (``_records.json_object``), plus
``_routing_key`` and, from a stream, ``_offset``. pika runs in an I/O thread of its own
(``_amqp.AmqpLink``), so heartbeats are answered between ticks. After a failure the connection is
dropped and the next fetch connects afresh, on the engine's retry schedule.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    Batch,
    Connector,
    ConnectorError,
    ConnectorOptionsError,
    Cursor,
    hookimpl,
    parse_options,
)
from plugins.connectors._amqp import AmqpLink, LinkError
from plugins.connectors._records import json_object, readable_rows, records_table

log = logging.getLogger(__name__)
# pika logs every failed connection attempt at ERROR, in several lines; the connector reports each
# failure itself (the engine logs it once per outage), so pika's own log is kept for CRITICAL only.
logging.getLogger("pika").setLevel(logging.CRITICAL)

ROUTING_KEY, OFFSET = "_routing_key", "_offset"
META_TYPES: dict[str, pa.DataType] = {ROUTING_KEY: pa.string(), OFFSET: pa.int64()}
_SCHEMES = ("amqp", "amqps")


class RabbitMqOptions(BaseModel):
    """Options of the ``rabbitmq`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    url: str = Field(default="amqp://127.0.0.1:5672/%2F",
                     description="amqp[s]://user:password@host:port/vhost; put the password in ${ENV}")
    queue: str = Field(min_length=1, max_length=255)
    stream: bool = Field(default=False, description="the queue is a stream (x-queue-type: stream): read by offset")
    prefetch: int = Field(default=10_000, ge=1, le=65_535,
                          description="messages the broker sends ahead, unacknowledged (held in memory)")
    wait: float = Field(default=0.2, gt=0, le=60,
                        description="seconds a fetch waits for the next message when fewer than max_rows are here")
    on_invalid: Literal["error", "skip"] = Field(
        default="error", description="a message that is not a JSON object: stop with an error, or log and skip it")
    timeout: float = Field(default=10.0, gt=0, description="seconds to connect and to wait for a reply")
    stall_check: float = Field(
        default=5.0, gt=0, le=3600,
        description="a stream consumer that received nothing for this long checks whether the stream holds newer "
                    "messages, and attaches again when it does (checks back off to every 5 minutes while idle)")

    @field_validator("url")
    @classmethod
    def _amqp_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"{masked_url(url)!r} is not an AMQP URL (amqp://user:password@host:port/vhost)")
        return url


def masked_url(url: str) -> str:
    """The URL with its password as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}").geturl()


def message_key(method: Any, properties: Any, body: bytes) -> str:
    """A 64-bit hash of what tells a message apart (exchange, routing key, message id, timestamp, body)."""
    digest = hashlib.blake2b(digest_size=8)
    for part in (method.exchange, method.routing_key, properties.message_id or "", str(properties.timestamp or "")):
        digest.update(str(part).encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


@dataclass
class _Delivery:
    """One message received: its number here (classic) or stream offset, where it came from, its body."""

    position: int
    generation: int
    tag: int
    routing_key: str
    body: bytes
    key: str = ""


class RabbitMqConnector(Connector):
    """A stream read by offset (cursor: the offset), or a classic queue acknowledged on ``commit``."""

    type_name = "rabbitmq"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(RabbitMqOptions, self.options, "rabbitmq")
        self.source = f"rabbitmq source queue {self.config.queue!r} at {masked_url(self.config.url)}"
        try:
            import pika
        except ImportError:
            raise ConnectorOptionsError(f"{self.source}: needs pika: pip install 'driftd[rabbitmq]'") from None
        self._pika = pika
        self.acknowledges = not self.config.stream
        password = urlsplit(self.config.url).password
        self._secrets = [password] if password else []
        self._link: AmqpLink | None = None
        self._ready = threading.Condition()
        self._buffer: list[_Delivery] = []  # delivered on the current channel, not acknowledged, in order
        self._problem: str | None = None  # what a delivery showed (a stream read as a queue, or the reverse)
        # classic queues
        self._seq = 0
        self._skip: Counter[str] = Counter()  # committed, maybe unacknowledged: dropped when redelivered
        self._recently_acked: list[str] = []
        self._dropped = 0
        self.redeliveries_dropped = 0
        # streams
        self._position: Cursor = None  # the last offset handed out
        self._check_first = False
        self._reported_gaps: set[tuple[int, int]] = set()
        self._last_delivery = 0.0  # time.monotonic() of the last stream delivery (or attach)
        self._probe_gap = self.config.stall_check
        self._next_probe = 0.0
        self.stalls = 0  # consumers found stalled and attached again

    # ---- plumbing ---------------------------------------------------------------------------

    def _hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, error: BaseException) -> ConnectorError:
        if isinstance(error, LinkError) and error.missing:
            return ConnectorOptionsError(f"{self.source}: option 'queue': no such queue")
        return ConnectorError(f"{self.source}: {self._hide(str(error))}")

    def _wake(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def _connect(self) -> AmqpLink:
        parameters = self._pika.URLParameters(self.config.url)
        parameters.connection_attempts, parameters.retry_delay = 1, 0
        parameters.socket_timeout = parameters.stack_timeout = self.config.timeout
        parameters.client_properties = {"connection_name": f"driftd {self.config.queue}"}
        link = AmqpLink(parameters, self.config.timeout, self.config.queue, self._wake)
        link.open()
        return link

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()
        with self._ready:
            self._buffer = []

    def _consume(self, arguments: dict[str, Any]) -> None:
        """Connect if needed and start consuming on a new channel (what the old one held comes again)."""
        if self._link is None:
            self._link = self._connect()
            if self._link.is_stream(self.config.queue) != self.config.stream:
                self._drop_link()
                raise ConnectorOptionsError(f"{self.source}: option 'stream': " + (
                    "the queue is not a stream (x-queue-type: stream)" if self.config.stream else
                    "the queue is a stream: set stream: true to read it by offset"))
        with self._ready:
            self._buffer = []
            self._problem = None
        on_message = self._on_stream_message if self.config.stream else self._on_queue_message
        generation = self._link.consume(self.config.queue, self.config.prefetch, arguments, on_message)
        with self._ready:  # a delivery of the old channel may have slipped in before it closed
            self._buffer = [d for d in self._buffer if d.generation == generation]

    def _needs_channel(self) -> bool:
        link = self._link
        return link is None or not link.alive or link.channel_problem is not None or link.cancelled

    def _wait_for(self, wanted: int, after: Any) -> None:
        """Wait until ``wanted`` messages after ``after`` are here, the credit is spent, or none came for ``wait`` s.

        A trickle of messages holds a fetch for five ``wait`` periods at most.
        """
        wait = self.config.wait
        deadline = time.monotonic() + 5 * wait
        with self._ready:
            while True:
                ready = sum(1 for d in self._buffer if after is None or d.position > after)
                if ready >= wanted or len(self._buffer) >= self.config.prefetch or self._needs_channel():
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._ready.wait(min(wait, remaining)):
                    return

    def _rows(self, deliveries: list[_Delivery], label: str) -> pa.Table:
        rows, kept = readable_rows(
            deliveries, lambda d: f"{label} {d.position}", lambda d: json_object(d.body), tuple(META_TYPES),
            self.config.on_invalid, self.source, "set on_invalid: skip to skip such messages")
        for row, position in zip(rows, kept):
            row[ROUTING_KEY] = deliveries[position].routing_key
            if self.config.stream:
                row[OFFSET] = deliveries[position].position
        return records_table(rows, META_TYPES) if rows else _empty(self.config.stream)

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` messages after ``cursor``, in the order the broker delivered them."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        try:
            if self.config.stream:
                return self._fetch_stream(cursor, max_rows)
            return self._fetch_queue(cursor, max_rows)
        except LinkError as error:
            self._drop_link()
            raise self._error(error) from None

    def close(self) -> None:
        """Disconnect: a classic queue gets back every message not acknowledged, for the next reader."""
        self._drop_link()

    # ---- streams ----------------------------------------------------------------------------

    def _on_stream_message(self, generation: int, method: Any, properties: Any, body: bytes) -> None:
        offset = (properties.headers or {}).get("x-stream-offset")
        with self._ready:
            if self._link is None or generation != self._link.generation:
                return
            if offset is None:
                self._problem = "option 'stream': the queue is not a stream (its messages carry no offset)"
            else:
                self._buffer.append(_Delivery(int(offset), generation, method.delivery_tag, method.routing_key, body))
                self._last_delivery, self._probe_gap, self._next_probe = time.monotonic(), self.config.stall_check, 0.0
            self._ready.notify_all()

    def _fetch_stream(self, cursor: Cursor, max_rows: int) -> Batch:
        after = _stream_offset(cursor, self.source)
        if self._needs_channel() or after != self._position:
            if self._link is not None and self._link.cancelled:
                log.warning("%s: the broker cancelled the consumer; attaching again at offset %s", self.source, after)
            self._attach(after)
        lost = 0
        while True:
            self._wait_for(max_rows, after)
            with self._ready:
                if self._problem is not None:
                    raise ConnectorOptionsError(f"{self.source}: {self._problem}")
                lost += self._check_retention(after)
                ready = [d for d in self._buffer if after is None or d.position > after][:max_rows]
                last = ready[-1] if ready else None
                if last is not None:
                    self._buffer = [d for d in self._buffer if d.position > last.position]
                # A consumer attaches at the start of the stream chunk that holds the offset: the messages
                # before it come first. Read already, they are acknowledged and dropped at once: held, they
                # would spend the whole credit (prefetch) and no newer message would ever come.
                stale = [d for d in self._buffer if after is not None and d.position <= after] if last is None else []
                if stale:
                    self._buffer = [d for d in self._buffer if d.position > after]
            if not stale or self._needs_channel():
                break
            assert self._link is not None
            self._link.ack(stale[-1].generation, stale[-1].tag)
        if last is None:
            self._raise_if_gone()
            if self._stalled(after):
                self._attach(after)
            return Batch(_empty(True), cursor, lost=lost)
        assert self._link is not None
        self._link.ack(last.generation, last.tag)  # credit for the next messages
        self._position = last.position
        return Batch(self._rows(ready, "offset"), last.position, lost=lost)

    def _attach(self, after: int | None) -> None:
        """A new consumer at the committed offset itself, to see whether the stream still holds it."""
        self._consume({"x-stream-offset": "first" if after is None else after})
        self._position, self._check_first = after, after is not None
        with self._ready:
            self._last_delivery, self._probe_gap, self._next_probe = time.monotonic(), self.config.stall_check, 0.0

    def _stalled(self, after: int | None) -> bool:
        """Whether the consumer has received nothing for ``stall_check`` s while the stream holds newer messages.

        A safeguard: a consumer the broker keeps but feeds nothing (its credit or its offset listener
        lost) would otherwise wait for ever without an error. The stream's last chunk is read
        on a side channel; when it holds an offset after ``after``, the consumer is stalled.
        While the stream is idle, the checks back off (doubling, up to five minutes).
        """
        now = time.monotonic()
        with self._ready:
            if self._buffer or now - self._last_delivery < self.config.stall_check or now < self._next_probe:
                return False
        assert self._link is not None
        tail = self._link.stream_tail(self.config.queue, quiet=self.config.wait)
        with self._ready:
            if self._buffer or self._last_delivery > now:
                return False  # a delivery came meanwhile: the consumer is alive
            self._next_probe = time.monotonic() + self._probe_gap
            self._probe_gap = min(2 * self._probe_gap, 300.0)
        if tail is None or (after is not None and tail <= after):
            return False
        self.stalls += 1
        log.warning("%s: the stream consumer received nothing for %.0f s while the stream holds offsets up to %d "
                    "(read up to %s); attaching again at offset %s", self.source, now - self._last_delivery, tail,
                    "none" if after is None else after, "first" if after is None else after)
        return True

    def _check_retention(self, after: Cursor) -> int:
        """Messages removed from the stream after the committed offset, judged by the first message received."""
        if not self._check_first or not self._buffer:
            return 0
        self._check_first = False
        first = self._buffer[0].position
        if first <= after:
            return 0
        lost = first - after - 2  # the first retained segment starts with one offset holding no message
        if (after, first) in self._reported_gaps:
            return 0
        self._reported_gaps.add((after, first))
        if lost <= 0:
            log.info("%s: the stream's retention removed the committed offset %d, but no message after it",
                     self.source, after)
            return 0
        log.warning("%s: the stream no longer holds offsets %d to %d: up to %d messages after the committed offset "
                    "were removed (retention) before driftd read them; rows lost. Raise the stream's retention "
                    "(x-max-length-bytes, x-max-age) to cover the longest time driftd may be down or behind",
                    self.source, after + 1, first - 1, lost)
        return lost

    def _raise_if_gone(self) -> None:
        link = self._link
        if link is not None and not link.alive:
            raise LinkError(link.problem or "the connection is closed")
        if link is not None and link.channel_problem is not None:
            raise LinkError(link.channel_problem)

    # ---- classic queues ---------------------------------------------------------------------

    def _on_queue_message(self, generation: int, method: Any, properties: Any, body: bytes) -> None:
        key = message_key(method, properties, body)
        stream = (properties.headers or {}).get("x-stream-offset") is not None
        with self._ready:
            link = self._link
            if link is None or generation != link.generation:
                return  # a message of a channel that is gone: the broker delivers it again
            if stream:
                self._problem = "option 'stream': the queue is a stream: set stream: true to read it by offset"
            elif method.redelivered and self._skip[key] > 0:
                self._skip[key] -= 1
                self._dropped += 1
                link.ack_in_loop(generation, method.delivery_tag)  # counted before; its ack was lost
            else:
                if not method.redelivered:
                    self._skip.clear()  # the redeliveries (at the head of the queue) are all through
                self._seq += 1
                self._buffer.append(_Delivery(self._seq, generation, method.delivery_tag, method.routing_key, body, key))
            self._ready.notify_all()

    def _fetch_queue(self, cursor: Cursor, max_rows: int) -> Batch:
        after, unacked = _queue_position(cursor, self.source)
        if self._needs_channel():
            if self._link is not None and self._link.cancelled:
                log.warning("%s: the broker cancelled the consumer; consuming again", self.source)
            with self._ready:
                self._seq = max(self._seq, after)
                self._skip = Counter(unacked)  # committed, perhaps never acknowledged: dropped if they come back
            self._consume({})
        self._wait_for(max_rows, after)
        with self._ready:
            if self._problem is not None:
                raise ConnectorOptionsError(f"{self.source}: {self._problem}")
            ready = [d for d in self._buffer if d.position > after][:max_rows]
            owed = [d.key for d in self._buffer if ready and d.position <= ready[-1].position]
            dropped, self._dropped = self._dropped, 0
        if dropped:
            self.redeliveries_dropped += dropped
            log.info("%s: dropped %d redelivered messages driftd had already counted (their acknowledgement "
                     "did not reach the broker)", self.source, dropped)
        if not ready:
            self._raise_if_gone()
            return Batch(_empty(False), cursor)
        return Batch(self._rows(ready, "message"), {"seq": ready[-1].position, "unacked": owed + self._recently_acked})

    def commit(self, cursor: Cursor) -> None:
        """Acknowledge every message handed out up to ``cursor`` (a classic queue; nothing for a stream)."""
        if self.config.stream or cursor is None:
            return
        after, _ = _queue_position(cursor, self.source)
        if self._link is None:  # start-up: nothing received yet; the first fetch recognises redeliveries
            return
        with self._ready:
            done = [d for d in self._buffer if d.position <= after]
        if not done:
            return
        try:
            self._link.ack(done[-1].generation, done[-1].tag)
        except LinkError as error:
            raise self._error(error) from None
        with self._ready:
            self._buffer = [d for d in self._buffer if d.position > after]
            self._recently_acked = [d.key for d in done]


def _stream_offset(cursor: Cursor, source: str) -> int | None:
    if cursor is None or (isinstance(cursor, int) and not isinstance(cursor, bool) and cursor >= 0):
        return cursor
    raise ConnectorError(f"{source}: invalid cursor {cursor!r}, expected a stream offset (int >= 0)")


def _queue_position(cursor: Cursor, source: str) -> tuple[int, list[str]]:
    if cursor is None:
        return 0, []
    try:
        seq, unacked = cursor["seq"], cursor["unacked"]
        if (set(cursor) == {"seq", "unacked"} and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0
                and isinstance(unacked, list) and all(isinstance(key, str) for key in unacked)):
            return seq, unacked
    except (TypeError, KeyError):
        pass
    raise ConnectorError(f"{source}: invalid cursor {cursor!r}, expected {{'seq': int >= 0, 'unacked': [str, ...]}}")


def _empty(stream: bool) -> pa.Table:
    names = (ROUTING_KEY, OFFSET) if stream else (ROUTING_KEY,)
    return pa.table({name: pa.array([], type=META_TYPES[name]) for name in names})


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``rabbitmq`` connector."""
    return {"rabbitmq": RabbitMqConnector}
