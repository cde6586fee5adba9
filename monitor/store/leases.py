"""Leases: one replica at a time evaluates a monitor, and the replicas share the monitors evenly.

A lease row is held while ``expires_at`` is in the future, free once it has passed (or its owner
is "": handed back), and abandoned once it has been free for longer than one lease period.
Balancing: a replica takes a free lease only while it holds fewer than its fair share,
ceil(monitors / live replicas); anyone takes an abandoned one (takeover never stalls). A replica
holding nothing takes over one lease from a replica holding two or more, so that it counts as
live; after a committed tick a replica holding more than its share + 1, or two more than another
live replica, hands that monitor back (at most one per tick cycle).
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.store.database import Database, StoreError
from monitor.store.schema import Lease, Monitor, utcnow

log = logging.getLogger("driftd.store")


class LeaseLost(StoreError):
    """Another replica took over the monitor: this replica's tick must not commit."""


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


def hold_lease(session: Session, monitor_id: int, owner: str, seconds: float) -> None:
    """Inside a tick's transaction: check ``owner`` still holds the lease (LeaseLost if not) and renew it."""
    lease = session.get(Lease, monitor_id, with_for_update=True)
    now = utcnow()
    if lease is None or lease.owner != owner or lease.expires_at <= now:
        holder = "nobody" if lease is None or not lease.owner else lease.owner
        raise LeaseLost(f"the lease moved to {holder}; another replica evaluates this monitor now")
    lease.expires_at = now + timedelta(seconds=seconds)



class LeaseTaken(enum.IntEnum):
    """What ``acquire_lease`` did: not held, renewed without a break, or taken (free or from another)."""

    NO = 0
    RENEWED = 1
    TAKEN = 2


class Leases(Database):
    """Taking, renewing, balancing and releasing the monitors' leases."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._lease_book = LeaseBook()

    def acquire_lease(self, monitor_id: int, owner: str, seconds: float) -> LeaseTaken:
        """Take or renew the monitor's lease for ``seconds``; NO (falsy) while it is another replica's turn.

        RENEWED means the row still named ``owner``: nobody else can have held it (and so committed)
        since this replica last took it. TAKEN means it was free or another's: whatever this replica
        cached about the monitor may be stale.

        The owner always renews its own lease. A free one is taken only while this replica holds
        fewer than its fair share (an abandoned one always); a held one only as a newcomer's first
        (see above). Only a lease this replica may take is locked (``FOR UPDATE SKIP LOCKED``), so
        replicas looking at each other's leases never make an owner miss its tick.
        """
        with self._session() as session, session.begin():
            renewed = session.execute(update(Lease).where(Lease.monitor_id == monitor_id, Lease.owner == owner)
                                      .values(expires_at=utcnow() + timedelta(seconds=seconds)))
            if renewed.rowcount:
                return LeaseTaken.RENEWED
        book = self._lease_book
        try:
            with book.lock, self._session() as session, session.begin():
                now = utcnow()
                seen = session.get(Lease, monitor_id)
                if seen is not None and seen.owner and seen.expires_at > now and session.scalar(
                        select(func.count()).where(Lease.owner == owner, Lease.expires_at > now)):
                    return LeaseTaken.NO  # held by another replica, and this one is live already: nothing to decide
                lease = session.scalar(select(Lease).where(Lease.monitor_id == monitor_id)
                                       .with_for_update(skip_locked=True).execution_options(populate_existing=True))
                if lease is None and seen is not None:
                    return LeaseTaken.NO  # locked right now by another replica renewing, committing or taking it
                view = self._lease_view(session, owner, seconds, now, monitor_id)
                if lease is None:
                    if view.mine >= view.share:
                        # Leave a free row behind: it is abandoned (taken by anyone) one lease period on.
                        session.add(Lease(monitor_id=monitor_id, owner="", expires_at=now))
                        return LeaseTaken.NO
                    session.add(Lease(monitor_id=monitor_id, owner=owner, expires_at=now + timedelta(seconds=seconds)))
                    return LeaseTaken.TAKEN
                if lease.owner == owner:  # renewed meanwhile by this replica's own tick: cannot happen, but harmless
                    lease.expires_at = now + timedelta(seconds=seconds)
                    return LeaseTaken.RENEWED
                if lease.expires_at > now:  # held by another replica
                    if view.mine > 0 or view.held.get(lease.owner, 0) < 2:
                        return LeaseTaken.NO
                    log.info("replica %s takes over monitor %d from %s (which holds %d) so as to count as live",
                             owner, monitor_id, lease.owner, view.held[lease.owner])
                elif lease.expires_at > now - timedelta(seconds=seconds):  # free, not abandoned yet
                    if view.mine >= view.share or (lease.owner == "" and book.handed_back_recently(monitor_id, now)):
                        return LeaseTaken.NO
                lease.owner, lease.expires_at = owner, now + timedelta(seconds=seconds)
                return LeaseTaken.TAKEN
        except IntegrityError:
            return LeaseTaken.NO  # another replica inserted the lease first

    def balance_lease(self, monitor_id: int, owner: str, seconds: float) -> bool:
        """After a committed tick: hand the monitor back when this replica holds too many; True when it did.

        Checked once per tick cycle (when a monitor commits again since the last check) and never
        while the monitor handed back last is still free.
        """
        book = self._lease_book
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

