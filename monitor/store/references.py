"""Reference versions: stored summaries, one active per monitor, with their calibration reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, defer

from monitor.domain.records import NewReference
from monitor.store.crashpoints import crash_point, crash_scope
from monitor.store.database import Database, StoreError
from monitor.store.schema import ReferenceVersion, utcnow


@dataclass(frozen=True)
class StoredReference:
    """A stored reference version."""

    id: int
    version: int
    rows: int
    features: dict[str, str]
    origin: str
    active: bool
    created_at: datetime
    #: The encoded summary; empty when the version was read without it (``active_reference(..., summary=False)``).
    summary: bytes = field(repr=False)
    calibration: dict[str, Any] | None = field(default=None, repr=False)



def stored_reference(row: ReferenceVersion, summary: bool = True) -> StoredReference:
    """The read-only form of a stored reference version (its summary empty when ``summary`` is False)."""
    return StoredReference(row.id, row.version, row.rows, dict(row.features), row.origin,
                           row.active, row.created_at, row.summary if summary else b"", row.calibration)


def add_reference(session: Session, monitor_id: int, reference: NewReference, activate: bool) -> StoredReference:
    """Inside a transaction: store ``reference`` as the monitor's next version, optionally the active one."""
    version = (session.scalar(
        select(func.max(ReferenceVersion.version)).where(ReferenceVersion.monitor_id == monitor_id)
    ) or 0) + 1
    if activate:
        session.execute(update(ReferenceVersion).where(ReferenceVersion.monitor_id == monitor_id)
                        .values(active=False))
    row = ReferenceVersion(monitor_id=monitor_id, version=version, origin=reference.origin,
                           rows=reference.rows, features=reference.features,
                           summary=reference.summary, active=activate, created_at=utcnow())
    session.add(row)
    session.flush()
    return stored_reference(row)


class References(Database):
    """Adding, listing and activating reference versions."""

    def add_reference(self, monitor_id: int, reference: NewReference, activate: bool = True) -> StoredReference:
        """Store a new reference version (the next number) and optionally make it the active one."""
        with crash_scope("reference"), self._session() as session, session.begin():
            stored = add_reference(session, monitor_id, reference, activate)
        crash_point("reference.commit.after")
        return stored

    def active_reference(self, monitor_id: int, summary: bool = True) -> StoredReference | None:
        """The monitor's active reference version, if it has one; without its summary bytes unless ``summary``.

        A tick checks which version is active without moving the (possibly large) summary out of SQL;
        ``reference_summary`` reads it once when the version changes.
        """
        query = select(ReferenceVersion).where(ReferenceVersion.monitor_id == monitor_id,
                                               ReferenceVersion.active.is_(True))
        with self._session() as session:
            row = session.scalar(query if summary else query.options(defer(ReferenceVersion.summary)))
            return stored_reference(row, summary) if row else None

    def reference_summary(self, reference_id: int) -> bytes:
        """The encoded summary of one stored reference version (by its id); StoreError when it is gone."""
        with self._session() as session:
            data = session.scalar(select(ReferenceVersion.summary).where(ReferenceVersion.id == reference_id))
        if data is None:
            raise StoreError(f"reference version id {reference_id} is gone")
        return data

    def references(self, monitor: str) -> list[StoredReference]:
        """Every reference version of a monitor, oldest first."""
        with self._session() as session:
            monitor_id = self._require_monitor(session, monitor)
            rows = session.scalars(select(ReferenceVersion).where(ReferenceVersion.monitor_id == monitor_id)
                                   .order_by(ReferenceVersion.version))
            return [stored_reference(row) for row in rows]

    def activate_reference(self, monitor: str, version: int) -> StoredReference:
        """Make ``version`` the monitor's one active reference."""
        with self._session() as session, session.begin():
            row = self._version(session, monitor, version)
            session.execute(update(ReferenceVersion).where(ReferenceVersion.monitor_id == row.monitor_id)
                            .values(active=False))
            row.active = True
            return stored_reference(row)

    def set_calibration(self, monitor: str, version: int, report: dict[str, Any]) -> None:
        """Store a calibration report (JSON-serialisable) with one reference version, replacing any earlier one."""
        with self._session() as session, session.begin():
            self._version(session, monitor, version).calibration = report

    def _version(self, session: Session, monitor: str, version: int) -> ReferenceVersion:
        """The stored row of one reference version; StoreError when the monitor has none of that number."""
        monitor_id = self._require_monitor(session, monitor)
        row = session.scalar(select(ReferenceVersion).where(
            ReferenceVersion.monitor_id == monitor_id, ReferenceVersion.version == version))
        if row is None:
            raise StoreError(f"monitor {monitor!r} has no reference version {version}")
        return row

