"""An in-memory message queue and an acknowledging connector over it, for tests of the ack contract.

``MemoryBroker`` behaves as a classic AMQP queue does: each message is delivered to one
connection and kept until that connection acknowledges it; what a connection leaves
unacknowledged goes back to the head of the queue, in order, marked redelivered, when it
disconnects. ``MemoryQueueConnector`` reads it the way an acknowledging connector must: it numbers
what it hands out (the cursor's ``seq``), acknowledges only in ``commit``, and drops a redelivered
message its committed cursor lists as committed but unacknowledged. ``bugs`` turns on the mistakes
the ack-mode conformance suite must catch.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any, ClassVar, Mapping

import pyarrow as pa

from monitor.plugin import Batch, Connector, Cursor, hookimpl

#: Brokers by name: connector options are plain values.
BROKERS: dict[str, MemoryBroker] = {}


class MemoryBroker:
    """One queue; messages are ``{"id": n, "a": float, "b": float, "c": str}``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: deque[tuple[int, dict[str, Any], bool]] = deque()
        self.unacked: dict[int, dict[int, dict[str, Any]]] = {}
        self.published = 0
        self._connections = itertools.count(1)
        BROKERS[name] = self

    def publish(self, count: int) -> None:
        """Append ``count`` messages with the next ids."""
        for i in range(self.published, self.published + count):
            self.queue.append((i, {"id": i, "a": (i % 17) / 17, "b": 10 + (i % 5), "c": "xyz"[i % 3]}, False))
        self.published += count

    def connect(self) -> int:
        """A new connection's number."""
        number = next(self._connections)
        self.unacked[number] = {}
        return number

    def deliver(self, connection: int, limit: int) -> list[tuple[int, dict[str, Any], bool]]:
        """Up to ``limit`` messages from the head: (message id, row, redelivered)."""
        messages = []
        while self.queue and len(messages) < limit:
            message = self.queue.popleft()
            self.unacked[connection][message[0]] = message[1]
            messages.append(message)
        return messages

    def ack(self, connection: int, message_ids: list[int]) -> None:
        """Forget acknowledged messages."""
        for message_id in message_ids:
            self.unacked[connection].pop(message_id, None)

    def disconnect(self, connection: int) -> None:
        """Requeue what the connection left unacknowledged, at the head, in order, as redelivered."""
        left = self.unacked.pop(connection, {})
        for message_id in sorted(left, reverse=True):
            self.queue.appendleft((message_id, left[message_id], True))

    @property
    def outstanding(self) -> int:
        """Messages not acknowledged yet (queued or delivered)."""
        return len(self.queue) + sum(len(messages) for messages in self.unacked.values())


class MemoryQueueConnector(Connector):
    """Reads a MemoryBroker; the cursor is ``{"seq": n, "unacked": [message ids]}``."""

    type_name = "memory_queue"
    acknowledges = True
    #: Mistakes to make: "ack_on_fetch", "ack_on_close", "keep_redeliveries", "own_position".
    bugs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.broker = BROKERS[options["broker"]]
        self.connection: int | None = None
        self.buffer: list[tuple[int, int, dict[str, Any]]] = []  # (seq, message id, row), handed out or not
        self.seq = self.handed = 0
        self.skip: set[int] = set()
        self.commits: list[Cursor] = []

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Hand out buffered messages numbered after the cursor."""
        after, unacked = (0, []) if cursor is None else (cursor["seq"], cursor["unacked"])
        if self.connection is None:
            self.connection = self.broker.connect()
            self.seq = max(self.seq, after)
            self.skip = set(unacked)
        for message_id, row, redelivered in self.broker.deliver(self.connection, 1000):
            if redelivered and message_id in self.skip and "keep_redeliveries" not in self.bugs:
                self.skip.discard(message_id)  # committed before, its acknowledgement never made
                self.broker.ack(self.connection, [message_id])
                continue
            self.seq += 1
            self.buffer.append((self.seq, message_id, row))
        if "own_position" in self.bugs:  # goes on from what it handed out, not from the cursor
            after = max(after, self.handed)
        batch = [entry for entry in self.buffer if entry[0] > after][:max_rows]
        if not batch:
            return Batch(pa.table({"id": pa.array([], pa.int64())}), cursor)
        last = self.handed = batch[-1][0]
        unacked_now = [message_id for seq, message_id, _ in self.buffer if seq <= last]
        if "ack_on_fetch" in self.bugs:
            self.commit({"seq": last, "unacked": []})
        return Batch(pa.Table.from_pylist([row for _, _, row in batch]), {"seq": last, "unacked": unacked_now})

    def commit(self, cursor: Cursor) -> None:
        """Acknowledge every buffered message numbered up to the cursor."""
        self.commits.append(cursor)
        if cursor is None or self.connection is None:
            return
        done = [message_id for seq, message_id, _ in self.buffer if seq <= cursor["seq"]]
        self.broker.ack(self.connection, done)
        self.buffer = [entry for entry in self.buffer if entry[0] > cursor["seq"]]

    def close(self) -> None:
        """Disconnect: what is unacknowledged goes back to the queue."""
        if self.connection is not None:
            if "ack_on_close" in self.bugs:
                self.broker.ack(self.connection, [message_id for _, message_id, _ in self.buffer])
            self.broker.disconnect(self.connection)
            self.connection = None
            self.buffer = []


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register ``memory_queue``."""
    return {"memory_queue": MemoryQueueConnector}
