"""One monitor's tick: fetch → windows → divergences → policy → store → metrics → hooks."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa

from monitor.adaptation.contract import AdapterError
from monitor.backoff import Backoff
from monitor.config import MonitorConfig
from monitor.connector import Batch, Connector, ConnectorError
from monitor.divergence import Backend, MeasureRegistry, ReferenceSummary, resolve_backend
from monitor.evaluate import MeasureSetting, WindowEvaluation, evaluate_window, resolve_measures
from monitor.metrics import FeatureScore, Metrics, MonitorSnapshot
from monitor.plugins import PluginManager
from monitor.policy import STATE_CODES, DriftPolicy, max_divergence
from monitor.pushdown import (
    AggregateBatch,
    AggregatePlan,
    CountReference,
    WindowAggregate,
    evaluate_aggregate,
    pushdown_column,
    pushdown_problems,
)
from monitor.reference import (
    feature_kinds,
    read_table,
    summarize_table,
    table_from_bytes,
    table_to_bytes,
)
from monitor.store import CommittedWindow, LeaseLost, Store, StoredReference, WindowRecord
from monitor.windows import WindowSlice, split_by_rows, split_by_span

log = logging.getLogger("driftd.engine")


class MonitorError(Exception):
    """A monitor cannot run; the message names the monitor and the cause."""


class SourceDown(MonitorError):
    """The monitor's source could not be read this tick."""


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    rows_fetched: int
    windows: list[WindowRecord]
    state: str
    owned: bool = True  # False: another replica holds the monitor's lease, nothing was done


class MonitorRunner:
    """Runs the ticks of one monitor. Not thread-safe: the scheduler runs one tick at a time."""

    def __init__(self, config: MonitorConfig, store: Store, plugins: PluginManager, metrics: Metrics,
                 lease: tuple[str, float] | None = None, on_adaptation: Callable[[str], None] | None = None) -> None:
        """``lease`` (replica id, seconds): tick only while this replica holds the monitor's lease.

        ``on_adaptation(monitor)`` is called after a drift event with queued adapter runs was committed.
        """
        self.config = config
        self.on_adaptation = on_adaptation
        self.lease = lease
        self._lease_held = False
        self.name = config.name
        self.store = store
        self.plugins = plugins
        self.metrics = metrics
        self.kinds = feature_kinds(config.features)
        self.measures, self.connector = self.validate(config, plugins)
        self.pushdown_column = pushdown_column(self.connector)  # None: rows are pulled
        self._counted: CountReference | None = None
        self.backend = _backend(config)
        self._distance_measures = {s.measure.name for s in self.measures
                                   if not s.measure.is_test and s.measure.higher_is_drift}
        self.monitor_id = store.monitor_id(self.name)
        self.stop_requested = threading.Event()
        self._loaded = False
        self._last_problem: str | None = None
        self.source_backoff = Backoff()
        self.error_backoff = Backoff(cap=60.0)  # e.g. the history database is unreachable
        self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"driftd-fetch-{self.name}")
        self._fetch_in_flight: Future[Batch] | None = None
        metrics.add_monitor(self.name)
        metrics.lease_held.labels(self.name).set(0.0 if lease else 1.0)

    @staticmethod
    def validate(config: MonitorConfig, plugins: PluginManager) -> tuple[list[MeasureSetting], Connector]:
        """Resolve the measures and build the connector; MonitorError names the monitor and the cause."""
        try:
            measures = resolve_measures(config.measures, MeasureRegistry(plugins.provided["divergences"]))
        except (KeyError, ValueError, TypeError) as error:
            raise MonitorError(f"monitor {config.name!r}: measures: {error.args[0]}") from None
        _backend(config)
        _check_adaptation(config, plugins)
        try:
            connector = plugins.connector(config.source.type, config.source.options)
        except Exception as error:  # noqa: BLE001 - any plugin failure becomes a clear monitor error
            raise MonitorError(f"monitor {config.name!r}: source {config.source.type!r}: {_reason(error)}") from None
        column = pushdown_column(connector)
        problems = [] if column is None else pushdown_problems(config, measures, column)
        if problems:
            connector.close()
            raise MonitorError(f"monitor {config.name!r}: push-down source: " + "; ".join(problems))
        return measures, connector

    # ---- state held between ticks (reloaded from SQL after any failure) ------------------

    def _load(self) -> None:
        progress = self.store.load_progress(self.monitor_id, recent=self._history_needed())
        self.position = progress.position
        self.pending = table_from_bytes(progress.pending) if progress.pending else None
        self.next_seq = progress.next_seq
        self.policy = DriftPolicy.restore(self.config.drift, progress.recent)
        self.watermark = progress.last_window_end.timestamp() if progress.last_window_end else None
        self.reference: StoredReference | None = None
        self.summary: ReferenceSummary | None = None
        self.recent = RecentRows(self.config.adaptation.target_rows if self.config.adaptation else 0)
        self._loaded = True

    def _history_needed(self) -> int:
        """Windows to replay on restart: the streak, plus the sequential detector's warm-up."""
        sequential = self.config.drift.sequential
        warm_up = 0 if sequential is None else max(20, 10 * sequential.min_windows)
        # a few more than `consecutive`: windows with no verdict do not count towards the streak
        return self.config.drift.consecutive + max(20, warm_up)

    def _detector_statistic(self, evaluation: WindowEvaluation) -> float | None:
        """The value the sequential detector watches for this window (None: nothing to feed)."""
        sequential = self.config.drift.sequential
        verdicts = evaluation.feature_drifted
        if sequential is None or not verdicts:
            return None
        if sequential.statistic == "drift_share":
            return sum(verdicts.values()) / len(verdicts)
        return max_divergence(evaluation.results, self._distance_measures)

    def _refresh_reference(self) -> None:
        active = self.store.active_reference(self.monitor_id)
        if active is None and self.config.reference.path:
            table = read_table(self.config.reference.path)
            new = summarize_table(table, self.config.features, self.config.reference.bins,
                                  self.config.reference.max_rows, origin=f"file:{self.config.reference.path}",
                                  multivariate_sample=self.config.reference.multivariate_sample)
            active = self.store.add_reference(self.monitor_id, new)
            log.info("monitor %s: stored reference version %d from %s (%d rows)",
                     self.name, active.version, self.config.reference.path, active.rows)
        if active is not None and (self.reference is None or active.id != self.reference.id):
            self.reference, self.summary = active, ReferenceSummary.from_bytes(active.summary)
        elif active is None:
            self.reference, self.summary = None, None

    # ---- the tick -------------------------------------------------------------------------

    def tick(self, retry_now: bool = False) -> TickReport:
        """Fetch new rows, evaluate every complete window, and commit it all in one transaction.

        After a failure (the source, or e.g. the history database) the next ticks back off and do
        nothing, unless ``retry_now``.
        """
        if not (retry_now or self.error_backoff.ready()):
            return TickReport(0, [], self.policy.state if self._loaded else "ok")
        try:
            report = self._tick(retry_now)
        except SourceDown:
            raise
        except LeaseLost as error:
            self._loaded = self._lease_held = False
            self.metrics.lease_held.labels(self.name).set(0.0)
            log.warning("monitor %s: tick not committed: %s", self.name, error)
            return TickReport(0, [], "ok", owned=False)
        except Exception as error:
            self._loaded = False
            self.error_backoff.failed()
            self.metrics.evaluation_errors.labels(self.name).inc()
            message = str(error) if isinstance(error, MonitorError) else f"monitor {self.name!r}: {_reason(error)}"
            if message != self._last_problem:
                log.error("%s", message)
                self._last_problem = message
            raise MonitorError(message) from error
        self.error_backoff.succeeded()
        if self._last_problem is not None:
            log.info("monitor %s: recovered", self.name)
            self._last_problem = None
        return report

    def _tick(self, retry_now: bool) -> TickReport:
        if not self._own_the_monitor():
            return TickReport(0, [], "ok", owned=False)
        if not self._loaded:
            self._load()
        if not (retry_now or self.source_backoff.ready()):
            return TickReport(0, [], self.policy.state)  # the source failed recently: wait, do not hammer it
        self._refresh_reference()
        if self.reference is None and not self.config.reference.first_rows:
            raise MonitorError(f"monitor {self.name!r} has no reference: set reference.path or "
                               f"reference.first_rows, or run `driftd reference capture {self.name}`")
        if self.pushdown_column is not None and self.reference is not None:
            return self._tick_pushdown()
        batch = self._fetch()
        rows = self._combine(batch.table)
        if self.reference is None:
            return self._collect_reference(batch, rows)
        slices, remainder = self._split(rows)
        records = [self._evaluate(window) for window in slices]
        _, committed = self.store.commit_tick(
            self.monitor_id, batch.cursor, _serialise(remainder), remainder.num_rows, records, lease=self.lease)
        self.position, self.pending = batch.cursor, remainder
        if records:
            self.next_seq = records[-1].seq + 1
            if records[-1].ended_at is not None:
                self.watermark = records[-1].ended_at.timestamp()
        self._publish(records, committed)
        self._hand_back_if_over_share()
        return TickReport(batch.num_rows, records, self.policy.state)

    def _own_the_monitor(self) -> bool:
        """Take or renew the lease; state cached while another replica held it is reloaded from SQL."""
        if self.lease is None:
            return True
        held = self.store.acquire_lease(self.monitor_id, *self.lease)
        if held and not self._lease_held:
            self._loaded = False
            log.info("monitor %s: this replica (%s) now evaluates it", self.name, self.lease[0])
        self._lease_held = held
        self.metrics.lease_held.labels(self.name).set(float(held))
        if not held:
            self._forget_state()
        return held

    def _forget_state(self) -> None:
        """Drop what only the lease holder needs (reference summary, pending rows): reloaded from SQL if it returns.

        Without this a replica would keep the references of every monitor it ever held.
        """
        self._loaded = False
        self.reference = self.summary = self.pending = self._counted = None
        self.recent = RecentRows(0)

    def _hand_back_if_over_share(self) -> None:
        """After a committed tick: give the lease up when this replica holds more than its share of monitors.

        Nothing is lost: the tick is committed, and another replica takes the monitor on its next tick.
        """
        if self.lease is None:
            return
        try:
            handed_back = self.store.balance_lease(self.monitor_id, *self.lease)
        except Exception as error:  # noqa: BLE001 - the tick is committed; balancing can wait for the next one
            log.warning("monitor %s: could not check the lease balance: %s", self.name, _reason(error))
            return
        if handed_back:
            self._lease_held = False
            self._forget_state()
            self.metrics.lease_held.labels(self.name).set(0.0)
            log.info("monitor %s: handed back by this replica (%s) to balance the replicas", self.name, self.lease[0])

    def _tick_pushdown(self) -> TickReport:
        """The source counted each complete window itself: score the counts, commit them with the cursor."""
        assert self.summary is not None and self.config.window.span is not None
        if self._counted is None or self._counted.summary is not self.summary:
            self._counted = CountReference(self.summary)
        batch = self._fetch(self._counted.plan(self.kinds, self.config.window.span))
        assert isinstance(batch, AggregateBatch)
        records = [self._evaluate(window) for window in batch.windows]
        _, committed = self.store.commit_tick(self.monitor_id, batch.cursor, None, 0, records, lease=self.lease)
        self.position, self.pending = batch.cursor, None
        if records:
            self.next_seq = records[-1].seq + 1
        self._publish(records, committed)
        return TickReport(batch.num_rows, records, self.policy.state)

    def _fetch(self, plan: AggregatePlan | None = None) -> Batch | AggregateBatch:
        """``connector.fetch``, or with ``plan`` the push-down ``connector.aggregate``; SourceDown on failure."""
        started = time.perf_counter()
        expected = Batch if plan is None else AggregateBatch
        try:
            batch = self._fetch_within_timeout(plan)
            if not isinstance(batch, expected):
                call = "fetch()" if plan is None else "aggregate()"
                raise TypeError(f"{call} returned {type(batch).__name__}, expected a {expected.__name__}")
        except Exception as error:  # noqa: BLE001 - any connector failure is a source outage
            self.metrics.source_errors.labels(self.name).inc()
            self._set_source_up(False, error)
            raise SourceDown(f"monitor {self.name!r}: source {self.config.source.type!r}: {_reason(error)}") from error
        finally:
            self.metrics.poll_seconds.labels(self.name).observe(time.perf_counter() - started)
        self._set_source_up(True)
        return batch

    def _fetch_within_timeout(self, plan: AggregatePlan | None = None) -> Batch | AggregateBatch:
        """``connector.fetch`` on the monitor's fetch thread, given up after ``fetch_timeout``.

        A fetch that hangs keeps its thread; until it returns, later ticks fail fast instead of
        stacking more threads on a stuck source.
        """
        timeout = self.config.fetch_timeout
        if self._fetch_in_flight is not None and not self._fetch_in_flight.done():
            raise TimeoutError(f"an earlier fetch has not returned yet (timeout {timeout:g}s)")
        if plan is None:
            max_rows = self.config.max_rows
            if self.pushdown_column is not None and self.config.reference.first_rows:
                # push-down pulls only its first_rows reference: no row past it, as none would be evaluated
                have = self.pending.num_rows if self.pending is not None else 0
                max_rows = max(1, min(max_rows, self.config.reference.first_rows - have))
            self._fetch_in_flight = self._fetcher.submit(self.connector.fetch, self.position, max_rows)
        else:
            self._fetch_in_flight = self._fetcher.submit(self.connector.aggregate,  # type: ignore[attr-defined]
                                                         self.position, plan)
        try:
            return self._fetch_in_flight.result(timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"fetch did not return within {timeout:g}s") from None

    def _set_source_up(self, up: bool, error: BaseException | None = None) -> None:
        was_failing = self.source_backoff.failures > 0
        if up:
            self.source_backoff.succeeded()
            if was_failing:
                log.info("monitor %s: source %r is back", self.name, self.config.source.type)
        else:
            delay = self.source_backoff.failed()
            if not was_failing:
                log.error("monitor %s: source %r is down: %s (retrying with backoff, next in %.0fs)",
                          self.name, self.config.source.type, _reason(error), delay)
        snapshot = self.metrics.snapshot(self.name)
        if snapshot.source_up != up:
            self.metrics.publish(self.name, _replace(snapshot, source_up=up))

    def _combine(self, table: pa.Table) -> pa.Table:
        wanted = [*self.kinds, *([self.config.window.timestamp] if self.config.window.timestamp else []),
                  *([self.config.model.label] if self.config.model and self.config.model.label else [])]
        present = [name for name in wanted if name in table.column_names]
        if table.num_rows and not present:
            raise MonitorError(f"monitor {self.name!r}: none of the configured columns {wanted} are in the "
                               f"source (it has {table.column_names})")
        table = table.select(present)
        if self.pending is None or self.pending.num_rows == 0:
            return table
        if table.num_rows == 0:
            return self.pending
        try:
            return pa.concat_tables([self.pending, table], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise MonitorError(f"monitor {self.name!r}: the source changed a column's type: {error}") from None

    def _collect_reference(self, batch: Batch, rows: pa.Table) -> TickReport:
        wanted = self.config.reference.first_rows
        assert wanted is not None
        if rows.num_rows < wanted:
            self.store.commit_tick(self.monitor_id, batch.cursor, _serialise(rows), rows.num_rows, [], lease=self.lease)
            self.position, self.pending = batch.cursor, rows
            return TickReport(batch.num_rows, [], self.policy.state)
        new = summarize_table(rows.slice(0, wanted), self.config.features, self.config.reference.bins,
                              self.config.reference.max_rows, origin=f"first {wanted} rows",
                              multivariate_sample=self.config.reference.multivariate_sample)
        remainder = rows.slice(wanted)
        stored, _ = self.store.commit_tick(self.monitor_id, batch.cursor, _serialise(remainder),
                                           remainder.num_rows, [], reference=new, lease=self.lease)
        self.position, self.pending = batch.cursor, remainder
        self.reference, self.summary = stored, ReferenceSummary.from_bytes(new.summary)
        log.info("monitor %s: stored reference version %d from the first %d rows", self.name, stored.version, wanted)
        self._publish([], [])
        return TickReport(batch.num_rows, [], self.policy.state)

    def _split(self, rows: pa.Table) -> tuple[list[WindowSlice], pa.Table]:
        window = self.config.window
        if window.rows is not None:
            return split_by_rows(rows, window.rows, window.timestamp)
        assert window.span is not None and window.timestamp is not None
        if rows.num_rows and window.timestamp not in rows.column_names:
            raise MonitorError(f"monitor {self.name!r}: timestamp column {window.timestamp!r} is missing")
        return split_by_span(rows, window.timestamp, window.span, self.watermark)

    def _evaluate(self, window: WindowSlice | WindowAggregate) -> WindowRecord:
        assert self.reference is not None and self.summary is not None
        started = time.perf_counter()
        seq = self.next_seq
        self.next_seq += 1
        if isinstance(window, WindowAggregate):  # push-down: the source's counts, no rows
            assert self._counted is not None
            evaluation = evaluate_aggregate(window, self.kinds, self._counted, self.measures,
                                            self.config.drift.correction, backend=self.backend,
                                            min_rows=self.config.drift.min_rows)
            rows = window.rows
        else:
            evaluation = evaluate_window(window.rows, self.kinds, self.summary, self.measures,
                                         self.config.drift.correction, backend=self.backend,
                                         min_rows=self.config.drift.min_rows)
            rows = window.rows.num_rows
            self.recent.add(window.rows)
        for feature, reason in evaluation.missing.items():
            log.warning("monitor %s window %d: feature %r not measured: %s", self.name, seq, feature, reason)
        for measure, reason in evaluation.failed_measures.items():
            log.error("monitor %s window %d: measure %r failed: %s", self.name, seq, measure, reason)
        statistic = self._detector_statistic(evaluation)
        decision = self.policy.decide(evaluation.feature_drifted, statistic, evaluation.multivariate_drift)
        if decision.detector_fired:
            log.warning("monitor %s window %d: the sequential detector saw the %s creep up", self.name, seq,
                        self.config.drift.sequential.statistic if self.config.drift.sequential else "statistic")
        self.metrics.evaluation_seconds.labels(self.name).observe(time.perf_counter() - started)
        adaptation = self.config.adaptation
        queue = decision.starts_event and adaptation is not None
        return WindowRecord(
            seq=seq, reference_id=self.reference.id, rows=rows,
            started_at=window.started_at, ended_at=window.ended_at, state=decision.state,
            drift_share=decision.drift_share, drifted_features=decision.drifted_features,
            missing_features=sorted(evaluation.missing), results=evaluation.results,
            starts_event=decision.starts_event, statistic=statistic,
            target_sample=self.recent.serialised() if queue else None,
            adapters=tuple((a.label, a.type) for a in adaptation.adapters) if queue and adaptation else (),
        )

    # ---- after the commit -----------------------------------------------------------------

    def _publish(self, records: list[WindowRecord], committed: list[CommittedWindow]) -> None:
        snapshot = self.metrics.snapshot(self.name)
        reference_version = self.reference.version if self.reference else None
        if not records:
            if snapshot.reference_version != reference_version:
                self.metrics.publish(self.name, _replace(snapshot, reference_version=reference_version))
            return
        last = records[-1]
        self.metrics.publish(self.name, MonitorSnapshot(
            state_code=STATE_CODES[last.state], drift_share=last.drift_share,
            last_window_timestamp=time.time(), reference_version=reference_version,
            source_up=snapshot.source_up,
            scores=[FeatureScore(r.feature, r.measure, r.value, r.p_value, r.drifted) for r in last.results],
            feature_drifted={name: name in last.drifted_features
                             for name in self.kinds if name not in last.missing_features},
            features=list(self.kinds), missing_features=frozenset(last.missing_features),
        ))
        for record, ids in zip(records, committed):
            self.metrics.windows.labels(self.name).inc()
            self.metrics.rows.labels(self.name).inc(record.rows)
            self.plugins.call_event("driftd_window_evaluated", monitor=self.name, window=_window_event(record))
            if ids.event_id is not None:
                self.metrics.drift_events.labels(self.name).inc()
                log.warning("monitor %s: DRIFT in window %d (%.0f%% of features: %s)", self.name, record.seq,
                            100 * record.drift_share, ", ".join(record.drifted_features))
                self.plugins.call_event("driftd_drift_detected", monitor=self.name, event={
                    "id": ids.event_id, "window_seq": record.seq, "drift_share": record.drift_share,
                    "features": list(record.drifted_features)})
                if record.adapters and self.on_adaptation is not None:
                    self.on_adaptation(self.name)

    def close(self) -> None:
        """Close the connector and its fetch thread (a hung fetch is left to finish on its own)."""
        self._fetcher.shutdown(wait=False, cancel_futures=True)
        try:
            self.connector.close()
        except Exception:  # noqa: BLE001
            log.exception("monitor %s: closing the connector failed", self.name)


def _backend(config: MonitorConfig) -> Backend:
    """The monitor's compute backend; MonitorError when it cannot be had (e.g. torch missing)."""
    try:
        return resolve_backend(config.backend.name, config.backend.device, config.backend.dtype)
    except (ImportError, ValueError, RuntimeError) as error:
        raise MonitorError(f"monitor {config.name!r}: backend: {error}") from None


class RecentRows:
    """The last ``limit`` rows of evaluated windows: the target domain an adaptation works on."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tables: list[pa.Table] = []
        self._rows = 0

    def add(self, table: pa.Table) -> None:
        """Keep a window's rows, dropping the oldest beyond the limit."""
        if self.limit <= 0 or table.num_rows == 0:
            return
        self._tables.append(table)
        self._rows += table.num_rows
        while self._rows - self._tables[0].num_rows >= self.limit:
            self._rows -= self._tables.pop(0).num_rows

    def serialised(self) -> bytes | None:
        """The kept rows (at most ``limit``, the newest) as Arrow IPC."""
        if not self._tables:
            return None
        table = pa.concat_tables(self._tables, promote_options="permissive")
        return table_to_bytes(table.slice(max(0, table.num_rows - self.limit)))


def _check_adaptation(config: MonitorConfig, plugins: PluginManager) -> None:
    """Every adapter type is installed and accepts its options, and the model loader exists."""
    if config.model is not None and config.model.loader not in plugins.provided["model_loaders"]:
        known = ", ".join(sorted(plugins.provided["model_loaders"])) or "none"
        raise MonitorError(f"monitor {config.name!r}: model.loader {config.model.loader!r} is not installed "
                           f"(installed: {known})")
    for adapter in config.adaptation.adapters if config.adaptation else []:
        cls = plugins.provided["adapters"].get(adapter.type)
        if cls is None:
            known = ", ".join(sorted(plugins.provided["adapters"])) or "none"
            raise MonitorError(f"monitor {config.name!r}: adaptation: unknown adapter type {adapter.type!r} "
                               f"(installed: {known})")
        try:
            cls(adapter.options)
        except Exception as error:  # noqa: BLE001 - a plugin's complaint about its options, by name
            raise MonitorError(f"monitor {config.name!r}: adaptation: adapter {adapter.label!r}: "
                               f"{_reason(error)}") from None


def _window_event(record: WindowRecord) -> dict[str, Any]:
    return {
        "seq": record.seq, "rows": record.rows, "state": record.state, "drift_share": record.drift_share,
        "drifted_features": list(record.drifted_features), "missing_features": list(record.missing_features),
        "results": [vars(result).copy() for result in record.results],
    }


def _serialise(table: pa.Table) -> bytes | None:
    return table_to_bytes(table) if table.num_rows else None


def _replace(snapshot: MonitorSnapshot, **changes: Any) -> MonitorSnapshot:
    return MonitorSnapshot(**{**vars(snapshot), **changes})


def _reason(error: BaseException | None) -> str:
    """A one-line cause: our own errors as they are, others with their type."""
    if error is None:
        return "unknown error"
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, (MonitorError, ConnectorError, AdapterError)):
        return str(error)
    return f"{type(error).__name__}: {error}"
