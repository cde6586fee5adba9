"""``driftd run --workers N``: N worker processes sharing the monitors through PostgreSQL leases.

Each worker is a whole daemon (``driftd run`` with its own replica id): the leases give each
monitor to one worker at a time and balance them, as between replicas on several machines. The
parent only supervises: it restarts a worker that died, forwards SIGTERM, SIGINT and SIGHUP, and
ends when every worker has ended. Worker ``i`` (from 0) serves ``/metrics`` and the API on
``server.port + i``; each exports the gauges of the monitors it holds, so ``sum()`` counts a
monitor once.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from monitor.config import DriftdConfig

log = logging.getLogger("driftd")

#: A worker that ran shorter than this before dying is restarted after a growing pause (at most 30 s).
STEADY_SECONDS = 30.0
#: A worker that ends with this status (configuration, database schema) is not restarted: nor is any other.
EXIT_CONFIG = 2


def refuse_workers(config: DriftdConfig, workers: int) -> str | None:
    """Why ``workers`` processes cannot share this configuration's monitors; None when they can."""
    if workers > 1 and make_url(config.storage.url).get_backend_name() == "sqlite":
        return (f"--workers {workers}: SQLite serves a single replica; workers share the monitors through "
                "PostgreSQL leases (set storage.url to a PostgreSQL database, or run without --workers)")
    return None


def worker_config(config: DriftdConfig, index: int, count: int = 1) -> DriftdConfig:
    """Worker ``index`` of ``count``'s configuration: the HTTP port moved by ``index`` (port 0 stays any free
    port), and its share of ``storage.reference_cache_mib``, a budget for the whole command (each worker
    keeps the summaries of the monitors it holds, about 1/``count`` of them)."""
    if count > 1:
        share = config.storage.reference_cache_mib // count
        config = config.model_copy(update={"storage": config.storage.model_copy(
            update={"reference_cache_mib": share})})
    if index == 0 or config.server.port == 0:
        return config
    return config.model_copy(update={"server": config.server.model_copy(
        update={"port": config.server.port + index})})


@dataclass
class Worker:
    """One worker process and its restarts."""

    index: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = 0.0
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        self.started = time.monotonic()
        self.restart_at = None
        log.info("worker %d started (pid %d)", self.index, self.process.pid)


class Supervisor:
    """Starts the workers, restarts the dead, forwards signals, and returns the exit status."""

    def __init__(self, config_path: Path, workers: int, log_format: str) -> None:
        self.workers = [Worker(index, [sys.executable, "-m", "monitor.cli", "run", "--config", str(config_path),
                                       "--log-format", log_format, "--worker-index", str(index),
                                       "--worker-of", str(workers)])
                        for index in range(workers)]
        self.stopping = False
        self.status = 0

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping the %d worker(s)", signal.Signals(signum).name, len(self.workers))
        self.stopping = True
        self._send(signal.SIGTERM)

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        log.info("received SIGHUP: each worker reloads the configuration")
        self._send(signal.SIGHUP)

    def _send(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signum)

    def run(self) -> int:
        """Supervise until every worker ended after a stop (or one refused its configuration)."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        for worker in self.workers:
            worker.start()
        while True:
            alive = 0
            for worker in self.workers:
                alive += self._watch(worker)
            if alive == 0:  # stopped, or a worker refused its configuration
                return self.status
            time.sleep(0.2)

    def _watch(self, worker: Worker) -> int:
        """1 while the worker runs (or waits for its restart), 0 once it ended for good."""
        now = time.monotonic()
        if worker.process is None:
            return 0
        code = worker.process.poll()
        if code is None:
            return 1
        if worker.restart_at is not None:
            if self.stopping:
                worker.process, worker.restart_at = None, None
                return 0
            if now >= worker.restart_at:
                worker.start()
            return 1
        if self.stopping:
            worker.process = None
            return 0
        worker.exits.append(code)
        if code == EXIT_CONFIG:
            log.error("worker %d (pid %d) refused to run (exit %d): stopping every worker", worker.index,
                      worker.process.pid, code)
            worker.process = None
            self.status = EXIT_CONFIG
            self.stopping = True
            self._send(signal.SIGTERM)
            return 0
        ran = now - worker.started
        worker.pause = 0.0 if ran >= STEADY_SECONDS else min(30.0, max(1.0, 2 * worker.pause))
        worker.restart_at = now + worker.pause
        log.warning("worker %d (pid %d) died (exit %d) after %.0f s; restarting it in %.0f s", worker.index,
                    worker.process.pid, code, ran, worker.pause)
        return 1
