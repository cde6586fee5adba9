"""The outbox dispatcher: delivers the events each transaction wrote, after the commit, at least once.

It claims due messages (one replica at a time per message), calls the plugin hook or the
notifier each one is for, and marks it delivered; a failure is retried with capped exponential
backoff (the other messages for that destination in the batch wait with it), and a message whose
destination is gone is dropped with a log line. Anything undelivered when a process stops or
crashes is delivered after the restart, by whichever replica claims it first.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from monitor.config import OutboxConfig
from monitor.daemon.errors import reason
from monitor.daemon.notifying import Notifiers
from monitor.domain.events import HOOK_TARGET, HOOKS, NOTIFIER_TARGET
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import OutboxItem, Store
from monitor.store.crashpoints import crash_point
from monitor.store.schema import utcnow

log = logging.getLogger("driftd.outbox")

#: Seconds between prunings of delivered and dropped messages.
PRUNE_EVERY = 3600.0


class OutboxDispatcher:
    """Delivers outbox messages on a thread of its own (or on the caller's: ``run_once``, ``drain``)."""

    def __init__(self, store: Store, plugins: PluginManager, notifiers: Notifiers, metrics: Metrics,
                 replica: str, config: OutboxConfig | None = None) -> None:
        self.store, self.plugins, self.notifiers, self.metrics = store, plugins, notifiers, metrics
        self.replica = replica
        self.config = config or OutboxConfig()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: dict[str, str] = {}  # destination → the error last logged for it
        self._pruned_at = 0.0
        self._lock = threading.Lock()  # one batch at a time in this process

    def start(self) -> None:
        """Deliver on a thread until ``stop``: now, after each commit that wrote events, and every ``poll``."""
        self._thread = threading.Thread(target=self._forever, name="driftd-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A transaction wrote events: deliver them now."""
        self._wake.set()

    def stop(self, wait: float = 5.0) -> None:
        """Stop the thread (after the delivery in flight, waiting at most ``wait`` seconds)."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait)

    def drain(self, timeout: float = 10.0) -> int:
        """Deliver until nothing is due or ``timeout`` passed (``driftd check``, tests); messages delivered."""
        deadline, delivered = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            done, claimed = self._batch()
            delivered += done
            if claimed == 0:
                break
        self.observe()
        return delivered

    def run_once(self) -> int:
        """Claim and deliver one batch; messages delivered."""
        return self._batch()[0]

    def observe(self) -> None:
        """Export the backlog: ``driftd_outbox_pending`` and the age of the oldest pending message."""
        backlog = self.store.outbox_backlog()
        self.metrics.outbox_pending.set(backlog.pending)
        age = 0.0 if backlog.oldest is None else max(0.0, (utcnow() - backlog.oldest).total_seconds())
        self.metrics.outbox_oldest_age.set(age)

    # ---- internals ----------------------------------------------------------------------------

    def _forever(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.config.poll)
            self._wake.clear()
            if self._stopped.is_set():
                break
            try:
                while not self._stopped.is_set() and self._batch()[1] >= self.config.batch:
                    pass  # a full batch: more may be due
                self.observe()
                if time.monotonic() - self._pruned_at > PRUNE_EVERY:
                    self._pruned_at = time.monotonic()
                    self.store.prune_outbox(utcnow() - timedelta(seconds=self.config.retention))
            except Exception as error:  # noqa: BLE001 - e.g. the database is down: try again next poll
                log.warning("outbox: delivery paused: %s", reason(error))

    def _batch(self) -> tuple[int, int]:
        """(delivered, claimed) for one claimed batch."""
        with self._lock:
            claimed = self.store.claim_outbox(self.replica, self.config.batch, self.config.claim)
            deadline = time.monotonic() + self.config.claim * 0.8  # leave the rest to a new claim
            delivered, failed = 0, {}
            for item in claimed:
                if item.target in failed or time.monotonic() > deadline:
                    # the destination just failed (or the claim runs out): wait with it, no attempt counted
                    self.store.outbox_deferred(item.id, failed.get(item.target, utcnow()))
                    continue
                retry_at = self._deliver(item)
                if retry_at is None:
                    delivered += 1
                else:
                    failed[item.target] = retry_at
            return delivered, len(claimed)

    def _deliver(self, item: OutboxItem) -> Any:
        """Deliver one message; None when done (delivered or dropped), else when to try again."""
        try:
            self._send(item)
        except LookupError as gone:
            log.warning("outbox: %s event %s of monitor %s dropped: %s", item.kind, item.event_id, item.monitor, gone)
            self.store.outbox_dropped(item.id, str(gone))
            return None
        except Exception as error:  # noqa: BLE001 - any failure of a destination is retried
            self.metrics.outbox_failures.labels(item.target).inc()
            delay = min(self.config.retry_cap, self.config.retry_base * 2 ** item.attempts)
            retry_at = utcnow() + timedelta(seconds=delay)
            why = reason(error)
            if self._failing.get(item.target) != why:
                self._failing[item.target] = why
                log.warning("outbox: delivery to %s failed (%s); retrying with backoff, next in %.0fs",
                            item.target, why, delay)
            self.store.outbox_failed(item.id, why, retry_at)
            return retry_at
        crash_point("outbox.sent")  # delivered, not yet marked: a crash here delivers it again
        self.store.outbox_delivered(item.id)
        self.metrics.outbox_delivered.labels(item.target).inc()
        if self._failing.pop(item.target, None) is not None:
            log.info("outbox: delivery to %s works again", item.target)
        return None

    def _send(self, item: OutboxItem) -> None:
        if item.target.startswith(HOOK_TARGET):
            hook, argument = HOOKS[item.kind]
            self.plugins.deliver(item.target[len(HOOK_TARGET):], hook, monitor=item.monitor,
                                 **{argument: item.payload})
        elif item.target.startswith(NOTIFIER_TARGET):
            notifier = self.notifiers.get(item.target[len(NOTIFIER_TARGET):])
            notifier.notify({"id": item.event_id, "type": item.kind, "monitor": item.monitor,
                             "created_at": item.created_at.isoformat().replace("+00:00", "Z"),
                             "attempt": item.attempts + 1, "data": item.payload})
        else:
            raise LookupError(f"unknown destination {item.target!r}")
