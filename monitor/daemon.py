"""The daemon: storage, plugins, one runner per monitor, the scheduler and the HTTP port."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from monitor.api import build_api
from monitor.config import DriftdConfig
from monitor.engine import MonitorError, MonitorRunner, TickReport
from monitor.metrics import Metrics
from monitor.migrate import current_revision, head_revision
from monitor.plugins import PluginManager
from monitor.scheduler import Scheduler
from monitor.server import HttpServer, create_app
from monitor.store import Store

log = logging.getLogger("driftd")


class Daemon:
    """Everything ``driftd run`` and ``driftd check`` need, built from one configuration."""

    def __init__(self, config: DriftdConfig, plugins: PluginManager | None = None) -> None:
        self.config = config
        self.plugins = plugins or PluginManager()
        self.metrics = Metrics(config.metrics.max_features)
        self.store = Store(config.storage.url)
        self.runners: dict[str, MonitorRunner] = {}
        self.broken: dict[str, str] = {}
        self.scheduler: Scheduler | None = None
        self.http: HttpServer | None = None
        self._stopping = threading.Event()
        self._schema_current = False
        self._tick_locks: dict[str, threading.Lock] = {}

    def prepare(self) -> None:
        """Check the schema (migrating embedded SQLite) and build a runner per enabled monitor.

        A monitor that cannot be built is logged and left out; the others run.
        """
        log.info("storage: %s", self.store.describe())
        self.store.prepare()
        for monitor in self.config.monitors:
            if not monitor.enabled:
                continue
            try:
                self.runners[monitor.name] = MonitorRunner(monitor, self.store, self.plugins, self.metrics)
                self._tick_locks[monitor.name] = threading.Lock()
            except MonitorError as error:
                self.broken[monitor.name] = str(error)
                log.error("%s (the monitor is not running)", error)
        self.plugins.call_event("driftd_startup", config=self.config)

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

    def start(self) -> None:
        """Serve HTTP and start ticking every monitor on its schedule."""
        if self.config.server.enabled:
            self.http = HttpServer(create_app(self.metrics, self.readiness, api=build_api(self)),
                                   self.config.server.host, self.config.server.port)
            self.http.start()
            log.info("serving /metrics, /healthz, /readyz, /api/v1 on http://%s:%d",
                     self.config.server.host, self.http.port)
        self.scheduler = Scheduler(workers=min(8, max(1, len(self.runners))), on_lag=self._observe_lag)
        for name, runner in self.runners.items():
            self.scheduler.add(name, runner.config.schedule, self._job(runner))
        self.scheduler.start()
        log.info("running %d monitor(s): %s", len(self.runners), ", ".join(self.runners) or "none")

    def _observe_lag(self, monitor: str, seconds: float) -> None:
        if monitor in self.runners:
            self.metrics.scheduler_lag.labels(monitor).observe(seconds)

    def trigger(self, monitor: str) -> TickReport:
        """Run one tick of ``monitor`` now, after any scheduled tick of it in flight.

        Raises KeyError when no such monitor is running, MonitorError when the tick fails.
        """
        runner = self.runners.get(monitor)
        if runner is None:
            raise KeyError(f"no running monitor named {monitor!r}")
        with self._tick_locks[monitor]:
            started = time.perf_counter()
            try:
                return runner.tick()
            finally:
                self.metrics.tick_seconds.labels(monitor).observe(time.perf_counter() - started)

    def _job(self, runner: MonitorRunner):  # noqa: ANN202 - a zero-argument callable
        def tick() -> None:
            if self._stopping.is_set():
                return
            try:
                self.trigger(runner.name)
            except MonitorError:
                pass  # already logged by the runner, once per change of cause
            except Exception:  # noqa: BLE001 - nothing may kill the scheduler thread
                log.exception("monitor %s: unexpected error in tick", runner.name)
        return tick

    def stop(self) -> None:
        """Finish the ticks in flight, then stop the scheduler, HTTP, connectors and storage."""
        self._stopping.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.http is not None:
            self.http.stop()
        for runner in self.runners.values():
            runner.close()
        self.plugins.call_event("driftd_shutdown")
        self.store.close()

    def run_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT, then stop cleanly after the current window."""
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: stopping after the ticks in flight", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start()
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
            log.info("stopped")
