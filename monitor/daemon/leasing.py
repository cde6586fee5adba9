"""This replica's hold on one monitor's lease, when several replicas share a PostgreSQL database."""

from __future__ import annotations

import logging

from monitor.daemon.errors import reason
from monitor.metrics import Metrics
from monitor.store import LeaseTaken, Store

log = logging.getLogger("driftd.engine")


class LeaseKeeper:
    """Takes, renews and hands back one monitor's lease; without a lease (SQLite) the monitor is always held."""

    def __init__(self, name: str, monitor_id: int, store: Store, metrics: Metrics,
                 lease: tuple[str, float] | None) -> None:
        """``lease`` is (replica id, seconds), or None when this process is the only replica."""
        self.name, self.monitor_id, self.store, self.metrics, self.lease = name, monitor_id, store, metrics, lease
        self._set(lease is None)

    def take(self) -> tuple[bool, bool]:
        """Take or renew the lease: (held now, newly taken — so state cached meanwhile must be reloaded)."""
        if self.lease is None:
            return True, False
        taken = self.store.acquire_lease(self.monitor_id, *self.lease)
        held = bool(taken)
        # Taken (not renewed) means another replica may have held it and committed meanwhile, even
        # when this one never noticed it was gone: what it cached is stale either way.
        newly = taken is LeaseTaken.TAKEN or (held and not self.held)
        if newly:
            log.info("monitor %s: this replica (%s) now evaluates it", self.name, self.lease[0])
        self._set(held)
        return held, newly

    def publish(self) -> None:
        """Export whether this replica holds the lease (again, after the monitor's series were reset)."""
        self._set(self.held)

    def lost(self) -> None:
        """The tick found the lease with another replica."""
        self._set(False)

    def hand_back_if_over_share(self) -> bool:
        """After a committed tick: give the lease up when this replica holds more than its share of monitors.

        Nothing is lost: the tick is committed, and another replica takes the monitor on its next tick.
        """
        if self.lease is None:
            return False
        try:
            handed_back = self.store.balance_lease(self.monitor_id, *self.lease)
        except Exception as error:  # noqa: BLE001 - the tick is committed; balancing can wait for the next one
            log.warning("monitor %s: could not check the lease balance: %s", self.name, reason(error))
            return False
        if handed_back:
            self._set(False)
            log.info("monitor %s: handed back by this replica (%s) to balance the replicas", self.name, self.lease[0])
        return handed_back

    def _set(self, held: bool) -> None:
        self.held = held
        self.metrics.lease(self.name, held)  # the monitor's gauges go with the lease
