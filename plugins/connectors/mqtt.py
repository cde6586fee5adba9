"""The ``mqtt`` connector: JSON messages on MQTT topics (sensor fleets), buffered in memory.

MQTT cannot replay. A broker hands each message to the subscribers connected (or holding a
session) when it is published and then forgets it; it has no offset, sequence number or log
position a reader could store and ask for again (a packet identifier is a 16-bit number for one
message in flight, reused as soon as that message is acknowledged). So the cursor cannot be a
broker position. Its ``seq`` counts the messages THIS connector received, in arrival order: the
paho network thread appends each message to an in-memory buffer with the next number, and
``fetch(cursor, max_rows)`` hands out the buffered messages numbered above the cursor's ``seq``. A message
stays buffered until a later ``fetch`` is given a cursor at or past its number, i.e. until the
engine has committed the window state that covers it; a fetch that is retried from an older
cursor (a tick that failed before its commit) therefore gets the same rows again. A cursor
above every number this process has given out comes from an earlier run: numbering continues
from it, so the stored cursor only ever grows. With ``persistent_session`` the cursor also
lists ``unacked``: ``[packet id, CRC-32 of topic and payload]`` of each message of the batch it
ends, which the engine committed but whose acknowledgement is only sent on the next fetch::

    {"seq": 1234, "unacked": [[17, 3735928559], [18, 2882400001]]}      # [] without a session

Delivery guarantee:

* Messages published while driftd is down (or before its first tick subscribed) are LOST,
  unless ``persistent_session`` is set. Then driftd connects with MQTT 5 ``clean_start=false``,
  a fixed ``client_id``, a session expiry interval and QoS 1, and the broker queues QoS 1
  messages for the session while driftd is away (up to its own limits: Mosquitto keeps
  ``max_queued_messages`` = 1000 per client by default and drops beyond it; the session is
  discarded after ``session_expiry`` seconds).
* With ``persistent_session``, acknowledgement is manual: a message is acknowledged (PUBACK)
  only when the engine has committed past it (on the next ``fetch``). A message received but
  not yet committed when driftd stops or crashes is redelivered by the broker when it comes
  back, so delivery is at-least-once across restarts and crashes. A redelivered message the
  engine had already committed (its acknowledgement had not reached the broker) is recognised
  by its packet identifier and checksum, from the stored cursor after a restart or from memory
  after a reconnect, acknowledged and not read again; so a clean restart repeats nothing. A
  message is read twice only when its acknowledgement was lost AND a later batch was committed
  before the redelivery (a crash between ticks), and a message is wrongly skipped only when the
  broker reuses a packet identifier for a byte-identical message on the same topic whose first
  delivery was lost in a disconnect. The broker sends
  at most ``max_buffer`` unacknowledged messages (MQTT 5 receive maximum, capped at 65535), so
  the buffer does not overflow: the backlog waits at the broker instead. A broker that sends
  more anyway (Mosquitto 2.0.11 does, once the first acknowledgement arrives) is logged once,
  and the extra messages are kept, never dropped: dropping would acknowledge, i.e. lose, them.
* Without ``persistent_session``, paho acknowledges each message on receipt: rows buffered
  but not yet committed when driftd stops or crashes are LOST, as are messages published
  while it is down or disconnected. With QoS 1 every message published while the connector is
  connected reaches the buffer once, in the order the broker delivered it. When the buffer
  holds ``max_buffer`` messages the oldest is dropped to make room, counted in ``dropped`` and
  reported in a warning on the next fetch.

Each row is one message whose payload is a JSON object, plus ``_topic`` (the topic it came on)
and ``_received_at`` (when this process received it, UTC). A payload that is not a JSON object
is skipped, counted in ``malformed`` and reported in a warning. Two connectors must not share a
``client_id``: the broker disconnects the older one.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Mapping

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from monitor.plugin import (
    Backlog,
    Batch,
    Connector,
    ConnectorError,
    ConnectorOptionsError,
    Cursor,
    Duration,
    hookimpl,
    parse_options,
)
from plugins.connectors._records import records_table

if TYPE_CHECKING:
    from paho.mqtt import client as mqtt

log = logging.getLogger(__name__)

#: The columns every row gets, and their types.
META_TYPES: dict[str, pa.DataType] = {"_topic": pa.string(), "_received_at": pa.timestamp("us", tz="UTC")}
#: The largest receive maximum MQTT 5 can carry.
MAX_RECEIVE = 65535


class MqttOptions(BaseModel):
    """Options of the ``mqtt`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    topics: list[str] = Field(min_length=1, description="topic filters; '+' and '#' wildcards allowed")
    qos: Literal[0, 1] = 1
    client_id: str | None = Field(default=None, min_length=1, max_length=65535)
    persistent_session: bool = Field(default=False, description="broker queues messages while driftd is down")
    session_expiry: int = Field(default=86_400, ge=1, le=0xFFFFFFFF,
                                description="seconds the broker keeps a persistent session after a disconnect")
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = Field(default=None, description="put it in a ${ENV} reference")
    max_buffer: int = Field(default=100_000, ge=1, le=10_000_000, description="messages held in memory at most")
    keepalive: int = Field(default=60, ge=5, le=65535)
    timeout: Duration = Field(default=10.0, description="seconds to wait for the broker to accept us")

    @field_validator("topics")
    @classmethod
    def _topic_filters(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            levels = topic.split("/")
            if not topic or "\0" in topic:
                raise ValueError(f"{topic!r} is not a topic filter")
            for i, level in enumerate(levels):
                if ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+"):
                    raise ValueError(f"{topic!r}: '+' must fill a whole level and '#' only the last one")
        return topics

    @model_validator(mode="after")
    def _session_needs(self) -> MqttOptions:
        if self.persistent_session and self.client_id is None:
            raise ValueError("persistent_session needs a fixed client_id (the broker keeps the session by it)")
        if self.persistent_session and self.qos != 1:
            raise ValueError("persistent_session needs qos 1 (brokers queue only QoS 1 and 2 for an absent client)")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self


@dataclass
class _Message:
    """One buffered message: its number here, its packet id, QoS and checksum, and its row."""

    seq: int
    mid: int
    qos: int
    crc: int
    row: dict[str, Any]


class MqttConnector(Connector):
    """Subscribes on the first ``fetch``; the cursor is ``{"seq": message counter, "unacked": [...]}``."""

    type_name = "mqtt"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(MqttOptions, self.options, "mqtt")
        try:
            import paho.mqtt.client  # noqa: F401 - an optional dependency, checked before the first tick
        except ImportError:
            raise ConnectorOptionsError("mqtt connector: needs paho-mqtt>=2: pip install 'driftd[mqtt]'") from None
        self.source = f"mqtt source {self.config.host}:{self.config.port}"
        self.manual_ack = self.config.persistent_session
        self.acknowledges = self.manual_ack  # a persistent session's messages are the monitor's until acknowledged
        self.dropped = 0
        self.malformed = 0
        self._lock = threading.Lock()
        self._buffer: deque[_Message] = deque()
        self._seq = 0
        self._acked: dict[int, int] = {}  # packet id -> payload checksum of messages committed past
        self._client: mqtt.Client | None = None
        self._ready = threading.Event()
        self._problem: str | None = None
        self._unreported = {"dropped": 0, "malformed": 0}
        self._malformed_reason = ""
        self._overflowed = False  # a persistent session's broker sent more than max_buffer (logged once)

    @property
    def buffered(self) -> int:
        """Messages held in memory now (handed out or not, none committed yet)."""
        with self._lock:
            return len(self._buffer)

    # ---- the network thread --------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if reason.is_failure:
            self._problem = f"the broker refused the connection: {reason}"
            self._ready.set()
            return
        self._problem = None
        client.subscribe([(topic, self.config.qos) for topic in self.config.topics])

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[Any],
                      _properties: Any) -> None:
        refused = [topic for topic, reason in zip(self.config.topics, reasons) if reason.is_failure]
        if refused:
            self._problem = f"the broker refused the subscription to {', '.join(refused)}"
        self._ready.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
        self._problem = f"disconnected ({reason}); reconnecting"

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            row = json.loads(message.payload)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
        except (ValueError, UnicodeDecodeError) as error:
            with self._lock:
                self.malformed += 1
                self._unreported["malformed"] += 1
                self._malformed_reason = f"on {message.topic}: {error}"
            self._ack([(message.mid, message.qos, 0)])
            return
        crc = zlib.crc32(message.payload, zlib.crc32(message.topic.encode()))
        row["_topic"] = message.topic
        row["_received_at"] = datetime.now(timezone.utc)
        evicted: list[tuple[int, int, int]] = []
        overflow = False
        with self._lock:
            if self.manual_ack and message.dup and self._acked.get(message.mid) == crc:
                evicted.append((message.mid, message.qos, crc))  # committed already; the PUBACK was lost
            elif not (self.manual_ack and message.dup and any(m.mid == message.mid for m in self._buffer)):
                self._acked.pop(message.mid, None)  # the broker reused the id: the old message is settled
                self._seq += 1
                self._buffer.append(_Message(self._seq, message.mid, message.qos, crc, row))
                overflow = self.manual_ack and len(self._buffer) > self.config.max_buffer and not self._overflowed
                self._overflowed |= overflow
                while not self.manual_ack and len(self._buffer) > self.config.max_buffer:
                    oldest = self._buffer.popleft()
                    evicted.append((oldest.mid, oldest.qos, oldest.crc))
                    self.dropped += 1
                    self._unreported["dropped"] += 1
        self._ack(evicted)
        if overflow:
            log.warning("%s: the broker sent more than max_buffer=%d unacknowledged messages (it ignores the "
                        "MQTT 5 receive maximum); keeping them all", self.source, self.config.max_buffer)

    def _ack(self, messages: list[tuple[int, int, int]]) -> None:
        """Acknowledge ``(packet id, qos, checksum)`` in manual mode; a redelivery of one is acked, not read."""
        client = self._client
        if not self.manual_ack or client is None:
            return
        with self._lock:
            self._acked.update((mid, crc) for mid, qos, crc in messages if qos)
        for mid, qos, _ in messages:
            if qos and client.ack(mid, qos) != 0:  # MQTT_ERR_SUCCESS
                log.debug("%s: acknowledging message %d failed; the broker will resend it", self.source, mid)

    # ---- the engine's side ---------------------------------------------------------------

    def _connect(self) -> None:
        """Connect and subscribe, waiting for the broker to confirm both; ConnectorError if not."""
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        config = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id or f"driftd-{uuid.uuid4().hex}",
                             protocol=mqtt.MQTTv5, manual_ack=self.manual_ack)
        if config.username is not None:
            client.username_pw_set(config.username,
                                   config.password.get_secret_value() if config.password is not None else None)
        client.on_connect, client.on_subscribe = self._on_connect, self._on_subscribe
        client.on_disconnect, client.on_message = self._on_disconnect, self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = min(config.max_buffer, MAX_RECEIVE)
        properties.SessionExpiryInterval = config.session_expiry if config.persistent_session else 0
        self._ready.clear()
        self._problem = None
        try:
            client.connect(config.host, config.port, config.keepalive,
                           clean_start=not config.persistent_session, properties=properties)
        except (OSError, ValueError) as error:
            raise ConnectorError(f"{self.source}: cannot connect: {getattr(error, 'strerror', None) or error}") from None
        self._client = client
        client.loop_start()
        if not self._ready.wait(config.timeout) or self._problem is not None:
            problem = self._problem or f"no answer from the broker within {config.timeout:g} s"
            self._disconnect()
            raise ConnectorError(f"{self.source}: {problem}")
        log.info("%s: subscribed to %s", self.source, ", ".join(config.topics))

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.on_disconnect = None
            client.disconnect()
            client.loop_stop()

    def _position(self, cursor: Cursor) -> tuple[int, dict[int, int]]:
        """The message counter and the ``{packet id: checksum}`` of the last batch, from a cursor."""
        if cursor is None:
            return 0, {}
        try:
            seq, unacked = cursor["seq"], {int(mid): int(crc) for mid, crc in cursor["unacked"]}
            if set(cursor) == {"seq", "unacked"} and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
                return seq, unacked
        except (TypeError, KeyError, ValueError):
            pass
        raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}, "
                             f"expected {{'seq': int >= 0, 'unacked': [[packet id, checksum], ...]}}")

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` buffered messages numbered above ``cursor``, in arrival order."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        after, unacked = self._position(cursor)
        if self._client is None:
            with self._lock:
                self._continue_from(after)  # before connecting: a session's redelivered messages come first
                if self.manual_ack:
                    self._acked.update(unacked)  # committed, maybe never acknowledged (an earlier run)
            self._connect()
        with self._lock:
            self._continue_from(after)
            committed = []
            while self._buffer and self._buffer[0].seq <= after:
                message = self._buffer.popleft()
                committed.append((message.mid, message.qos, message.crc))
            batch = [self._buffer[i] for i in range(min(max_rows, len(self._buffer)))]
            left = Backlog(rows=len(self._buffer) - len(batch))  # received, not handed out yet
            unreported, self._unreported = self._unreported, {"dropped": 0, "malformed": 0}
            malformed_reason = self._malformed_reason
        self._ack(committed)
        self._report(unreported, malformed_reason)
        if not batch:
            if self._problem is not None:
                raise ConnectorError(f"{self.source}: {self._problem}")
            return Batch(_empty(), cursor, left)
        pending = [[m.mid, m.crc] for m in batch if m.qos] if self.manual_ack else []
        return Batch(records_table([m.row for m in batch], META_TYPES), {"seq": batch[-1].seq, "unacked": pending},
                     left)

    def _continue_from(self, after: int) -> None:
        """Number from ``after`` on when it is above every number given out (a cursor from an earlier run)."""
        if after > self._seq:
            shift = after + 1 - (self._buffer[0].seq if self._buffer else self._seq + 1)
            for message in self._buffer:
                message.seq += shift
            self._seq += shift

    def _report(self, unreported: dict[str, int], malformed_reason: str) -> None:
        if unreported["dropped"]:
            log.warning("%s: the buffer was full (max_buffer=%d): dropped the %d oldest unread messages "
                        "(%d since start)", self.source, self.config.max_buffer, unreported["dropped"], self.dropped)
        if unreported["malformed"]:
            log.warning("%s: skipped %d messages whose payload is not a JSON object (%d since start), "
                        "the last %s", self.source, unreported["malformed"], self.malformed, malformed_reason)

    def close(self) -> None:
        """Disconnect; unacknowledged messages of a persistent session stay queued at the broker."""
        self._disconnect()
        with self._lock:
            self._buffer.clear()
            self._acked.clear()


def _empty() -> pa.Table:
    return pa.table({name: pa.array([], type=kind) for name, kind in META_TYPES.items()})


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``mqtt`` connector."""
    return {"mqtt": MqttConnector}
