"""Reading the history: the read models and the queries behind the API, the page and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select

from monitor.domain.records import ResultRecord
from monitor.store.database import Database, StoreError
from monitor.store.performance import performance_by_window
from monitor.store.schema import (
    Adaptation,
    DriftEvent,
    Monitor,
    ReferenceVersion,
    Result,
    Window,
    utcnow,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a newest-first listing; ``more`` when older items follow."""

    items: list[T]
    more: bool


@dataclass(frozen=True)
class WindowRow:
    """A stored window, with the version of the reference it was measured against."""

    seq: int
    reference_version: int
    rows: int
    started_at: datetime | None
    ended_at: datetime | None
    evaluated_at: datetime
    state: str
    drift_share: float
    drifted_features: list[str]
    missing_features: list[str]
    statistic: float | None
    failed_measures: dict[str, str] = field(default_factory=dict)
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    #: The model's performance in the window, estimated and realized side by side (empty: not watched).
    performance: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SeriesPoint:
    """One result in a time series: a measure of a feature in one window."""

    id: int
    seq: int
    ended_at: datetime | None
    evaluated_at: datetime
    result: ResultRecord


@dataclass(frozen=True)
class EventRow:
    """A stored drift event."""

    id: int
    window_seq: int
    created_at: datetime
    drift_share: float
    features: list[str]
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None


@dataclass(frozen=True)
class AdaptationRow:
    """A stored adaptation run."""

    id: int
    monitor: str
    event_id: int
    adapter: str
    state: str
    created_at: datetime
    updated_at: datetime
    metrics: dict[str, Any] | None
    artifact: str | None
    error: str | None
    adapter_type: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    model_version: int | None = None
    replica: str | None = None


@dataclass(frozen=True)
class Overview:
    """A monitor's latest window, active reference and totals."""

    last_window: WindowRow | None
    reference_version: int | None
    windows: int
    events: int


#: A window's time for range filters: the end of its data when known, else when it was evaluated.
WINDOW_TIME = func.coalesce(Window.ended_at, Window.evaluated_at)
#: Drift events proper: an operator's forced adaptation (``adaptations run --force``) is not drift.
DRIFT_ONLY = DriftEvent.forced.is_(False)


def _window_row(window: Window, reference_version: int,
                performance: dict[int, list[dict[str, Any]]] | None = None) -> WindowRow:
    return WindowRow(window.seq, reference_version, window.rows, window.started_at, window.ended_at,
                     window.evaluated_at, window.state, window.drift_share, list(window.drifted_features),
                     list(window.missing_features), window.statistic,
                     dict(window.failed_measures or {}), list(window.diagnoses or []),
                     list(window.segments or []), (performance or {}).get(window.id, []))


def _result_record(row: Result) -> ResultRecord:
    return ResultRecord(row.feature, row.measure, row.value, row.p_value, row.p_value_adjusted, row.threshold,
                        row.drifted)


def _in_range(column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Conditions for ``since <= column < until``."""
    return [*([column >= since] if since else []), *([column < until] if until else [])]



class HistoryQueries(Database):
    """The monitors' windows, results, events and adaptation runs, newest first."""

    def window_performance(self, window_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Each window's performance, estimated and realized (``driftd history``)."""
        with self._session() as session:
            return performance_by_window(session, window_ids)

    def windows(self, monitor: str, limit: int = 20) -> list[Window]:
        """The monitor's latest windows, newest first."""
        with self._session() as session:
            monitor_id = self._require_monitor(session, monitor)
            return list(session.scalars(select(Window).where(Window.monitor_id == monitor_id)
                                        .order_by(Window.seq.desc()).limit(limit)))

    def results(self, window_id: int) -> list[Result]:
        """Every result of one window."""
        with self._session() as session:
            return list(session.scalars(select(Result).where(Result.window_id == window_id)
                                        .order_by(Result.feature, Result.measure)))

    def drift_events(self, monitor: str, limit: int = 20) -> list[DriftEvent]:
        """The monitor's latest drift events, newest first."""
        with self._session() as session:
            monitor_id = self._require_monitor(session, monitor)
            return list(session.scalars(select(DriftEvent).where(DriftEvent.monitor_id == monitor_id, DRIFT_ONLY)
                                        .order_by(DriftEvent.id.desc()).limit(limit)))

    def count_rows(self, monitor: str) -> int:
        """Rows over all evaluated windows of a monitor."""
        with self._session() as session:
            monitor_id = self._require_monitor(session, monitor)
            return int(session.scalar(select(func.coalesce(func.sum(Window.rows), 0))
                                      .where(Window.monitor_id == monitor_id)))

    def overview(self, monitor: str) -> Overview:
        """The monitor's latest window, active reference version and totals (empty without history)."""
        with self._session() as session:
            monitor_id = self._monitor_id_or_none(session, monitor)
            if monitor_id is None:
                return Overview(None, None, 0, 0)
            last = session.execute(
                select(Window, ReferenceVersion.version)
                .join(ReferenceVersion, Window.reference_id == ReferenceVersion.id)
                .where(Window.monitor_id == monitor_id).order_by(Window.seq.desc()).limit(1)).first()
            active = session.scalar(select(ReferenceVersion.version).where(
                ReferenceVersion.monitor_id == monitor_id, ReferenceVersion.active.is_(True)))
            windows = session.scalar(select(func.count()).select_from(Window).where(Window.monitor_id == monitor_id))
            events = session.scalar(select(func.count()).select_from(DriftEvent)
                                    .where(DriftEvent.monitor_id == monitor_id, DRIFT_ONLY))
            return Overview(_window_row(*last) if last else None, active, int(windows or 0), int(events or 0))

    def window_page(self, monitor: str, limit: int, before_seq: int | None = None, since: datetime | None = None,
                    until: datetime | None = None, state: str | None = None) -> Page[WindowRow]:
        """Windows newest first, older than ``before_seq``, in ``[since, until)``, optionally of one state."""
        with self._session() as session:
            monitor_id = self._monitor_id_or_none(session, monitor)
            if monitor_id is None:
                return Page([], False)
            query = (select(Window, ReferenceVersion.version)
                     .join(ReferenceVersion, Window.reference_id == ReferenceVersion.id)
                     .where(Window.monitor_id == monitor_id, *_in_range(WINDOW_TIME, since, until)))
            if before_seq is not None:
                query = query.where(Window.seq < before_seq)
            if state is not None:
                query = query.where(Window.state == state)
            rows = session.execute(query.order_by(Window.seq.desc()).limit(limit + 1)).all()
            performance = performance_by_window(session, [row[0].id for row in rows[:limit]])
            return Page([_window_row(*row, performance) for row in rows[:limit]], len(rows) > limit)

    def window_results(self, monitor: str, seq: int, feature: str | None = None,
                       measure: str | None = None) -> tuple[WindowRow, list[ResultRecord]] | None:
        """One window and its results (optionally one feature and/or measure); None when there is no such window."""
        with self._session() as session:
            monitor_id = self._monitor_id_or_none(session, monitor)
            if monitor_id is None:
                return None
            found = session.execute(
                select(Window, ReferenceVersion.version)
                .join(ReferenceVersion, Window.reference_id == ReferenceVersion.id)
                .where(Window.monitor_id == monitor_id, Window.seq == seq)).first()
            if found is None:
                return None
            query = select(Result).where(Result.window_id == found[0].id)
            if feature is not None:
                query = query.where(Result.feature == feature)
            if measure is not None:
                query = query.where(Result.measure == measure)
            results = session.scalars(query.order_by(Result.feature, Result.measure))
            return (_window_row(*found, performance_by_window(session, [found[0].id])),
                    [_result_record(row) for row in results])

    def result_page(self, monitor: str, limit: int, before: tuple[int, int] | None = None,
                    feature: str | None = None, measure: str | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> Page[SeriesPoint]:
        """Results newest window first, older than ``before`` = (seq, result id), filtered."""
        with self._session() as session:
            monitor_id = self._monitor_id_or_none(session, monitor)
            if monitor_id is None:
                return Page([], False)
            query = (select(Result, Window.seq, Window.ended_at, Window.evaluated_at)
                     .join(Window, Result.window_id == Window.id)
                     .where(Window.monitor_id == monitor_id, *_in_range(WINDOW_TIME, since, until)))
            if feature is not None:
                query = query.where(Result.feature == feature)
            if measure is not None:
                query = query.where(Result.measure == measure)
            if before is not None:
                seq, result_id = before
                query = query.where(or_(Window.seq < seq, and_(Window.seq == seq, Result.id < result_id)))
            rows = session.execute(query.order_by(Window.seq.desc(), Result.id.desc()).limit(limit + 1)).all()
            points = [SeriesPoint(row[0].id, row.seq, row.ended_at, row.evaluated_at, _result_record(row[0]))
                      for row in rows[:limit]]
            return Page(points, len(rows) > limit)

    def event_page(self, monitor: str, limit: int, before_id: int | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> Page[EventRow]:
        """Drift events newest first, older than ``before_id``, created in ``[since, until)``."""
        with self._session() as session:
            monitor_id = self._monitor_id_or_none(session, monitor)
            if monitor_id is None:
                return Page([], False)
            query = (select(DriftEvent, Window.seq).join(Window, DriftEvent.window_id == Window.id)
                     .where(DriftEvent.monitor_id == monitor_id, DRIFT_ONLY,
                            *_in_range(DriftEvent.created_at, since, until)))
            if before_id is not None:
                query = query.where(DriftEvent.id < before_id)
            rows = session.execute(query.order_by(DriftEvent.id.desc()).limit(limit + 1)).all()
            return Page([_event_row(event, seq) for event, seq in rows[:limit]], len(rows) > limit)

    def acknowledge_event(self, monitor: str, event_id: int, by: str | None) -> EventRow:
        """Mark a drift event as seen by someone; StoreError when the monitor has no such event."""
        with self._session() as session, session.begin():
            monitor_id = self._require_monitor(session, monitor)
            found = session.execute(
                select(DriftEvent, Window.seq).join(Window, DriftEvent.window_id == Window.id)
                .where(DriftEvent.monitor_id == monitor_id, DriftEvent.id == event_id, DRIFT_ONLY)).first()
            if found is None:
                raise StoreError(f"monitor {monitor!r} has no drift event {event_id}")
            event, seq = found
            event.acknowledged_at, event.acknowledged_by = utcnow(), by
            return _event_row(event, seq)

    def adaptation_page(self, limit: int, before_id: int | None = None, monitor: str | None = None,
                        state: str | None = None) -> Page[AdaptationRow]:
        """Adaptation runs newest first, older than ``before_id``, optionally of one monitor and state."""
        with self._session() as session:
            query = (select(Adaptation, Monitor.name).join(DriftEvent, Adaptation.event_id == DriftEvent.id)
                     .join(Monitor, DriftEvent.monitor_id == Monitor.id))
            if monitor is not None:
                query = query.where(Monitor.name == monitor)
            if state is not None:
                query = query.where(Adaptation.state == state)
            if before_id is not None:
                query = query.where(Adaptation.id < before_id)
            rows = session.execute(query.order_by(Adaptation.id.desc()).limit(limit + 1)).all()
            runs = [adaptation_row(run, name) for run, name in rows[:limit]]
            return Page(runs, len(rows) > limit)


def adaptation_row(run: Adaptation, monitor: str) -> AdaptationRow:
    """The read-only form of a stored adaptation run."""
    return AdaptationRow(run.id, monitor, run.event_id, run.adapter, run.state, run.created_at, run.updated_at,
                         run.metrics, run.artifact, run.error, run.adapter_type, run.started_at, run.finished_at,
                         run.reason, run.model_version, run.replica)


def _event_row(event: DriftEvent, seq: int) -> EventRow:
    return EventRow(event.id, seq, event.created_at, event.drift_share, list(event.features),
                    event.acknowledged_at, event.acknowledged_by)
