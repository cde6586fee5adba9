"""The daemon: storage, plugins, one runner per monitor, the scheduler and the adaptation service.

It knows no HTTP: the command line (the composition root) shows it through ``monitor.http``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
import time
import uuid
from types import FrameType
from typing import Callable, Protocol, TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from monitor.config import ConfigError, DriftdConfig, MonitorConfig
from monitor.daemon.adapting import AdaptationService
from monitor.daemon.allocator import tune_allocator
from monitor.daemon.backoff import Backoff
from monitor.daemon.engine import MonitorError, MonitorRunner, TickReport
from monitor.daemon.errors import reason
from monitor.daemon.fetching import FetchPool
from monitor.daemon.notifying import Notifiers
from monitor.daemon.outbox import OutboxDispatcher
from monitor.daemon.scheduler import Scheduler, stagger
from monitor.daemon.summaries import SummaryBudget
from monitor.metrics import Metrics
from monitor.plugins import PluginConfigError, PluginManager
from monitor.store import Store
from monitor.store.migrate import current_revision, head_revision

log = logging.getLogger("driftd")

#: Scheduler threads at most; fetches get a pool of their own, FETCH_THREADS_PER_WORKER per scheduler thread.
MAX_SCHEDULER_WORKERS = 8
FETCH_THREADS_PER_WORKER = 4
#: Seconds a stopping daemon lets the ticks in flight finish before it abandons their fetches.
STOP_GRACE = 10.0


class Face(Protocol):
    """What shows the daemon to the outside (its HTTP port): started as soon as the daemon starts
    (before the database answers, so health checks can say why it is not ready), stopped last."""

    def start(self) -> None:
        """Start showing the daemon; a second call does nothing."""

    def stop(self) -> None:
        """Stop showing it."""


class Daemon:
    """Everything ``driftd run`` and ``driftd check`` need, built from one configuration."""

    def __init__(self, config: DriftdConfig, plugins: PluginManager | None = None) -> None:
        self.config = config
        self.plugins = plugins or PluginManager()
        self.plugins.configure(config.plugins)  # PluginConfigError: one line naming the plugin
        self.metrics = Metrics(config.metrics.max_features)
        self.store = Store(config.storage.url)
        self.runners: dict[str, MonitorRunner] = {}
        #: Decoded reference summaries kept between ticks, within ``storage.reference_cache_mib``.
        self.summaries = SummaryBudget(config.storage.reference_cache_mib * 2**20)
        self.broken: dict[str, str] = {}
        self.scheduler: Scheduler | None = None
        self.faces: list[Face] = []
        workers = min(MAX_SCHEDULER_WORKERS, max(1, sum(monitor.enabled for monitor in config.monitors)))
        self._scheduler_workers = workers
        self.fetch_pool = FetchPool(max(8, FETCH_THREADS_PER_WORKER * workers))
        self._stopping = threading.Event()
        self._schema_current = False
        self._tick_locks: dict[str, threading.Lock] = {}
        #: This process among the replicas sharing the database.
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._single_replica_lock: TextIO | None = None
        self._prepared = False
        self.notifiers = Notifiers(config, self.plugins)
        self.outbox = OutboxDispatcher(self.store, self.plugins, self.notifiers, self.metrics, self.replica,
                                       config.outbox)
        self.adaptation = AdaptationService(self.store, self.plugins, self.metrics, self.replica,
                                            workers=config.adaptation.workers, owns=self._owns,
                                            routes=self.notifiers.routes)

    def prepare(self) -> None:
        """Check the schema (migrating embedded SQLite) and build a runner per enabled monitor.

        A monitor that cannot be built is logged and left out; the others run.
        """
        log.info("storage: %s", self.store.describe())
        if self.store.is_sqlite and self._single_replica_lock is None:
            self._single_replica_lock = lock_sqlite(self.store)
        self.store.prepare()
        for monitor in self.config.monitors:
            if monitor.name not in self.runners:
                self._add_monitor(monitor)
        self.adaptation.configure({name: runner.config for name, runner in self.runners.items()})
        self.adaptation.recover()
        if self.store.is_sqlite:  # a single replica: claims left by a crashed process are free again at once
            self.store.release_outbox_claims()  # (on PostgreSQL they lapse after outbox.claim)
        self._prepared = True
        self.plugins.call_event("driftd_startup", config=self.config)

    def _owns(self, monitor: str) -> bool:
        """Whether this replica evaluates (and so adapts) ``monitor`` now."""
        runner = self.runners.get(monitor)
        return runner is not None and runner.owned

    def _add_monitor(self, monitor: MonitorConfig) -> None:
        """Build the monitor's runner (and schedule it when running); a failure is logged, not raised."""
        if not monitor.enabled:
            return
        try:
            runner = self._build_runner(monitor)
        except MonitorError as error:
            self.broken[monitor.name] = str(error)
            self.metrics.update(monitor.name, error=str(error))
            log.error("%s (the monitor is not running)", error)
            return
        self._install(runner)

    def _build_runner(self, monitor: MonitorConfig) -> MonitorRunner:
        """A runner for ``monitor`` (not yet scheduled); MonitorError when it cannot be built."""
        lease = None if self.store.is_sqlite else (self.replica, self.config.storage.lease)
        return MonitorRunner(monitor, self.store, self.plugins, self.metrics, lease=lease,
                             on_adaptation=self.adaptation.notify, fetch_pool=self.fetch_pool,
                             routes=lambda name=monitor.name: self.notifiers.routes(name),
                             on_events=self.outbox.wake, summaries=self.summaries)

    def _install(self, runner: MonitorRunner) -> None:
        """Run a built runner: register it, and schedule it when the scheduler runs."""
        self.broken.pop(runner.name, None)
        self.metrics.add_monitor(runner.name)
        self.metrics.update(runner.name, error=None)
        runner.leases.publish()  # a replaced monitor's series were dropped with the old runner
        self._tick_locks[runner.name] = threading.Lock()
        self.runners[runner.name] = runner
        self.metrics.settle(runner.name)  # its new series formatted now, not all monitors' in the first scrape
        if self.scheduler is not None:
            self.scheduler.add(runner.name, runner.config.schedule, self._job(runner))

    def _remove_monitor(self, name: str) -> None:
        """Unschedule a monitor, wait for its tick in flight, close it and drop its series."""
        self.broken.pop(name, None)
        runner = self.runners.pop(name, None)
        if runner is None:
            self.metrics.remove_monitor(name)
            return
        if self.scheduler is not None:
            self.scheduler.remove(name)
        with self._tick_locks.pop(name):
            runner.close()
        self.metrics.remove_monitor(name)

    def reload(self, config: DriftdConfig) -> None:
        """Apply a new configuration: add, replace and remove monitors; keep unchanged ones running.

        All or nothing: every added or changed monitor is built first, while the running ones go
        on; if any cannot be built, ReloadRefused names it and nothing changes. Storage and the HTTP
        address cannot change while running: a change there is logged and needs a restart.
        """
        old = {monitor.name: monitor for monitor in self.config.monitors}
        new = {monitor.name: monitor for monitor in config.monitors}
        changed = [name for name in old if name not in new or new[name] != old[name]]
        started = [name for name in new if name not in old or name in changed]
        built: list[MonitorRunner] = []
        if config.plugins != self.config.plugins:
            try:
                self.plugins.configure(config.plugins)
            except PluginConfigError as error:
                raise ReloadRefused(str(error)) from None
        try:
            for name in started:
                if new[name].enabled:
                    built.append(self._build_runner(new[name]))
        except Exception as error:
            for runner in built:
                runner.close()
                if runner.name not in self.runners and runner.name not in self.broken:
                    self.metrics.remove_monitor(runner.name)
            raise ReloadRefused(reason(error)) from error
        for section in ("storage", "server"):
            if getattr(config, section) != getattr(self.config, section):
                log.warning("reload: %s settings changed; restart driftd to apply them", section)
        for name in changed:
            self._remove_monitor(name)
        for runner in built:
            self._install(runner)
        self.config = config.model_copy(update={"storage": self.config.storage, "server": self.config.server})
        self.notifiers.configure(self.config)
        self.adaptation.configure({name: runner.config for name, runner in self.runners.items()})
        log.info("reloaded the configuration: %d monitor(s) running (%d added or changed, %d removed)",
                 len(self.runners), len(started), sum(1 for name in old if name not in new))

    def tick_all(self) -> dict[str, TickReport | MonitorError]:
        """One tick of every monitor, in order; failures are returned, not raised."""
        outcomes: dict[str, TickReport | MonitorError] = {}
        for name, runner in self.runners.items():
            try:
                outcomes[name] = runner.tick()
            except MonitorError as error:
                outcomes[name] = error
        return outcomes

    def readiness(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        reasons = []
        try:
            self.store.ping()
        except Exception as error:  # noqa: BLE001
            reasons.append(f"database unreachable: {type(error).__name__}")
        else:
            if not self._schema_current:
                self._schema_current = current_revision(self.store.engine) == head_revision()
            if not self._schema_current:
                reasons.append("database schema is not current: run `driftd db upgrade`")
        if self.scheduler is None or not self.scheduler.running:
            reasons.append("scheduler not running")
        return reasons

    def prepare_when_reachable(self, stop: threading.Event) -> bool:
        """``prepare``, retrying with backoff (capped at 60 s) while a database server is unreachable.

        The faces are shown meanwhile, so ``/readyz`` says why the daemon is not ready. False when
        ``stop`` was set first. An out-of-date schema, or an SQLite file that cannot be opened,
        is raised at once: waiting would not fix it.
        """
        backoff = Backoff(cap=60.0)
        while True:
            try:
                self.prepare()
                if backoff.failures:
                    log.info("storage is reachable again: starting")
                return True
            except (OperationalError, InterfaceError) as error:
                if self.store.is_sqlite:
                    raise
                delay = backoff.failed()
                if backoff.failures == 1:
                    self.show()
                    log.error("storage unreachable (%s): not ready; retrying with backoff, next in %.0fs",
                              _first_line(error), delay)
                if stop.wait(delay):
                    return False

    def show(self) -> None:
        """Start the faces (the HTTP port) if they are not started yet."""
        for face in self.faces:
            face.start()

    def start(self) -> None:
        """Show the faces and start ticking every monitor on its schedule."""
        self.show()
        self.scheduler = Scheduler(workers=self._scheduler_workers, on_lag=self._observe_lag)
        intervals = [runner.config.schedule.interval or 0.0 for runner in self.runners.values()]
        for (name, runner), delay in zip(self.runners.items(), stagger(intervals)):
            self.scheduler.add(name, runner.config.schedule, self._job(runner), delay)
        self.scheduler.start()
        self.adaptation.start()
        self.outbox.start()
        log.info("running %d monitor(s): %s", len(self.runners), ", ".join(self.runners) or "none")

    def _observe_lag(self, monitor: str, seconds: float) -> None:
        if monitor in self.runners:
            self.metrics.scheduler_lag.labels(monitor).observe(seconds)
            self.metrics.settle(monitor)  # a queued tick's lag: formatted here (one histogram), not in a scrape

    def trigger(self, monitor: str, retry_now: bool = False) -> TickReport:
        """Run one tick of ``monitor`` now, after any scheduled tick of it in flight.

        ``retry_now`` tries a source that is backing off anyway. Raises KeyError when no such monitor
        is running, MonitorError when the tick fails.
        """
        runner = self.runners.get(monitor)
        if runner is None:
            raise KeyError(f"no running monitor named {monitor!r}")
        with self._tick_locks[monitor]:
            started = time.perf_counter()
            try:
                return runner.tick(retry_now)
            finally:
                self.metrics.tick_seconds.labels(monitor).observe(time.perf_counter() - started)
                self.metrics.settle(monitor)  # formatted here, not in the next scrape

    def _job(self, runner: MonitorRunner):  # noqa: ANN202 - a zero-argument callable
        def tick() -> None:
            if self._stopping.is_set():
                return
            try:
                self.trigger(runner.name)
            except KeyError:
                pass  # the monitor was removed by a reload after this tick was queued
            except MonitorError:
                pass  # already logged by the runner, once per change of cause
            except Exception:  # noqa: BLE001 - nothing may kill the scheduler thread
                log.exception("monitor %s: unexpected error in tick", runner.name)
        return tick

    def stop(self) -> None:
        """Finish the ticks in flight, then stop the scheduler, the faces, connectors and storage."""
        self._stopping.set()
        # ticks in flight may finish for STOP_GRACE seconds; then a fetch that still has not returned is
        # abandoned (its rows uncommitted, read again after the restart) so that the process can end
        abandon = threading.Timer(STOP_GRACE, self.fetch_pool.abandon)
        abandon.daemon = True
        abandon.start()
        if self.scheduler is not None:
            self.scheduler.stop()
        abandon.cancel()
        self.fetch_pool.abandon()
        for face in self.faces:
            face.stop()
        self.adaptation.stop(self.config.adaptation.stop_timeout)
        self.outbox.stop()
        self.notifiers.close()
        for runner in self.runners.values():
            runner.close()
        hung = self.fetch_pool.hung()
        if hung:
            log.warning("stopping without waiting for %d call(s) into connectors that have not returned (%s)",
                        len(hung), "; ".join(f"monitor {name}: a call into its connector has not returned"
                                             for name in hung))
        if not self.store.is_sqlite:
            try:
                self.store.release_leases(self.replica)  # the other replicas take over at once
            except Exception:  # noqa: BLE001 - the leases expire anyway
                log.warning("could not release this replica's leases; they expire in %gs", self.config.storage.lease)
        self.plugins.call_event("driftd_shutdown")
        self.store.close()
        if self._single_replica_lock is not None:
            self._single_replica_lock.close()

    def run_forever(self, load_config: Callable[[], DriftdConfig] | None = None) -> None:
        """Start, then block until SIGTERM or SIGINT, then stop cleanly after the current window.

        With ``load_config``, SIGHUP reloads the configuration; an invalid one is logged and the
        running one kept.
        """
        tune_allocator()  # freed window buffers go back to the system, not into the threads' heaps
        stop, reload = threading.Event(), threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: stopping after the ticks in flight", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if load_config is not None:
            signal.signal(signal.SIGHUP, lambda _signum, _frame: reload.set())
        try:
            if not self._prepared and not self.prepare_when_reachable(stop):
                return
            self.start()
            while not stop.wait(0.5):
                if reload.is_set():
                    reload.clear()
                    self._reload_from(load_config)
        finally:
            self.stop()
            log.info("stopped")

    def _reload_from(self, load_config: Callable[[], DriftdConfig] | None) -> None:
        """Reload from the file; any failure (the file, a monitor, a plugin) is one log line, the running
        configuration is kept."""
        assert load_config is not None
        try:
            self.reload(load_config())
        except Exception as error:  # noqa: BLE001 - whatever went wrong, the running configuration stays
            cause = str(error) if isinstance(error, (ConfigError, ReloadRefused)) else reason(error)
            log.error("reload refused, keeping the running configuration: %s", "; ".join(
                line.strip() for line in cause.splitlines() if line.strip()))


class ReloadRefused(Exception):
    """A new configuration was not applied (a monitor of it could not be built); nothing changed."""


def lock_sqlite(store: Store) -> TextIO | None:
    """Hold an exclusive lock beside an SQLite database: SQLite serves a single replica."""
    database = make_url(store.url).database
    if not database or database == ":memory:":
        return None
    try:
        handle = open(f"{database}.lock", "w")  # noqa: SIM115 - held open for the daemon's lifetime
    except OSError:
        return None  # e.g. the folder does not exist: opening the database itself reports it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(f"another driftd process is using {database}: SQLite serves a single replica; "
                           "run several replicas on PostgreSQL") from None
    return handle


def _first_line(error: BaseException) -> str:
    """A database error's cause without SQLAlchemy's trailer (and never a password: URLs are not in it)."""
    cause = getattr(error, "orig", None) or error
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
