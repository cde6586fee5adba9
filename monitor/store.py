"""The SQL history: monitors, references, cursors, windows, results and drift events."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Iterator, TypeVar

from sqlalchemy import ColumnElement, Engine, and_, create_engine, event, func, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from monitor.migrate import check_schema
from monitor.models import (
    Adaptation,
    DriftEvent,
    Lease,
    Monitor,
    ReferenceVersion,
    Result,
    SourceCursor,
    Window,
    utcnow,
)


#: The feature name of results about all features jointly (multivariate measures).
ALL_FEATURES = "*"


class StoreError(Exception):
    """The history database refused an operation."""


class LeaseLost(StoreError):
    """Another replica took over the monitor: this replica's tick must not commit."""


log = logging.getLogger("driftd.store")
_LEASE_BOOK_LOCK = threading.Lock()


@dataclass(frozen=True)
class LeaseView:
    """The leases as one replica sees them when deciding to take or hand back a monitor."""

    held: dict[str, int]  # replica → leases it holds now (the live replicas, this one aside when it holds none)
    mine: int
    monitors: int  # in play: leases held now or free for less than a lease period
    replicas: int  # live: replicas holding a lease now, plus this one
    share: int  # ceil(monitors / replicas)


class LeaseBook:
    """What one process remembers about its own balancing: the tick cycle and the monitor handed back last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one take-or-hand-back decision at a time in this process
        self.last_handed_back: int | None = None
        self._handed_back_at: dict[int, tuple[datetime, float]] = {}
        self._cycle: set[int] = set()
        self._checked = False

    def new_cycle(self, monitor_id: int) -> bool:
        """True at the first commit ever, and whenever a monitor commits again since the last check."""
        if self._checked and monitor_id not in self._cycle:
            self._cycle.add(monitor_id)
            return False
        self._checked = True
        self._cycle = {monitor_id}
        return True

    def handed_back(self, monitor_id: int, now: datetime, seconds: float) -> None:
        self.last_handed_back = monitor_id
        self._handed_back_at[monitor_id] = (now, seconds)
        self._cycle.discard(monitor_id)

    def handed_back_recently(self, monitor_id: int, now: datetime) -> bool:
        """Whether this process handed the monitor back less than a lease period ago (then it is the others' turn)."""
        when = self._handed_back_at.get(monitor_id)
        return when is not None and now - when[0] < timedelta(seconds=when[1])


@dataclass(frozen=True)
class NewReference:
    """A reference domain about to be stored."""

    summary: bytes
    rows: int
    features: dict[str, str]
    origin: str


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
    summary: bytes = field(repr=False)
    calibration: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ResultRecord:
    """One measure of one feature in one window."""

    feature: str
    measure: str
    value: float
    p_value: float | None
    p_value_adjusted: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class WindowRecord:
    """An evaluated window and everything it produced."""

    seq: int
    reference_id: int
    rows: int
    started_at: datetime | None
    ended_at: datetime | None
    state: str
    drift_share: float
    drifted_features: list[str]
    missing_features: list[str]
    results: list[ResultRecord]
    starts_event: bool
    statistic: float | None = None
    #: With ``starts_event``: the recent target rows (Arrow IPC) kept with the event, and the
    #: adapters (recorded name, type) whose runs are queued as pending in the same transaction.
    target_sample: bytes | None = field(default=None, repr=False)
    adapters: tuple[tuple[str, str], ...] = ()


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


def _window_row(window: Window, reference_version: int) -> WindowRow:
    return WindowRow(window.seq, reference_version, window.rows, window.started_at, window.ended_at,
                     window.evaluated_at, window.state, window.drift_share, list(window.drifted_features),
                     list(window.missing_features), window.statistic)


def _result_record(row: Result) -> ResultRecord:
    return ResultRecord(row.feature, row.measure, row.value, row.p_value, row.p_value_adjusted, row.threshold,
                        row.drifted)


def _in_range(column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Conditions for ``since <= column < until``."""
    return [*([column >= since] if since else []), *([column < until] if until else [])]


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings driftd relies on."""
    if _is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """All reads and writes of driftd's SQL history."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = _is_sqlite(url)
        self.engine = create_db_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def describe(self) -> str:
        """The URL with any password masked, for logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def prepare(self) -> None:
        """Check the schema is current; an embedded SQLite database is migrated automatically."""
        check_schema(self.engine, auto_migrate=self.is_sqlite)

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    def monitor_id(self, name: str) -> int:
        """The id of the monitor named ``name``, registering it on first sight."""
        with self._session() as session:
            found = session.scalar(select(Monitor.id).where(Monitor.name == name))
            if found is not None:
                return found
            try:
                monitor = Monitor(name=name)
                session.add(monitor)
                session.commit()
                return monitor.id
            except IntegrityError:
                session.rollback()
                return session.scalars(select(Monitor.id).where(Monitor.name == name)).one()

    def _require_monitor(self, session: Session, name: str) -> int:
        found = session.scalar(select(Monitor.id).where(Monitor.name == name))
        if found is None:
            raise StoreError(f"monitor {name!r} has no history in {self.describe()}")
        return found

    # ---- progress -------------------------------------------------------------------------

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
    ) -> tuple[StoredReference | None, list[CommittedWindow]]:
        """Store a tick's windows, results, events, new reference and cursor in ONE transaction.

        With ``lease`` (owner, seconds) the transaction first checks this replica still holds the
        monitor's lease (LeaseLost otherwise: nothing is written) and renews it.
        """
        with self._session() as session, session.begin():
            if lease is not None:
                self._hold_lease(session, monitor_id, *lease)
            stored = self._add_reference(session, monitor_id, reference, activate=True) if reference else None
            committed = [self._add_window(session, monitor_id, record) for record in windows]
            cursor = session.get(SourceCursor, monitor_id, with_for_update=not self.is_sqlite)
            if cursor is None:
                cursor = SourceCursor(monitor_id=monitor_id)
                session.add(cursor)
            cursor.position = position
            cursor.pending = pending
            cursor.pending_rows = pending_rows
            cursor.updated_at = utcnow()
        return stored, committed

    # ---- leases: one replica at a time per monitor, shared out evenly ----------------------------
    #
    # A lease row is held while ``expires_at`` is in the future, free once it has passed (or its
    # owner is "": handed back), and abandoned once it has been free for longer than one lease
    # period. Balancing: a replica takes a free lease only while it holds fewer than its fair share,
    # ceil(monitors / live replicas); anyone takes an abandoned one (takeover never stalls). A replica
    # holding nothing takes over one lease from a replica holding two or more, so that it counts as
    # live; after a committed tick a replica holding more than its share + 1, or two more than another
    # live replica, hands that monitor back (at most one per tick cycle).

    def acquire_lease(self, monitor_id: int, owner: str, seconds: float) -> bool:
        """Take or renew the monitor's lease for ``seconds``; False while it is another replica's turn.

        The owner always renews its own lease. A free one is taken only while this replica holds
        fewer than its fair share (an abandoned one always); a held one only as a newcomer's first
        (see above). Only a lease this replica may take is locked (``FOR UPDATE SKIP LOCKED``), so
        replicas looking at each other's leases never make an owner miss its tick.
        """
        with self._session() as session, session.begin():
            renewed = session.execute(update(Lease).where(Lease.monitor_id == monitor_id, Lease.owner == owner)
                                      .values(expires_at=utcnow() + timedelta(seconds=seconds)))
            if renewed.rowcount:
                return True
        book = self._lease_book()
        try:
            with book.lock, self._session() as session, session.begin():
                now = utcnow()
                seen = session.get(Lease, monitor_id)
                if seen is not None and seen.owner and seen.expires_at > now and session.scalar(
                        select(func.count()).where(Lease.owner == owner, Lease.expires_at > now)):
                    return False  # held by another replica, and this one is live already: nothing to decide
                lease = session.scalar(select(Lease).where(Lease.monitor_id == monitor_id)
                                       .with_for_update(skip_locked=True).execution_options(populate_existing=True))
                if lease is None and seen is not None:
                    return False  # locked right now by another replica renewing, committing or taking it
                view = self._lease_view(session, owner, seconds, now, monitor_id)
                if lease is None:
                    if view.mine >= view.share:
                        # Leave a free row behind: it is abandoned (taken by anyone) one lease period on.
                        session.add(Lease(monitor_id=monitor_id, owner="", expires_at=now))
                        return False
                    session.add(Lease(monitor_id=monitor_id, owner=owner, expires_at=now + timedelta(seconds=seconds)))
                    return True
                if lease.owner == owner:  # renewed meanwhile by this replica's own tick: cannot happen, but harmless
                    lease.expires_at = now + timedelta(seconds=seconds)
                    return True
                if lease.expires_at > now:  # held by another replica
                    if view.mine > 0 or view.held.get(lease.owner, 0) < 2:
                        return False
                    log.info("replica %s takes over monitor %d from %s (which holds %d) so as to count as live",
                             owner, monitor_id, lease.owner, view.held[lease.owner])
                elif lease.expires_at > now - timedelta(seconds=seconds):  # free, not abandoned yet
                    if view.mine >= view.share or (lease.owner == "" and book.handed_back_recently(monitor_id, now)):
                        return False
                lease.owner, lease.expires_at = owner, now + timedelta(seconds=seconds)
                return True
        except IntegrityError:
            return False  # another replica inserted the lease first

    def balance_lease(self, monitor_id: int, owner: str, seconds: float) -> bool:
        """After a committed tick: hand the monitor back when this replica holds too many; True when it did.

        Checked once per tick cycle (when a monitor commits again since the last check) and never
        while the monitor handed back last is still free.
        """
        book = self._lease_book()
        with book.lock:
            if not book.new_cycle(monitor_id):
                return False
            with self._session() as session, session.begin():
                now = utcnow()
                if book.last_handed_back is not None:
                    last = session.get(Lease, book.last_handed_back)
                    if last is not None and last.owner == "" and last.expires_at > now - timedelta(seconds=seconds):
                        return False  # nobody took the last one yet
                view = self._lease_view(session, owner, seconds, now, monitor_id)
                others = [count for who, count in view.held.items() if who != owner]
                if not (view.mine > view.share + 1 or (others and view.mine >= min(others) + 2)):
                    return False
                lease = session.scalar(select(Lease).where(Lease.monitor_id == monitor_id)
                                       .with_for_update(skip_locked=True))
                if lease is None or lease.owner != owner:
                    return False
                lease.owner, lease.expires_at = "", now
                book.handed_back(monitor_id, now, seconds)
                log.info("replica %s hands monitor %d back: it holds %d of %d monitors, fair share %d among %d "
                         "live replicas", owner, monitor_id, view.mine, view.monitors, view.share, view.replicas)
                return True

    def _lease_view(self, session: Session, owner: str, seconds: float, now: datetime, monitor_id: int) -> LeaseView:
        """Who holds how many leases now, how many monitors are in play, and ``owner``'s fair share."""
        horizon = now - timedelta(seconds=seconds)
        rows = session.execute(
            select(Lease.owner, func.count().filter(Lease.expires_at > now), func.count(),
                   func.count().filter(Lease.monitor_id == monitor_id))
            .where(Lease.expires_at > horizon).group_by(Lease.owner)).all()
        held = {who: int(count) for who, count, _, _ in rows if who and count}
        # In play: every lease held now or free for less than a lease period, and this monitor.
        monitors = sum(int(recent) for _, _, recent, _ in rows) + (0 if any(this for *_, this in rows) else 1)
        replicas = len(set(held) | {owner})
        return LeaseView(held, held.get(owner, 0), monitors, replicas, -(-monitors // replicas))

    def _lease_book(self) -> LeaseBook:
        book = self.__dict__.get("_leases")
        if book is None:
            with _LEASE_BOOK_LOCK:
                book = self.__dict__.setdefault("_leases", LeaseBook())
        return book

    def _hold_lease(self, session: Session, monitor_id: int, owner: str, seconds: float) -> None:
        lease = session.get(Lease, monitor_id, with_for_update=True)
        now = utcnow()
        if lease is None or lease.owner != owner or lease.expires_at <= now:
            holder = "nobody" if lease is None or not lease.owner else lease.owner
            raise LeaseLost(f"the lease moved to {holder}; another replica evaluates this monitor now")
        lease.expires_at = now + timedelta(seconds=seconds)

    def release_leases(self, owner: str) -> None:
        """Give up every lease ``owner`` holds (on a clean stop, so others take over at once)."""
        with self._session() as session, session.begin():
            session.execute(update(Lease).where(Lease.owner == owner).values(owner="", expires_at=utcnow()))

    def lease_owners(self) -> dict[str, str]:
        """Monitor name → the replica whose lease has not expired."""
        with self._session() as session:
            rows = session.execute(select(Monitor.name, Lease.owner).join(Lease, Lease.monitor_id == Monitor.id)
                                   .where(Lease.expires_at > utcnow(), Lease.owner != ""))
            return {name: owner for name, owner in rows}

    def _add_window(self, session: Session, monitor_id: int, record: WindowRecord) -> CommittedWindow:
        window = Window(
            monitor_id=monitor_id, reference_id=record.reference_id, seq=record.seq, rows=record.rows,
            started_at=record.started_at, ended_at=record.ended_at, evaluated_at=utcnow(),
            state=record.state, drift_share=record.drift_share,
            drifted_features=record.drifted_features, missing_features=record.missing_features,
            statistic=record.statistic,
        )
        session.add(window)
        session.flush()
        session.add_all(
            Result(window_id=window.id, feature=r.feature, measure=r.measure, value=r.value,
                   p_value=r.p_value, p_value_adjusted=r.p_value_adjusted, threshold=r.threshold,
                   drifted=r.drifted)
            for r in record.results
        )
        event_id = None
        if record.starts_event:
            drift_event = DriftEvent(monitor_id=monitor_id, window_id=window.id, drift_share=record.drift_share,
                                     features=record.drifted_features, target_sample=record.target_sample)
            session.add(drift_event)
            session.flush()
            event_id = drift_event.id
            session.add_all(Adaptation(event_id=event_id, adapter=name, adapter_type=kind, state="pending")
                            for name, kind in record.adapters)
        return CommittedWindow(record.seq, window.id, event_id)

    # ---- references -----------------------------------------------------------------------

    @staticmethod
    def _stored(row: ReferenceVersion) -> StoredReference:
        return StoredReference(row.id, row.version, row.rows, dict(row.features), row.origin,
                               row.active, row.created_at, row.summary, row.calibration)

    def _add_reference(self, session: Session, monitor_id: int, reference: NewReference, activate: bool) -> StoredReference:
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
        return self._stored(row)

    def add_reference(self, monitor_id: int, reference: NewReference, activate: bool = True) -> StoredReference:
        """Store a new reference version (the next number) and optionally make it the active one."""
        with self._session() as session, session.begin():
            return self._add_reference(session, monitor_id, reference, activate)

    def active_reference(self, monitor_id: int) -> StoredReference | None:
        """The monitor's active reference version, if it has one."""
        with self._session() as session:
            row = session.scalar(select(ReferenceVersion).where(
                ReferenceVersion.monitor_id == monitor_id, ReferenceVersion.active.is_(True)))
            return self._stored(row) if row else None

    def references(self, monitor: str) -> list[StoredReference]:
        """Every reference version of a monitor, oldest first."""
        with self._session() as session:
            monitor_id = self._require_monitor(session, monitor)
            rows = session.scalars(select(ReferenceVersion).where(ReferenceVersion.monitor_id == monitor_id)
                                   .order_by(ReferenceVersion.version))
            return [self._stored(row) for row in rows]

    def activate_reference(self, monitor: str, version: int) -> StoredReference:
        """Make ``version`` the monitor's one active reference."""
        with self._session() as session, session.begin():
            monitor_id = self._require_monitor(session, monitor)
            row = session.scalar(select(ReferenceVersion).where(
                ReferenceVersion.monitor_id == monitor_id, ReferenceVersion.version == version))
            if row is None:
                raise StoreError(f"monitor {monitor!r} has no reference version {version}")
            session.execute(update(ReferenceVersion).where(ReferenceVersion.monitor_id == monitor_id)
                            .values(active=False))
            row.active = True
            return self._stored(row)

    def set_calibration(self, monitor: str, version: int, report: dict[str, Any]) -> None:
        """Store a calibration report (JSON-serialisable) with one reference version, replacing any earlier one."""
        with self._session() as session, session.begin():
            monitor_id = self._require_monitor(session, monitor)
            row = session.scalar(select(ReferenceVersion).where(
                ReferenceVersion.monitor_id == monitor_id, ReferenceVersion.version == version))
            if row is None:
                raise StoreError(f"monitor {monitor!r} has no reference version {version}")
            row.calibration = report

    # ---- history --------------------------------------------------------------------------

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
            return list(session.scalars(select(DriftEvent).where(DriftEvent.monitor_id == monitor_id)
                                        .order_by(DriftEvent.id.desc()).limit(limit)))

    def count_rows(self, monitor: str) -> int:
        """Rows over all evaluated windows of a monitor."""
        with self._session() as session:
            monitor_id = self._require_monitor(session, monitor)
            return int(session.scalar(select(func.coalesce(func.sum(Window.rows), 0))
                                      .where(Window.monitor_id == monitor_id)))

    def iter_monitors(self) -> Iterator[str]:
        """Names of every monitor with history."""
        with self._session() as session:
            yield from session.scalars(select(Monitor.name).order_by(Monitor.name))

    # ---- API reads (newest first, keyset pagination) ---------------------------------------

    def _monitor_id_or_none(self, session: Session, name: str) -> int | None:
        return session.scalar(select(Monitor.id).where(Monitor.name == name))

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
                                    .where(DriftEvent.monitor_id == monitor_id))
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
            return Page([_window_row(*row) for row in rows[:limit]], len(rows) > limit)

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
            return _window_row(*found), [_result_record(row) for row in results]

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
                     .where(DriftEvent.monitor_id == monitor_id, *_in_range(DriftEvent.created_at, since, until)))
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
                .where(DriftEvent.monitor_id == monitor_id, DriftEvent.id == event_id)).first()
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
