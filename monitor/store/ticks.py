"""The tick's write path (the unit of work): windows, results, events, a new reference and the cursor,
committed in ONE transaction; and the progress a monitor resumes from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from monitor.domain.events import DRIFT_DETECTED, NO_ROUTES, WINDOW_EVALUATED, Routes, drift_payload, window_payload
from monitor.domain.records import ALL_FEATURES, NewReference, WindowRecord
from monitor.store.crashpoints import crash_point, crash_scope
from monitor.store.database import Database
from monitor.store.leases import hold_lease
from monitor.store.outbox import add_event
from monitor.store.performance import performance_rows
from monitor.store.references import StoredReference, add_reference
#: ``commit_tick(pending=UNCHANGED)``: the waiting rows stored are still right (no row came, no window was cut).
UNCHANGED = b"\x00driftd:unchanged"

from monitor.store.schema import (
    WindowOutputs,
    Adaptation,
    DriftEvent,
    REQUESTED,
    Monitor,
    Result,
    SourceCursor,
    Window,
    utcnow,
)


@dataclass(frozen=True)
class Progress:
    """Where a monitor stands: cursor, rows waiting for a window, and recent window states."""

    position: Any
    pending: bytes | None
    next_seq: int
    recent: list[tuple[str, float, float | None, bool]]
    last_window_end: datetime | None


@dataclass(frozen=True)
class CommittedWindow:
    """Ids assigned by the database to a committed window and its event."""

    seq: int
    window_id: int
    event_id: int | None


@dataclass
class ForcedAdaptation:
    """What a tick needs to honour an operator's ``adaptations run --force``: the adapters and the recent rows.

    The tick's transaction looks for the request; only then are the rows serialised. ``event_id`` is
    set when the transaction recorded the forced event.
    """

    adapters: tuple[tuple[str, str], ...]
    rows: Callable[[], bytes | None]
    event_id: int | None = None
    waiting: bool = False  # a request is open but there are no rows (or windows) yet to adapt on


class TickWriter(Database):
    """Commits a tick; loads where a monitor stands."""

    def load_progress(self, monitor_id: int, recent: int) -> Progress:
        """The committed cursor, pending rows and the ``recent`` last window states."""
        with self._session() as session:
            cursor = session.get(SourceCursor, monitor_id)
            last = session.execute(
                select(Window.seq, Window.state, Window.drift_share, Window.statistic, Window.drifted_features,
                       Window.ended_at)
                .where(Window.monitor_id == monitor_id)
                .order_by(Window.seq.desc())
                .limit(max(recent, 1))
            ).all()
        return Progress(
            position=cursor.position if cursor else None,
            pending=cursor.pending if cursor else None,
            next_seq=(last[0].seq + 1) if last else 1,
            recent=[(row.state, row.drift_share, row.statistic, ALL_FEATURES in row.drifted_features)
                    for row in last[:recent]],
            last_window_end=last[0].ended_at if last else None,
        )

    def commit_tick(
        self,
        monitor_id: int,
        position: Any,
        pending: bytes | None,
        pending_rows: int,
        windows: list[WindowRecord],
        reference: NewReference | None = None,
        lease: tuple[str, float] | None = None,
        routes: Routes = NO_ROUTES,
        forced: ForcedAdaptation | None = None,
    ) -> tuple[StoredReference | None, list[CommittedWindow]]:
        """Store a tick's windows, results, events, new reference and cursor in ONE transaction.

        With ``lease`` (owner, seconds) the transaction first checks this replica still holds the
        monitor's lease (LeaseLost otherwise: nothing is written) and renews it. Each window's
        events go into the outbox, for the destinations ``routes`` names, in the same transaction.
        With ``forced``, an operator's open request becomes a forced event with its pending runs here too.
        ``pending=UNCHANGED`` leaves the stored waiting rows as they are (an idle tick rewrites no rows).
        """
        crash_point("tick.begin")
        with crash_scope("tick"), self._session() as session, session.begin():
            if lease is not None:
                hold_lease(session, monitor_id, *lease)
            stored = add_reference(session, monitor_id, reference, activate=True) if reference else None
            committed = [self._add_window(session, monitor_id, record, routes) for record in windows]
            if forced is not None:
                self._add_forced(session, monitor_id, forced)
            cursor = session.get(SourceCursor, monitor_id, with_for_update=not self.is_sqlite)
            if cursor is None:
                cursor = SourceCursor(monitor_id=monitor_id)
                session.add(cursor)
            cursor.position = position
            if pending is not UNCHANGED:
                cursor.pending = pending
                cursor.pending_rows = pending_rows
            cursor.updated_at = utcnow()
        crash_point("tick.commit.after")  # committed; nothing published yet (metrics, hooks, adaptation)
        return stored, committed

    def commit_windows(self, monitor_id: int, windows: list[WindowRecord],
                       lease: tuple[str, float] | None = None) -> list[CommittedWindow]:
        """Store windows evaluated from rows that did not come through the source (a backfill) in ONE
        transaction; the monitor's cursor and waiting rows are left as they are, and no event is sent."""
        with self._session() as session, session.begin():
            if lease is not None:
                hold_lease(session, monitor_id, *lease)
            return [self._add_window(session, monitor_id, record, NO_ROUTES) for record in windows]

    def _add_forced(self, session: Session, monitor_id: int, forced: ForcedAdaptation) -> None:
        """Turn an open ``--force`` request into a forced event on the latest window, with its pending runs.

        Not drift: no ``drift_detected`` event, and the event is left out of drift counts and lists.
        """
        requested = session.scalar(select(Monitor.adaptation_requested_at).where(Monitor.id == monitor_id))
        if requested is None:
            return
        window = session.execute(select(Window.id, Window.drift_share).where(Window.monitor_id == monitor_id)
                                 .order_by(Window.seq.desc()).limit(1)).first()
        sample = forced.rows() if window is not None else None
        if sample is None:
            forced.waiting = True
            return
        cleared = session.execute(update(Monitor).where(Monitor.id == monitor_id,
                                                        Monitor.adaptation_requested_at == requested)
                                  .values(adaptation_requested_at=None))
        if cleared.rowcount == 0:  # a newer request came meanwhile: the next tick takes it
            return
        event = DriftEvent(monitor_id=monitor_id, window_id=window.id, drift_share=window.drift_share, features=[],
                           target_sample=sample, forced=True)
        session.add(event)
        session.flush()
        session.add_all(Adaptation(event_id=event.id, adapter=name, adapter_type=kind, state="pending",
                                   replica=REQUESTED) for name, kind in forced.adapters)
        forced.event_id = event.id

    def _add_window(self, session: Session, monitor_id: int, record: WindowRecord, routes: Routes) -> CommittedWindow:
        window = Window(
            monitor_id=monitor_id, reference_id=record.reference_id, seq=record.seq, rows=record.rows,
            started_at=record.started_at, ended_at=record.ended_at, evaluated_at=utcnow(),
            state=record.state, drift_share=record.drift_share,
            drifted_features=record.drifted_features, missing_features=record.missing_features,
            statistic=record.statistic, failed_measures=record.failed_measures or None,
            diagnoses=record.diagnoses or None, segments=record.segments or None,
        )
        session.add(window)
        session.flush()
        if record.results:  # one multi-row INSERT, no ORM object per result (40 per window at 20 features × 2)
            session.execute(insert(Result), [
                {"window_id": window.id, "feature": r.feature, "measure": r.measure, "value": r.value,
                 "p_value": r.p_value, "p_value_adjusted": r.p_value_adjusted, "threshold": r.threshold,
                 "drifted": r.drifted}
                for r in record.results])
        if record.performance:
            session.add_all(performance_rows(window.id, record.performance))
        if record.performance_outputs is not None:
            session.add(WindowOutputs(window_id=window.id, monitor_id=monitor_id, outputs=record.performance_outputs,
                                      rows=record.rows, labelled_rows=0))
        event_id = None
        if record.starts_event:
            alerts = (record.performance or {}).get("alerts") or None
            drift_event = DriftEvent(monitor_id=monitor_id, window_id=window.id, drift_share=record.drift_share,
                                     features=record.drifted_features, target_sample=record.target_sample,
                                     performance_alerts=alerts)
            session.add(drift_event)
            session.flush()
            event_id = drift_event.id
            session.add_all(Adaptation(event_id=event_id, adapter=name, adapter_type=kind, state="pending")
                            for name, kind in record.adapters)
        add_event(session, monitor_id, WINDOW_EVALUATED, routes.targets(WINDOW_EVALUATED), window_payload(record))
        if event_id is not None:
            add_event(session, monitor_id, DRIFT_DETECTED, routes.targets(DRIFT_DETECTED),
                      drift_payload(record, event_id))
        return CommittedWindow(record.seq, window.id, event_id)

