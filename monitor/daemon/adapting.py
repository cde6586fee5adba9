"""The adaptation service: a bounded worker pool that adapts each monitor off the scheduler thread.

One event at a time per monitor, a cooldown after each, and the state of every run in SQL. At
start-up, runs a stopped process left "running" are marked failed with the reason.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Callable, Mapping

from monitor.config import MonitorConfig
from monitor.daemon.adaptation_run import EventAdaptation
from monitor.daemon.model_versions import ModelStore
from monitor.domain.events import NO_ROUTES, Routes
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import AdaptationRow, Store, StoreError
from monitor.store.adaptations import AdaptationRecords
from monitor.store.schema import utcnow

log = logging.getLogger("driftd.adaptation")

#: The outcomes ``driftd_adaptations_total`` counts.

#: Seconds between looks for queued runs (events queued by other paths, cooldowns that ended).
SWEEP_SECONDS = 5.0


class AdaptationService:
    """Runs queued adaptations of the monitors this replica owns, ``workers`` at a time."""

    def __init__(self, store: Store, plugins: PluginManager, metrics: Metrics, replica: str, workers: int = 2,
                 owns: Callable[[str], bool] = lambda monitor: True,
                 routes: Callable[[str], Routes] = lambda monitor: NO_ROUTES) -> None:
        """``routes(monitor)``: where the monitor's events go (the outbox destinations)."""
        self.store = store
        self.records = AdaptationRecords(store)
        self.models = ModelStore(self.records, plugins.provided["model_loaders"])
        self.plugins = plugins
        self.metrics = metrics
        self.replica = replica
        self.owns = owns
        self.routes = routes
        self.monitors: dict[str, MonitorConfig] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="driftd-adapt")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._started = False
        self._idle = threading.Condition(self._lock)

    def configure(self, monitors: Mapping[str, MonitorConfig]) -> None:
        """Set the monitors that adapt (those with an ``adaptation`` section); publish their model versions."""
        self.monitors = {name: config for name, config in monitors.items() if config.adaptation is not None}
        for name, config in self.monitors.items():
            assert config.adaptation is not None
            self.metrics.adapters(name, [adapter.label for adapter in config.adaptation.adapters])
        self._publish_versions()

    def recover(self, links: bool = True) -> list[AdaptationRow]:
        """Fail runs left "running" by a process that is gone (all of them on single-replica SQLite).

        With ``links`` (at start-up) also points each model's ``current`` at its active version
        again: a crash may have come between recording a promotion and repointing the link.
        """
        interrupted = self.records.fail_interrupted(self.replica, everyone=self.store.is_sqlite, routes=self.routes)
        for run in interrupted:
            log.warning("monitor %s: adaptation %d (%s) was interrupted by a restart; marked failed",
                        run.monitor, run.id, run.adapter)
            self.metrics.adaptation_ended(run.monitor, run.adapter, "failed")
        for name, config in self.monitors.items() if links else ():
            if config.model is not None:
                try:
                    self.models.repoint(name, config.model)
                except (OSError, StoreError) as error:
                    log.warning("monitor %s: could not point the model's 'current' link at the active version: %s",
                                name, error)
        return interrupted

    def start(self) -> None:
        """Look for queued runs now and every few seconds (call ``recover`` first).

        Until then (``driftd check``, tests), drift only queues runs; ``run_pending`` runs them.
        """
        self._started = True
        for monitor in self.records.monitors_with_pending():
            self._maybe_start(monitor)
        self._sweeper = threading.Thread(target=self._sweep_forever, name="driftd-adapt-sweep", daemon=True)
        self._sweeper.start()

    def notify(self, monitor: str) -> None:
        """A drift event with queued runs was committed for ``monitor``: start when allowed."""
        self._maybe_start(monitor)

    def stop(self, wait: float = 30.0) -> None:
        """Cancel the runs in flight and wait up to ``wait`` seconds for them to record that."""
        self._stopped.set()
        self._cancelled.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        waiter = threading.Thread(target=self._pool.shutdown, kwargs={"wait": True}, daemon=True)
        waiter.start()
        waiter.join(wait)
        if waiter.is_alive():
            log.warning("adaptations still running after %gs; they will be marked failed at the next start", wait)

    def run_pending(self, monitor: str) -> None:
        """Run the monitor's newest queued event now, on the calling thread (``driftd check --adapt``, tests).

        Waits for a run of the monitor already in flight; ignores the cooldown (an operator asked).
        """
        config = self.monitors.get(monitor)
        if config is None:
            return
        with self._idle:
            self._idle.wait_for(lambda: monitor not in self._busy)
            self._busy.add(monitor)
        self._work(monitor, config)

    # ---- internals ----------------------------------------------------------------------------

    def _sweep_forever(self) -> None:
        while not self._stopped.wait(SWEEP_SECONDS):
            try:
                if not self.store.is_sqlite:
                    self.recover(links=False)  # runs of replicas that died since
                for monitor in self.records.monitors_with_pending():
                    self._maybe_start(monitor)
                self._publish_versions()  # a rollback from the CLI changes them behind this process
            except Exception:  # noqa: BLE001 - e.g. the database is down: try again next sweep
                log.warning("adaptation sweep failed; retrying in %gs", SWEEP_SECONDS, exc_info=True)

    def _maybe_start(self, monitor: str) -> None:
        config = self.monitors.get(monitor)
        if (config is None or not self._started or self._stopped.is_set() or not self.owns(monitor)
                or self._cooling_down(monitor, config)):
            return
        with self._lock:
            if monitor in self._busy:
                return
            self._busy.add(monitor)
        try:
            self._pool.submit(self._work, monitor, config)
        except RuntimeError:  # the pool is shutting down
            with self._idle:
                self._busy.discard(monitor)
                self._idle.notify_all()

    def _cooling_down(self, monitor: str, config: MonitorConfig) -> bool:
        assert config.adaptation is not None
        last = self.records.last_finished(monitor)
        cooling = last is not None and utcnow() < last + timedelta(seconds=config.adaptation.cooldown)
        return cooling and not self.records.requested(monitor)

    def _work(self, monitor: str, config: MonitorConfig) -> None:
        self.metrics.adaptation_running.labels(monitor).set(1)
        try:
            event = self.records.next_event(monitor)
            if event is not None:
                EventAdaptation(config, self.store, self.records, self.models, self.plugins.provided["adapters"],
                                self.metrics, self.replica, self._cancelled, self.routes).run(event)
        except Exception:  # noqa: BLE001 - one monitor's failure must not stop the pool
            log.exception("monitor %s: adaptation failed unexpectedly", monitor)
        finally:
            self.metrics.adaptation_running.labels(monitor).set(0)
            with self._idle:
                self._busy.discard(monitor)
                self._idle.notify_all()

    def _publish_versions(self) -> None:
        """Set ``driftd_model_version`` of every adapting monitor with a model (1 until one is recorded)."""
        try:
            active = self.records.active_versions()
        except Exception:  # noqa: BLE001 - the database is down: the next sweep publishes them
            return
        for name, config in self.monitors.items():
            if config.model is not None:
                self.metrics.model_version.labels(name).set(active.get(name, 1))
