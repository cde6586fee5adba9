"""The outbox's SQL: events written inside the transaction that caused them; claims, deliveries,
retries and the backlog for the dispatcher that delivers them after the commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from monitor.store.crashpoints import crash_scope
from monitor.store.database import Database
from monitor.store.schema import Monitor, OutboxMessage, utcnow

PENDING, DELIVERED, DROPPED = "pending", "delivered", "dropped"


@dataclass(frozen=True)
class OutboxItem:
    """One claimed message: an event for one destination."""

    id: int
    event_id: str
    monitor: str
    kind: str
    target: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Backlog:
    """Messages not delivered yet, and how old the oldest is."""

    pending: int
    oldest: datetime | None


def add_event(session: Session, monitor_id: int, kind: str, targets: tuple[str, ...],
              payload: dict[str, Any]) -> str | None:
    """Inside the transaction that caused it: one message per destination, one event id for all; the id.

    Nothing is written (None) when the event has no destination.
    """
    if not targets:
        return None
    event_id = str(uuid.uuid4())
    now = utcnow()
    session.add_all(OutboxMessage(event_id=event_id, monitor_id=monitor_id, kind=kind, target=target,
                                  payload={**payload, "event_uid": event_id}, state=PENDING, created_at=now,
                                  attempts=0, next_attempt_at=now) for target in targets)
    return event_id


class Outbox(Database):
    """What the dispatcher reads and writes."""

    def claim_outbox(self, replica: str, limit: int, seconds: float) -> list[OutboxItem]:
        """Claim up to ``limit`` due messages for ``seconds``, oldest first; a claim that lapsed is taken again.

        On PostgreSQL the rows are locked with ``SKIP LOCKED``, so replicas claiming at once never
        claim the same message.
        """
        now = utcnow()
        with self._session() as session, session.begin():
            query = (select(OutboxMessage, Monitor.name).join(Monitor, Monitor.id == OutboxMessage.monitor_id)
                     .where(OutboxMessage.state == PENDING, OutboxMessage.next_attempt_at <= now,
                            (OutboxMessage.claimed_until.is_(None)) | (OutboxMessage.claimed_until < now))
                     .order_by(OutboxMessage.id).limit(limit))
            if not self.is_sqlite:
                query = query.with_for_update(of=OutboxMessage, skip_locked=True)
            rows = session.execute(query).all()
            for message, _ in rows:
                message.claimed_by, message.claimed_until = replica, now + timedelta(seconds=seconds)
            return [OutboxItem(message.id, message.event_id, name, message.kind, message.target,
                               dict(message.payload), message.attempts, message.created_at)
                    for message, name in rows]

    def release_outbox_claims(self) -> int:
        """Release every claim (at start-up on single-replica SQLite: whoever claimed is gone); how many."""
        with self._session() as session, session.begin():
            done = session.execute(update(OutboxMessage).where(OutboxMessage.state == PENDING,
                                                               OutboxMessage.claimed_by.is_not(None))
                                   .values(claimed_by=None, claimed_until=None))
            return done.rowcount or 0

    def outbox_delivered(self, message_id: int) -> None:
        """The destination took the message."""
        self._settle(message_id, state=DELIVERED, delivered_at=utcnow(), last_error=None)

    def outbox_dropped(self, message_id: int, reason: str) -> None:
        """The destination is gone (a plugin uninstalled, a notifier removed): never delivered, said why."""
        self._settle(message_id, state=DROPPED, last_error=reason)

    def outbox_failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        """The delivery failed: count it and try again at ``retry_at``."""
        self._settle(message_id, attempts=OutboxMessage.attempts + 1, next_attempt_at=retry_at,
                     last_error=error[:2000])

    def outbox_deferred(self, message_id: int, retry_at: datetime) -> None:
        """Not tried (its destination just failed): release it until ``retry_at``, no attempt counted."""
        self._settle(message_id, next_attempt_at=retry_at)

    def _settle(self, message_id: int, **values: Any) -> None:
        with crash_scope("outbox"), self._session() as session, session.begin():
            session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id,
                                                        OutboxMessage.state == PENDING)
                            .values(claimed_by=None, claimed_until=None, **values))

    def outbox_backlog(self) -> Backlog:
        """Messages waiting (pending), and when the oldest was written."""
        with self._session() as session:
            count, oldest = session.execute(select(func.count(), func.min(OutboxMessage.created_at))
                                            .where(OutboxMessage.state == PENDING)).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite's min() bypasses the column type
            oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=utcnow().tzinfo)
        return Backlog(int(count), oldest)

    def prune_outbox(self, older_than: datetime) -> int:
        """Forget delivered and dropped messages written before ``older_than``; how many."""
        with self._session() as session, session.begin():
            done = session.execute(delete(OutboxMessage).where(OutboxMessage.state != PENDING,
                                                               OutboxMessage.created_at < older_than))
            return done.rowcount or 0

    def outbox_messages(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest messages (optionally in one state), for operators and tests."""
        with self._session() as session:
            query = (select(OutboxMessage, Monitor.name).join(Monitor, Monitor.id == OutboxMessage.monitor_id)
                     .order_by(OutboxMessage.id.desc()).limit(limit))
            if state is not None:
                query = query.where(OutboxMessage.state == state)
            return [{"id": m.id, "event_id": m.event_id, "monitor": name, "kind": m.kind, "target": m.target,
                     "state": m.state, "attempts": m.attempts, "created_at": m.created_at,
                     "delivered_at": m.delivered_at, "last_error": m.last_error}
                    for m, name in session.execute(query)]
