"""The SQL record of adaptation: runs and their states, and each monitor's model versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from monitor.domain.events import ADAPTATION_FINISHED, NO_ROUTES, Routes, json_safe
from monitor.store import AdaptationRow, Store, StoreError, adaptation_row
from monitor.store.crashpoints import crash_point, crash_scope
from monitor.store.outbox import add_event
from monitor.store.schema import (
    Adaptation,
    DriftEvent,
    Lease,
    REQUESTED,
    ModelVersion,
    Monitor,
    SourceCursor,
    Window,
    utcnow,
)

#: Every state a run can be in; the first two are not final.
STATES = ("pending", "running", "succeeded", "failed", "rejected", "promoted", "rolled_back")
FINAL_STATES = frozenset(STATES[2:])


def adaptation_payload(run: AdaptationRow) -> dict[str, Any]:
    """The ``adaptation`` mapping ``driftd_adaptation_finished`` receives."""
    return json_safe({"id": run.id, "event_id": run.event_id, "adapter": run.adapter, "state": run.state,
                      "reason": run.reason, "metrics": run.metrics, "artifact": run.artifact,
                      "model_version": run.model_version})


def _announce(session: Session, run_id: int, routes: Routes) -> AdaptationRow:
    """Inside the transaction that ended a run: the run as stored, its event in the outbox."""
    session.flush()
    run, monitor, monitor_id = session.execute(
        select(Adaptation, Monitor.name, Monitor.id).join(DriftEvent, Adaptation.event_id == DriftEvent.id)
        .join(Monitor, DriftEvent.monitor_id == Monitor.id).where(Adaptation.id == run_id)
        .execution_options(populate_existing=True)).one()
    row = adaptation_row(run, monitor)
    add_event(session, monitor_id, ADAPTATION_FINISHED, routes.targets(ADAPTATION_FINISHED), adaptation_payload(row))
    return row


@dataclass(frozen=True)
class QueuedEvent:
    """A drift event whose adapter runs wait, with the rows it kept."""

    id: int
    monitor: str
    window_seq: int
    drift_share: float
    features: list[str]
    target_sample: bytes | None
    runs: list[AdaptationRow]


@dataclass(frozen=True)
class Evaluator:
    """Who evaluates a monitor now, as SQL shows it: a replica holding its lease, and its last committed tick."""

    lease_owner: str | None
    last_tick: datetime | None

    def takes_request(self, monitor: str, interval: float | None, now: datetime) -> tuple[bool, str]:
        """Whether a daemon will take a ``--force`` request of ``monitor`` (ticking every ``interval`` seconds, None:
        on a cron schedule), and the sentence that says who, or that nobody evaluates it (the request is kept)."""
        ticking = (self.last_tick is not None and interval is not None
                   and now - self.last_tick < timedelta(seconds=3 * float(interval) + 30))
        if self.lease_owner is not None or ticking:
            who = f"replica {self.lease_owner}" if self.lease_owner else "the daemon evaluating it"
            return True, (f"{monitor}: requested; {who} queues the adapters on its latest rows at its next tick "
                          "(see `driftd adaptations`)")
        last = "never" if self.last_tick is None else f"at {self.last_tick:%Y-%m-%d %H:%M:%S} UTC"
        if interval is None and self.last_tick is not None:  # a cron schedule: a quiet spell proves nothing
            return True, (f"{monitor}: requested; the daemon evaluating it (cron schedule, last tick {last}) "
                          "queues the adapters on its latest rows at its next tick")
        return False, (f"monitor {monitor!r}: no running driftd daemon evaluates it (its last tick was {last}); the "
                       "request is kept and runs after the daemon that takes the monitor has evaluated a window")


@dataclass(frozen=True)
class StoredModelVersion:
    """One version of a monitor's model."""

    version: int
    path: str
    active: bool
    created_at: datetime
    adaptation_id: int | None
    note: str | None


class AdaptationRecords:
    """Reads and writes of the adaptations and model_versions tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- runs -------------------------------------------------------------------------------

    def monitors_with_pending(self) -> list[str]:
        """Monitors that have runs waiting."""
        with self.store._session() as session:
            return list(session.scalars(
                select(Monitor.name).distinct().join(DriftEvent, DriftEvent.monitor_id == Monitor.id)
                .join(Adaptation, Adaptation.event_id == DriftEvent.id).where(Adaptation.state == "pending")))

    def next_event(self, monitor: str) -> QueuedEvent | None:
        """The newest event of ``monitor`` with pending runs; older events' pending runs are superseded."""
        with self.store._session() as session, session.begin():
            monitor_id = self.store._require_monitor(session, monitor)
            event_ids = list(session.scalars(
                select(DriftEvent.id).join(Adaptation, Adaptation.event_id == DriftEvent.id)
                .where(DriftEvent.monitor_id == monitor_id, Adaptation.state == "pending")
                .distinct().order_by(DriftEvent.id.desc())))
            if not event_ids:
                return None
            newest, older = event_ids[0], event_ids[1:]
            if older:
                now = utcnow()
                session.execute(update(Adaptation).where(Adaptation.event_id.in_(older), Adaptation.state == "pending")
                                .values(state="failed", updated_at=now, finished_at=now,
                                        reason=f"superseded by the later drift event {newest}"))
            event, seq = session.execute(select(DriftEvent, Window.seq).join(Window, DriftEvent.window_id == Window.id)
                                         .where(DriftEvent.id == newest)).one()
            runs = session.scalars(select(Adaptation).where(Adaptation.event_id == newest, Adaptation.state == "pending")
                                   .order_by(Adaptation.id))
            return QueuedEvent(event.id, monitor, seq, event.drift_share, list(event.features), event.target_sample,
                               [adaptation_row(run, monitor) for run in runs])

    def queue(self, monitor: str, event_id: int, adapters: list[tuple[str, str]]) -> list[int]:
        """Queue runs for an existing event (an operator's request: not held by the cooldown); their ids."""
        with self.store._session() as session, session.begin():
            monitor_id = self.store._require_monitor(session, monitor)
            event = session.get(DriftEvent, event_id)
            if event is None or event.monitor_id != monitor_id:
                raise StoreError(f"monitor {monitor!r} has no drift event {event_id}")
            runs = [Adaptation(event_id=event_id, adapter=name, adapter_type=kind, state="pending", replica=REQUESTED)
                    for name, kind in adapters]
            session.add_all(runs)
            session.flush()
            return [run.id for run in runs]

    def request_forced(self, monitor: str) -> Evaluator:
        """Ask the daemon evaluating ``monitor`` to run its adapters on its latest rows at its next tick.

        The caller checks ``monitor`` is configured. Returns who evaluates it, so the caller can say
        whether anyone will take the request.
        """
        monitor_id = self.store.monitor_id(monitor)  # a configured monitor that never ran is registered
        now = utcnow()
        with self.store._session() as session, session.begin():
            session.execute(update(Monitor).where(Monitor.id == monitor_id).values(adaptation_requested_at=now))
            lease = session.get(Lease, monitor_id)
            cursor = session.get(SourceCursor, monitor_id)
            owner = lease.owner if lease is not None and lease.owner and lease.expires_at > now else None
            return Evaluator(owner, cursor.updated_at if cursor is not None else None)

    def forced_request(self, monitor: str) -> datetime | None:
        """When a ``--force`` request of the monitor still open was made (None: none is)."""
        with self.store._session() as session:
            return session.scalar(select(Monitor.adaptation_requested_at).where(Monitor.name == monitor))

    def requested(self, monitor: str) -> bool:
        """Whether an operator queued runs for the monitor that have not started."""
        with self.store._session() as session:
            return session.scalar(select(func.count()).select_from(Adaptation)
                                  .join(DriftEvent, Adaptation.event_id == DriftEvent.id)
                                  .join(Monitor, DriftEvent.monitor_id == Monitor.id)
                                  .where(Monitor.name == monitor, Adaptation.state == "pending",
                                         Adaptation.replica == REQUESTED)) > 0

    def latest_event_id(self, monitor: str) -> int | None:
        """The monitor's newest drift event that kept target rows."""
        with self.store._session() as session:
            monitor_id = self.store._require_monitor(session, monitor)
            return session.scalar(select(DriftEvent.id).where(DriftEvent.monitor_id == monitor_id,
                                                              DriftEvent.target_sample.is_not(None))
                                  .order_by(DriftEvent.id.desc()).limit(1))

    def start(self, run_id: int, replica: str) -> None:
        """pending → running, by this replica."""
        self._set(run_id, "running", expected=("pending",), replica=replica, started_at=utcnow())

    def finish(self, run_id: int, state: str, reason: str, metrics: dict[str, Any] | None = None,
               artifact: str | None = None, error: str | None = None, model_version: int | None = None,
               routes: Routes = NO_ROUTES) -> AdaptationRow:
        """Record a final state and why, and announce it (outbox) in the same transaction; the run."""
        assert state in FINAL_STATES, state
        with crash_scope("adaptation"), self.store._session() as session, session.begin():
            session.execute(update(Adaptation).where(Adaptation.id == run_id).values(
                state=state, updated_at=utcnow(), reason=reason, metrics=json_safe(metrics), artifact=artifact,
                error=error, model_version=model_version, finished_at=utcnow()))
            return _announce(session, run_id, routes)

    def promote(self, run_id: int, monitor: str, path: str, note: str, reason: str, metrics: dict[str, Any] | None,
                routes: Routes = NO_ROUTES) -> tuple[StoredModelVersion, AdaptationRow]:
        """ONE transaction: the model at ``path`` becomes the monitor's next, active version, and the run
        ``promoted`` (``reason`` may name ``{version}``), announced in the outbox."""
        with crash_scope("promotion"), self.store._session() as session, session.begin():
            version = self._add_model(session, monitor, path, run_id, note)
            session.execute(update(Adaptation).where(Adaptation.id == run_id).values(
                state="promoted", updated_at=utcnow(), reason=reason.format(version=version.version),
                metrics=json_safe(metrics), artifact=path, model_version=version.version, finished_at=utcnow()))
            row = _announce(session, run_id, routes)
        crash_point("promotion.commit.after")
        return version, row

    def _set(self, run_id: int, state: str, expected: tuple[str, ...] | None = None, **values: Any) -> None:
        with self.store._session() as session, session.begin():
            query = update(Adaptation).where(Adaptation.id == run_id)
            if expected is not None:
                query = query.where(Adaptation.state.in_(expected))
            done = session.execute(query.values(state=state, updated_at=utcnow(), **values))
            if expected is not None and done.rowcount == 0:
                raise StoreError(f"adaptation {run_id} is no longer {' or '.join(expected)}")

    def run(self, run_id: int) -> AdaptationRow:
        """One run; StoreError when there is none."""
        with self.store._session() as session:
            found = session.execute(select(Adaptation, Monitor.name).join(DriftEvent, Adaptation.event_id == DriftEvent.id)
                                    .join(Monitor, DriftEvent.monitor_id == Monitor.id)
                                    .where(Adaptation.id == run_id)).first()
            if found is None:
                raise StoreError(f"there is no adaptation {run_id}")
            return adaptation_row(*found)

    def fail_interrupted(self, replica: str, everyone: bool,
                         routes: Callable[[str], Routes] = lambda monitor: NO_ROUTES) -> list[AdaptationRow]:
        """Mark runs left "running" by a stopped process as failed, with the reason.

        ``everyone``: every running run (a single-replica SQLite database at start-up); otherwise
        only runs of other replicas that no longer hold any lease (they are gone).
        """
        now = utcnow()
        with self.store._session() as session, session.begin():
            query = (select(Adaptation, Monitor.name).join(DriftEvent, Adaptation.event_id == DriftEvent.id)
                     .join(Monitor, DriftEvent.monitor_id == Monitor.id).where(Adaptation.state == "running"))
            if not everyone:
                alive = exists().where(and_(Lease.owner == Adaptation.replica, Lease.expires_at > now))
                query = query.where(Adaptation.replica != replica, ~alive)
            found = session.execute(query).all()
            for run, _ in found:
                run.state, run.updated_at, run.finished_at = "failed", now, now
                run.reason = (f"interrupted: the driftd process running it ({run.replica or 'unknown'}) stopped "
                              "before it finished; it was not resumed")
            return [_announce(session, run.id, routes(name)) for run, name in found]

    def last_finished(self, monitor: str) -> datetime | None:
        """When the monitor's last run that really ran finished (for the cooldown)."""
        with self.store._session() as session:
            return session.scalar(select(func.max(Adaptation.finished_at))
                                  .join(DriftEvent, Adaptation.event_id == DriftEvent.id)
                                  .join(Monitor, DriftEvent.monitor_id == Monitor.id)
                                  .where(Monitor.name == monitor, Adaptation.started_at.is_not(None)))

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Runs by (monitor, adapter, state)."""
        with self.store._session() as session:
            rows = session.execute(select(Monitor.name, Adaptation.adapter, Adaptation.state, func.count())
                                   .join(DriftEvent, Adaptation.event_id == DriftEvent.id)
                                   .join(Monitor, DriftEvent.monitor_id == Monitor.id)
                                   .group_by(Monitor.name, Adaptation.adapter, Adaptation.state)).all()
            return {(monitor, adapter, state): count for monitor, adapter, state, count in rows}

    # ---- model versions -------------------------------------------------------------------------

    def model_versions(self, monitor: str) -> list[StoredModelVersion]:
        """Every model version of a monitor, oldest first."""
        with self.store._session() as session:
            monitor_id = self.store._require_monitor(session, monitor)
            rows = session.scalars(select(ModelVersion).where(ModelVersion.monitor_id == monitor_id)
                                   .order_by(ModelVersion.version))
            return [_version(row) for row in rows]

    def active_versions(self) -> dict[str, int]:
        """The active model version of every monitor that has one, in one query."""
        with self.store._session() as session:
            rows = session.execute(select(Monitor.name, ModelVersion.version)
                                   .join(ModelVersion, ModelVersion.monitor_id == Monitor.id)
                                   .where(ModelVersion.active.is_(True))).all()
            return {name: version for name, version in rows}

    def active_model(self, monitor: str) -> StoredModelVersion | None:
        """The version in use."""
        return next((version for version in self.model_versions(monitor) if version.active), None)

    def ensure_first_model(self, monitor: str, path: str) -> StoredModelVersion:
        """Record the configured model as version 1 the first time it is needed."""
        with self.store._session() as session, session.begin():
            monitor_id = self.store._require_monitor(session, monitor)
            if session.scalar(select(ModelVersion.id).where(ModelVersion.monitor_id == monitor_id).limit(1)) is None:
                session.add(ModelVersion(monitor_id=monitor_id, version=1, path=path, active=True,
                                         created_at=utcnow(), note="the configured model"))
        active = self.active_model(monitor)
        assert active is not None
        return active

    def add_model(self, monitor: str, path: str, adaptation_id: int | None, note: str) -> StoredModelVersion:
        """Record a new version (the next number) and make it the active one."""
        with self.store._session() as session, session.begin():
            return self._add_model(session, monitor, path, adaptation_id, note)

    def _add_model(self, session: Session, monitor: str, path: str, adaptation_id: int | None,
                   note: str) -> StoredModelVersion:
        monitor_id = self.store._require_monitor(session, monitor)
        version = (session.scalar(select(func.max(ModelVersion.version))
                                  .where(ModelVersion.monitor_id == monitor_id)) or 0) + 1
        session.execute(update(ModelVersion).where(ModelVersion.monitor_id == monitor_id).values(active=False))
        row = ModelVersion(monitor_id=monitor_id, version=version, path=path, adaptation_id=adaptation_id,
                           active=True, created_at=utcnow(), note=note)
        session.add(row)
        session.flush()
        return _version(row)

    def rollback(self, monitor: str, to: int | None = None) -> tuple[StoredModelVersion, StoredModelVersion]:
        """Make an earlier version active (default: the one before the active one).

        The adaptation that promoted each version left behind becomes rolled_back. Returns
        (the version left, the version now active).
        """
        with self.store._session() as session, session.begin():
            monitor_id = self.store._require_monitor(session, monitor)
            rows = list(session.scalars(select(ModelVersion).where(ModelVersion.monitor_id == monitor_id)
                                        .order_by(ModelVersion.version)))
            current = next((row for row in rows if row.active), None)
            if current is None:
                raise StoreError(f"monitor {monitor!r} has no model versions")
            older = [row for row in rows if row.version < current.version]
            target = older[-1] if to is None and older else next((row for row in rows if row.version == to), None)
            if target is None or target.version >= current.version:
                raise StoreError(f"monitor {monitor!r}: cannot roll back from version {current.version} to "
                                 f"{'an earlier one' if to is None else f'version {to}'} (versions: "
                                 f"{', '.join(str(row.version) for row in rows)})")
            left = _version(current)
            now = utcnow()
            for row in rows:
                row.active = row.version == target.version
                if row.version > target.version and row.adaptation_id is not None:
                    session.execute(update(Adaptation).where(Adaptation.id == row.adaptation_id,
                                                             Adaptation.state == "promoted")
                                    .values(state="rolled_back", updated_at=now,
                                            reason=f"rolled back to model version {target.version}"))
            return left, _version(target)


def _version(row: ModelVersion) -> StoredModelVersion:
    return StoredModelVersion(row.version, row.path, row.active, row.created_at, row.adaptation_id, row.note)
