"""Stored model performance per window: estimates written with the window, realized values added as labels arrive."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.domain.events import DRIFT_DETECTED, NO_ROUTES, Routes, json_safe
from monitor.store.database import Database
from monitor.store.leases import hold_lease
from monitor.store.outbox import add_event
from monitor.store.schema import DriftEvent, LabelCursor, Window, WindowOutputs, WindowPerformance, utcnow

#: metric → (reference value, reference band's lower and upper bound), as stored with the window's estimate.
References = Mapping[str, tuple[Any, Any, Any]]


def performance_rows(window_id: int, performance: Mapping[str, Any]) -> list[WindowPerformance]:
    """One row per estimated metric of a window (``WindowEstimate.to_json()`` plus ``alerts``)."""
    alerts = set(performance.get("alerts") or ())
    return [WindowPerformance(window_id=window_id, metric=m["metric"], estimated=m["value"], lower=m["lower"],
                              upper=m["upper"], reference_value=m["reference_value"],
                              reference_lower=m["reference_lower"], reference_upper=m["reference_upper"],
                              reliable=bool(performance["reliable"]), outside_share=performance.get("outside_share"),
                              alert=m["metric"] in alerts)
            for m in performance.get("metrics", ())]


def performance_by_window(session: Session, window_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Each window's metrics, estimated and realized side by side (windows without any are absent)."""
    ids = list(window_ids)
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return found
    rows = session.scalars(select(WindowPerformance).where(WindowPerformance.window_id.in_(ids))
                           .order_by(WindowPerformance.window_id, WindowPerformance.id))
    for row in rows:
        found.setdefault(row.window_id, []).append(performance_json(row))
    return found


def performance_json(row: WindowPerformance) -> dict[str, Any]:
    """One stored metric as the API shows it."""
    error = None if row.realized is None or row.estimated is None else row.estimated - row.realized
    return {"metric": row.metric, "estimated": row.estimated, "lower": row.lower, "upper": row.upper,
            "reference": row.reference_value, "reference_lower": row.reference_lower,
            "reference_upper": row.reference_upper, "reliable": row.reliable, "outside_share": row.outside_share,
            "alert": row.alert, "realized": row.realized, "labelled_rows": row.labelled_rows,
            "realized_at": row.realized_at.isoformat() if row.realized_at else None, "estimation_error": error,
            "realized_alert": bool(row.realized_alert)}


def window_ids(session: Session, monitor_id: int, seqs: Iterable[int]) -> dict[int, int]:
    """Window seq → window id for one monitor."""
    seqs = list(seqs)
    if not seqs:
        return {}
    rows = session.execute(select(Window.seq, Window.id).where(Window.monitor_id == monitor_id, Window.seq.in_(seqs)))
    return {seq: window_id for seq, window_id in rows}


@dataclass(frozen=True)
class OpenWindow:
    """A window that still takes labels: its outputs by key and the labels joined so far (Arrow IPC)."""

    window_id: int
    seq: int
    outputs: bytes
    labels: bytes | None
    rows: int
    labelled_rows: int
    references: References = field(default_factory=dict)


@dataclass(frozen=True)
class LabelUpdate:
    """A window's labels after a join, and its realized metrics when it has enough of them."""

    window_id: int
    labels: bytes
    labelled_rows: int
    realized: Mapping[str, float] | None
    #: Metrics whose realized value dropped past the alert (``performance.alert.realized``).
    realized_alerts: tuple[str, ...] = ()


@dataclass(frozen=True)
class LatestRealized:
    """The latest window with realized metrics: its values, estimation errors and realized alerts."""

    seq: int = 0
    realized: Mapping[str, float] = field(default_factory=dict)
    errors: Mapping[str, float] = field(default_factory=dict)
    alerts: frozenset[str] = frozenset()


class LabelStore(Database):
    """Reads and commits a monitor's label joins: cursor, waiting labels and windows, in ONE transaction."""

    def label_cursor(self, monitor_id: int) -> tuple[Any, bytes | None]:
        """The label source's cursor and the labels waiting for their row."""
        with self._session() as session:
            cursor = session.get(LabelCursor, monitor_id)
            return (cursor.position, cursor.pending) if cursor else (None, None)

    def open_windows(self, monitor_id: int, max_windows: int) -> list[OpenWindow]:
        """The latest windows that still take labels, newest first, with their metrics' reference values."""
        with self._session() as session:
            rows = session.execute(
                select(WindowOutputs, Window.seq).join(Window, WindowOutputs.window_id == Window.id)
                .where(WindowOutputs.monitor_id == monitor_id).order_by(Window.seq.desc()).limit(max_windows)).all()
            open_ = [(o, seq) for o, seq in rows if o.labelled_rows < o.rows]
            references: dict[int, dict[str, tuple[Any, Any, Any]]] = {}
            if open_:
                for row in session.scalars(select(WindowPerformance).where(
                        WindowPerformance.window_id.in_([o.window_id for o, _ in open_]))):
                    references.setdefault(row.window_id, {})[row.metric] = (
                        row.reference_value, row.reference_lower, row.reference_upper)
            return [OpenWindow(o.window_id, seq, o.outputs, o.labels, o.rows, o.labelled_rows,
                               references.get(o.window_id, {})) for o, seq in open_]

    def commit_labels(self, monitor_id: int, position: Any, pending: bytes | None, pending_rows: int,
                      updates: list[LabelUpdate], lease: tuple[str, float] | None = None,
                      routes: Routes = NO_ROUTES) -> list[int]:
        """Store the source's new cursor, the waiting labels and each window's labels and realized metrics.

        A window whose realized metrics first drop past the alert gets a drift event (and its
        ``drift_detected`` messages) in the same transaction; the ids of those windows. A window never
        gets a second one: whether it has one is read inside this transaction, so neither a restart
        nor a label arriving later starts another.
        """
        events = []
        with self._session() as session, session.begin():
            if lease is not None:
                hold_lease(session, monitor_id, *lease)
            cursor = session.get(LabelCursor, monitor_id, with_for_update=not self.is_sqlite)
            if cursor is None:
                cursor = LabelCursor(monitor_id=monitor_id)
                session.add(cursor)
            cursor.position, cursor.pending, cursor.pending_rows, cursor.updated_at = (position, pending, pending_rows,
                                                                                       utcnow())
            now = utcnow()
            for update in updates:
                outputs = session.get(WindowOutputs, update.window_id)
                assert outputs is not None
                outputs.labels, outputs.labelled_rows = update.labels, update.labelled_rows
                for row in session.scalars(select(WindowPerformance)
                                           .where(WindowPerformance.window_id == update.window_id)):
                    row.labelled_rows = update.labelled_rows
                    if update.realized is not None:
                        value = update.realized.get(row.metric)
                        row.realized = value if value is not None and math.isfinite(value) else None
                        row.realized_at = now
                        row.realized_alert = row.metric in update.realized_alerts
                if update.realized_alerts:
                    if _realized_event(session, monitor_id, update, routes) is not None:
                        events.append(update.window_id)
        return events

    def latest_realized(self, monitor_id: int) -> LatestRealized:
        """The latest window that has realized metrics (for the metrics and the state after a restart)."""
        with self._session() as session:
            latest = session.scalar(select(func.max(Window.seq)).join(WindowPerformance)
                                    .where(Window.monitor_id == monitor_id, WindowPerformance.realized.is_not(None)))
            if latest is None:
                return LatestRealized()
            rows = session.scalars(select(WindowPerformance).join(Window)
                                   .where(Window.monitor_id == monitor_id, Window.seq == latest,
                                          WindowPerformance.realized.is_not(None))).all()
            return LatestRealized(
                latest, {row.metric: row.realized for row in rows},
                {row.metric: row.estimated - row.realized for row in rows
                 if row.estimated is not None and row.realized is not None},
                frozenset(row.metric for row in rows if row.realized_alert))


def _realized_event(session: Session, monitor_id: int, update: LabelUpdate, routes: Routes) -> int | None:
    """The window's realized-drop drift event and its messages; None when the window already has one."""
    already = session.scalar(select(DriftEvent.id).where(DriftEvent.window_id == update.window_id,
                                                         DriftEvent.realized_alerts.is_not(None)).limit(1))
    if already is not None:
        return None
    window = session.get(Window, update.window_id)
    assert window is not None
    event = DriftEvent(monitor_id=monitor_id, window_id=window.id, drift_share=window.drift_share,
                       features=list(window.drifted_features), realized_alerts=list(update.realized_alerts))
    session.add(event)
    session.flush()
    add_event(session, monitor_id, DRIFT_DETECTED, routes.targets(DRIFT_DETECTED), json_safe(
        {"id": event.id, "window_seq": window.seq, "drift_share": window.drift_share,
         "features": list(window.drifted_features), "realized_alerts": list(update.realized_alerts),
         "realized": dict(update.realized or {}), "labelled_rows": update.labelled_rows}))
    return event.id
