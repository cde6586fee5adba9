"""Reading a monitor's source: on the daemon's one fetch pool, within ``fetch_timeout``, with backoff;
and telling it which cursor was committed."""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from typing import Any, Callable

from monitor.connector import AggregateBatch, AggregatePlan, Backlog, Batch, Connector, Cursor, set_fetching_for
from monitor.daemon.backoff import Backoff
from monitor.daemon.errors import SourceDown, reason
from monitor.metrics import Metrics

log = logging.getLogger("driftd.engine")

#: No cursor acknowledged yet (None is a cursor: "from the start").
_NOTHING = object()

_default_pool: ThreadPoolExecutor | None = None
_default_pool_lock = threading.Lock()


def default_fetch_pool() -> ThreadPoolExecutor:
    """The pool of runners built outside a daemon (``driftd check``, tests): one per process."""
    global _default_pool
    with _default_pool_lock:
        if _default_pool is None:
            _default_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="driftd-fetch")
        return _default_pool


class FetchPool(ThreadPoolExecutor):
    """The daemon's fetch threads. ``abandon()`` (at shutdown) ends every wait on them at once: a tick
    waiting on a connector that never returns gives up, and ``hung()`` names the calls left running."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="driftd-fetch")
        self.stopping = threading.Event()
        self._running: dict[int, str] = {}
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # type: ignore[override]
        """Run ``fn`` on a fetch thread, remembering (for ``hung``) which monitor's call it is."""
        def tracked() -> Any:
            key = threading.get_ident()
            with self._lock:
                self._running[key] = args[0] if args and isinstance(args[0], str) else "?"
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._running.pop(key, None)
        return super().submit(tracked)

    def abandon(self) -> None:
        """Stop waiting: every wait on a call ends now, queued calls are dropped, running ones are left."""
        self.stopping.set()
        self.shutdown(wait=False, cancel_futures=True)

    def hung(self) -> list[str]:
        """The monitors whose connector call is still running."""
        with self._lock:
            return sorted(self._running.values())


class Abandoned(TimeoutError):
    """driftd is stopping: the call into the connector was left running, its result unused."""


def _for_monitor(name: str, function: Callable[..., Any], *args: Any) -> Any:
    """Run a connector call with ``fetching_for()`` naming the monitor (pool threads are reused: reset after)."""
    set_fetching_for(name)
    try:
        return function(*args)
    finally:
        set_fetching_for(None)


class Fetcher:
    """One monitor's calls into its connector, each given up after ``timeout`` seconds.

    A fetch that hangs keeps its pool thread; until it returns, later ticks fail fast instead of
    stacking more threads on a stuck source. After a failure the source backs off.
    """

    def __init__(self, name: str, source_type: str, connector: Connector, timeout: float, metrics: Metrics,
                 pool: Executor | None = None) -> None:
        self.name, self.source_type, self.connector, self.timeout = name, source_type, connector, timeout
        self.metrics = metrics
        self.pool = pool or default_fetch_pool()
        self.backoff = Backoff()
        self._in_flight: Future[Any] | None = None
        self.used = False  # fetched from since it was built (it may hold something for this replica)
        self._acknowledged: Cursor = _NOTHING  # the last cursor the connector took as committed
        self._commit_problem: str | None = None

    def fetch(self, position: Cursor, max_rows: int) -> Batch:
        """``connector.fetch``; SourceDown on any failure, a timeout or a wrong return type.

        The batch's backlog (what the source holds after it) and file count are exported when the connector tells them.
        """
        self.used = True
        batch: Batch = self._call(Batch, "fetch()", self.connector.fetch, position, max_rows)
        if batch.lost > 0:
            self.metrics.source_lost.labels(self.name).inc(batch.lost)
        if batch.files is not None:
            self.metrics.update(self.name, source_files=batch.files)
        backlog = batch.backlog if isinstance(batch.backlog, Backlog) else None
        self.metrics.update(self.name, backlog_rows=_count(backlog.rows) if backlog else None,
                            backlog_seconds=_seconds(backlog.seconds) if backlog else None)
        return batch

    def commit(self, position: Cursor, again: bool = False) -> bool:
        """``connector.commit(position)`` after ``position`` was committed; True when it succeeded.

        Skipped when the connector already took this cursor (unless ``again``: a start-up). A
        failure never undoes the committed tick: it is counted, logged once per cause, and the
        next call tries again (with the newest cursor, which covers the older ones).
        """
        if getattr(type(self.connector), "commit", Connector.commit) is Connector.commit:
            return True  # the default does nothing (or a connector not built on Connector has none): no call
        if not again and self._acknowledged is not _NOTHING and self._acknowledged == position:
            return True
        commit = self.connector.commit
        try:
            self._within_timeout(commit, position)
        except Exception as error:  # noqa: BLE001 - a plugin's failure to acknowledge, whatever it is
            self._acknowledged = _NOTHING
            self.metrics.source_commit_errors.labels(self.name).inc()
            problem = reason(error)
            if problem != self._commit_problem:
                log.error("monitor %s: source %r did not take the committed cursor: %s (the rows stay committed; "
                          "retried with the next commit)", self.name, self.source_type, problem)
                self._commit_problem = problem
            return False
        self._acknowledged = position
        if self._commit_problem is not None:
            log.info("monitor %s: source %r takes committed cursors again", self.name, self.source_type)
            self._commit_problem = None
        return True

    def aggregate(self, position: Cursor, plan: AggregatePlan) -> AggregateBatch:
        """The push-down ``connector.aggregate``; SourceDown as for ``fetch``."""
        return self._call(AggregateBatch, "aggregate()", self.connector.aggregate,  # type: ignore[attr-defined]
                          position, plan)

    def _call(self, expected: type, call: str, function: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            result = self._within_timeout(function, *args)
            if not isinstance(result, expected):
                raise TypeError(f"{call} returned {type(result).__name__}, expected a {expected.__name__}")
        except Abandoned as error:  # not the source's fault: nothing to count or log
            raise SourceDown(f"monitor {self.name!r}: {error}") from error
        except Exception as error:  # noqa: BLE001 - any connector failure is a source outage
            self.metrics.source_errors.labels(self.name).inc()
            self.set_source_up(False, error)
            raise SourceDown(f"monitor {self.name!r}: source {self.source_type!r}: {reason(error)}") from error
        finally:
            self.metrics.poll_seconds.labels(self.name).observe(time.perf_counter() - started)
        self.set_source_up(True)
        return result

    def _within_timeout(self, function: Callable[..., Any], *args: Any) -> Any:
        stopping = getattr(self.pool, "stopping", None)
        if stopping is not None and stopping.is_set():
            raise Abandoned("driftd is stopping")
        if self._in_flight is not None and not self._in_flight.done():
            raise TimeoutError(f"an earlier fetch has not returned yet (timeout {self.timeout:g}s)")
        in_flight = self._in_flight = self.pool.submit(_for_monitor, self.name, function, *args)
        deadline = time.monotonic() + self.timeout
        while not in_flight.done():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait([in_flight], timeout=min(left, 0.2) if stopping is not None else left)
            if stopping is not None and stopping.is_set() and not in_flight.done():
                in_flight.cancel()
                raise Abandoned("driftd is stopping: the call into the connector was abandoned")
        if in_flight.done():
            return in_flight.result()
        if in_flight.cancel():  # it never started: every fetch thread is taken by hung sources
            raise TimeoutError(f"no fetch thread was free within {self.timeout:g}s "
                               "(other monitors' fetches are hanging)")
        raise TimeoutError(f"fetch did not return within {self.timeout:g}s")

    def set_source_up(self, up: bool, error: BaseException | None = None) -> None:
        """Record the source's health: log the change, back off while it is down, export ``source_up``."""
        was_failing = self.backoff.failures > 0
        if up:
            self.backoff.succeeded()
            if was_failing:
                log.info("monitor %s: source %r is back", self.name, self.source_type)
        else:
            delay = self.backoff.failed()
            if not was_failing:
                log.error("monitor %s: source %r is down: %s (retrying with backoff, next in %.0fs)",
                          self.name, self.source_type, reason(error), delay)
        self.metrics.update(self.name, source_up=up)

    def close(self) -> None:
        """Close the connector (a hung fetch is left to finish on its own)."""
        try:
            self.connector.close()
        except Exception:  # noqa: BLE001
            log.exception("monitor %s: closing the connector failed", self.name)


def _count(value: object) -> int | None:
    """A connector's row count if it is a plain non-negative integer (else unknown)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds(value: object) -> float | None:
    """A connector's seconds if they are a finite non-negative number (else unknown)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None
