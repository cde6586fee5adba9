"""One monitor's tick: fetch → windows → divergences → policy → ONE transaction → acknowledge → metrics → hooks.

``MonitorRunner.tick`` reads top to bottom; its collaborators each do one job: ``LeaseKeeper``
(which replica evaluates the monitor), ``Fetcher`` (the source, within a timeout, with backoff),
``PendingRows`` (rows waiting for a complete window), the domain's ``evaluate_window`` and
``DriftPolicy``, the store's ``commit_tick`` and, after the commit, ``Fetcher.commit`` (the source
learns which cursor is committed) and ``Publisher``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Callable

import pyarrow as pa

from monitor.config import MonitorConfig
from monitor.connector import (
    AggregateBatch,
    Batch,
    Connector,
    WindowAggregate,
    pushdown_column,
)
from monitor.daemon.backoff import Backoff
from monitor.daemon.building import monitor_backend, resolve_monitor, validate_monitor
from monitor.daemon.explaining import explain, segment_outcomes
from monitor.daemon.errors import MonitorError, SourceDown, reason
from monitor.daemon.fetching import Fetcher
from monitor.daemon.labels import label_joiner
from monitor.daemon.leasing import LeaseKeeper
from monitor.daemon.forcing import ForcedRuns
from monitor.daemon.notifying import hook_routes
from monitor.daemon.performance import PerformanceWatch, raised_state
from monitor.daemon.publishing import Publisher
from monitor.daemon.summaries import HoldsSummary, SummaryBudget
from monitor.daemon.windowing import PendingRows, RecentRows, serialised
from monitor.domain.coverage import unvoted_features
from monitor.domain.evaluate import (
    WindowEvaluation,
    evaluate_window,
)
from monitor.domain.events import Routes
from monitor.domain.policy import STATE_CODES, DriftPolicy, max_divergence
from monitor.domain.pushdown import (
    CountReference,
    evaluate_aggregate,
)
from monitor.domain.quality import check_quality
from monitor.domain.records import NewReference, WindowRecord
from monitor.domain.reference import feature_kinds, reference_from_file, summarize_table
from monitor.domain.thresholds import CalibrationMissing, auto_measures, bind_auto_thresholds
from monitor.domain.windows import WindowSlice
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.store import UNCHANGED, LeaseLost, Store, StoredReference

__all__ = ["Backfill", "MonitorError", "MonitorRunner", "SourceDown", "TickReport"]

log = logging.getLogger("driftd.engine")


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    rows_fetched: int
    windows: list[WindowRecord]
    state: str
    owned: bool = True  # False: another replica holds the monitor's lease, nothing was done


@dataclass(frozen=True)
class Backfill:
    """What a backfill stored: its windows, the drift events they started, the rows left after the last one."""

    windows: list[WindowRecord]
    events: int
    rows_left: int
    reference_version: int


class MonitorRunner(HoldsSummary):
    """Runs the ticks of one monitor. Not thread-safe: the scheduler runs one tick at a time."""

    def __init__(self, config: MonitorConfig, store: Store, plugins: PluginManager, metrics: Metrics,
                 lease: tuple[str, float] | None = None, on_adaptation: Callable[[str], None] | None = None,
                 fetch_pool: Executor | None = None, routes: Callable[[], Routes] | None = None,
                 on_events: Callable[[], None] | None = None, connector: Connector | None = None,
                 summaries: SummaryBudget | None = None) -> None:
        """``lease`` (replica id, seconds): tick only while this replica holds the monitor's lease.

        ``on_adaptation(monitor)`` is called after a drift event with queued adapter runs was committed;
        fetches run on ``fetch_pool`` (the daemon's one pool; a process-wide default without it).
        ``routes()`` says where the monitor's events go (default: the plugins' event hooks); they are
        written to the outbox in the tick's transaction, and ``on_events()`` is called after such a commit.
        ``connector`` replaces the configured source (a backfill reads a file, not the source).
        ``summaries``: the budget its decoded reference summary competes for (default: no limit); without
        room the summary is decoded at each tick and dropped after it.
        """
        self.config = config
        self.name = config.name
        self.store = store
        self.metrics = metrics
        self.kinds = feature_kinds(config.features)
        self._plugins = plugins
        if connector is None:
            self.measures, connector = self.validate(config, plugins)
        else:
            self.measures = self.resolve(config, plugins)
        self.pushdown_column = pushdown_column(connector)  # None: rows are pulled
        self.backend = monitor_backend(config)
        self._distance_measures = {s.measure.name for s in self.measures
                                   if not s.measure.is_test and s.measure.higher_is_drift}
        self.monitor_id = store.monitor_id(self.name)
        metrics.add_monitor(self.name)
        metrics.measures(self.name, [setting.measure.name for setting in self.measures])
        for line in unvoted_features(config, self.measures):
            log.warning("%s", line)
        self.performance = (PerformanceWatch(config, plugins.provided["model_loaders"])
                            if config.performance is not None else None)
        self.labels = label_joiner(config, self.monitor_id, plugins, store, self.performance, metrics)
        self.fetcher = Fetcher(self.name, config.source.type, connector, config.fetch_timeout, metrics, fetch_pool)
        self.leases = LeaseKeeper(self.name, self.monitor_id, store, metrics, lease)
        self.publisher = Publisher(self.name, list(self.kinds), metrics, plugins, on_adaptation)
        self.forced = ForcedRuns(self.name, config, on_adaptation)
        self.error_backoff = Backoff(cap=60.0)  # e.g. the history database is unreachable
        hooks = Routes(hook_routes(plugins))
        self._routes = routes or (lambda: hooks)
        self._on_events = on_events
        self._counted: CountReference | None = None
        self._summaries = summaries or SummaryBudget(None)
        self._kept = False  # whether the summary stays in memory after the tick
        self._loaded = False
        self._last_problem: str | None = None
        #: Why the latest tick failed (the source or the evaluation); None after a good one.
        self.problem: str | None = None

    #: Building a monitor's parts, with clear errors (``monitor.daemon.building``).
    resolve = staticmethod(resolve_monitor)
    validate = staticmethod(validate_monitor)

    @property
    def connector(self) -> Connector:
        """The monitor's source."""
        return self.fetcher.connector

    @connector.setter
    def connector(self, connector: Connector) -> None:
        self.fetcher.connector = connector

    @property
    def lease(self) -> tuple[str, float] | None:
        """(replica id, seconds) when replicas share the monitors; None on a single replica."""
        return self.leases.lease

    @property
    def owned(self) -> bool:
        """Whether this replica evaluates the monitor now."""
        return self.leases.held

    # ---- state held between ticks (reloaded from SQL after any failure) ------------------

    def _load(self) -> None:
        progress = self.store.load_progress(self.monitor_id, recent=self._history_needed())
        self.position = progress.position
        self.pending = PendingRows(self.config, progress.pending, progress.last_window_end)
        self.next_seq = progress.next_seq
        self.fetcher.commit(self.position, again=True)  # a start-up: acknowledge what an earlier run committed
        self.policy = DriftPolicy.restore(self.config.drift, progress.recent)
        self.last_state = self.policy.state  # the latest window's state, performance alerts included
        self.reference: StoredReference | None = None
        self._hold(None)
        self.active_measures = self.measures
        self.recent = RecentRows(self.config.adaptation.target_rows if self.config.adaptation else 0)
        self._loaded = True

    def _forget_state(self) -> None:
        """Drop what only the lease holder needs (reference summary, pending rows): reloaded from SQL if it returns.

        Without this a replica would keep the references of every monitor it ever held.
        """
        self._loaded = False
        self.reference = self.pending = None  # type: ignore[assignment]
        self._hold(None)
        self.recent = RecentRows(0)
        self._release_source()

    def _release_source(self) -> None:
        """An acknowledging source gives back what it holds for this replica (another one evaluates the monitor).

        Closing it is what returns unacknowledged messages to the queue; a new connector (not yet
        connected) takes its place in case the lease comes back.
        """
        if not (self.fetcher.used and getattr(self.connector, "acknowledges", False)):
            return
        self.fetcher.close()
        self.fetcher.used = False
        try:
            self.connector = self._plugins.connector(self.config.source.type, self.config.source.options)
        except Exception as error:  # noqa: BLE001 - it was built from the same options before; keep the closed one
            log.error("monitor %s: rebuilding the source after handing it back failed: %s", self.name, reason(error))

    def _history_needed(self) -> int:
        """Windows to replay on restart: the streak, plus the sequential detector's warm-up."""
        sequential = self.config.drift.sequential
        warm_up = 0 if sequential is None else max(20, 10 * sequential.min_windows)
        # a few more than `consecutive`: windows with no verdict do not count towards the streak
        return self.config.drift.consecutive + max(20, warm_up)

    def _refresh_reference(self) -> None:
        active = self.store.active_reference(self.monitor_id, summary=False)
        if active is None and self.config.reference.path:
            new = reference_from_file(self.config.reference.path, self.config.features, self.config.reference)
            active = self.store.add_reference(self.monitor_id, new)
            log.info("monitor %s: stored reference version %d from %s (%d rows)",
                     self.name, active.version, self.config.reference.path, active.rows)
        if active is not None and (self.reference is None or active.id != self.reference.id or self.summary is None):
            self._hold(self._decoded(active.summary or self.store.reference_summary(active.id)))
        elif active is None and self.summary is not None:
            self._hold(None)
        self.reference = active and replace(active, summary=b"")  # decoded above; its calibration may be new
        self._bind_thresholds()

    def _bind_thresholds(self) -> None:
        """Bind the ``threshold: auto`` measures to the active reference version's calibration."""
        if self.reference is None or not auto_measures(self.measures):
            self.active_measures = self.measures
            return
        try:
            self.active_measures = bind_auto_thresholds(self.measures, self.reference.calibration,
                                                        self.reference.version, self.config.window, self.kinds,
                                                        self.name)
        except CalibrationMissing as error:
            raise MonitorError(str(error)) from None

    # ---- the tick -------------------------------------------------------------------------

    def tick(self, retry_now: bool = False) -> TickReport:
        """Fetch new rows, evaluate every complete window, and commit it all in one transaction.

        After a failure (the source, or e.g. the history database) the next ticks back off and do
        nothing, unless ``retry_now``.
        """
        if not (retry_now or self.error_backoff.ready()):
            return TickReport(0, [], self.last_state if self._loaded else "ok")
        try:
            report = self._tick(retry_now)
        except SourceDown as error:
            self._set_problem(str(error))  # the fetcher logged it, once per change of state
            raise
        except LeaseLost as error:
            self._loaded = False
            self.leases.lost()
            log.warning("monitor %s: tick not committed: %s", self.name, error)
            return TickReport(0, [], "ok", owned=False)
        except Exception as error:
            self._loaded = False
            self.error_backoff.failed()
            self.metrics.evaluation_errors.labels(self.name).inc()
            message = str(error) if isinstance(error, MonitorError) else f"monitor {self.name!r}: {reason(error)}"
            if message != self._last_problem:
                log.error("%s", message)
                self._last_problem = message
            self._set_problem(message)
            raise MonitorError(message) from error
        finally:
            self._drop_unkept()
        self.error_backoff.succeeded()
        report = self._with_realized_state(report)
        if self._last_problem is not None:
            log.info("monitor %s: recovered", self.name)
            self._last_problem = None
        self._set_problem(None)
        return report

    def _with_realized_state(self, report: TickReport) -> TickReport:
        """The tick's state raised by a realized drop (``performance.alert.realized``), in the report and
        ``driftd_state``: the latest window whose labels arrived keeps it raised until a later one has none."""
        if self.labels is None or not report.owned:
            return report
        state = max(report.state, self.labels.state, key=STATE_CODES.__getitem__)
        self.metrics.update(self.name, state_code=STATE_CODES[state])
        return report if state == report.state else replace(report, state=state)

    def _set_problem(self, message: str | None) -> None:
        """Show why the monitor cannot evaluate now (None: it can) in the API and ``driftd_monitor_error``."""
        self.problem = message
        self.metrics.update(self.name, error=message)

    def _tick(self, retry_now: bool) -> TickReport:
        held, newly_taken = self.leases.take()
        if not held:
            self._forget_state()
            return TickReport(0, [], "ok", owned=False)
        if newly_taken or not self._loaded:
            self._load()
        if not (retry_now or self.fetcher.backoff.ready()):
            return TickReport(0, [], self.last_state)  # the source failed recently: wait, do not hammer it
        self._refresh_reference()
        if self.reference is None and not self.config.reference.first_rows:
            raise MonitorError(f"monitor {self.name!r} has no reference: set reference.path or "
                               f"reference.first_rows, or run `driftd reference capture {self.name}`")
        if self.pushdown_column is not None and self.reference is not None:
            return self._tick_pushdown()
        batch = self.fetcher.fetch(self.position, self._max_rows())
        rows = self.pending.combine(batch.table)
        if self.reference is None:
            return self._collect_reference(batch, rows)
        slices, remainder = self.pending.split(rows)
        records = [self._evaluate(window) for window in slices]
        forced = self.forced.for_tick(self.recent)
        pending = serialised(remainder) if batch.num_rows or slices else UNCHANGED  # idle: not written again
        _, committed = self.store.commit_tick(self.monitor_id, batch.cursor, pending, remainder.num_rows, records,
                                              lease=self.lease, routes=self._routes(), forced=forced)
        self._advance(batch.cursor, records, remainder)
        self._announced(records)
        self.forced.committed(forced)
        self.fetcher.commit(batch.cursor)
        self.publisher.invalid_values(self.pending.take_invalid())
        self.publisher.published(records, committed, self.reference.version)
        if self.labels is not None:
            self.labels.join(self.reference.id, self.lease, self._routes())
        if self.leases.hand_back_if_over_share():
            self._forget_state()
        return TickReport(batch.num_rows, records, self.last_state)

    def _announced(self, records: list[WindowRecord]) -> None:
        """Events were committed to the outbox: wake whoever delivers them."""
        if records and self._on_events is not None:
            self._on_events()

    def _max_rows(self) -> int:
        if self.pushdown_column is not None and self.config.reference.first_rows:
            # push-down pulls only its first_rows reference: no row past it, as none would be evaluated
            return max(1, min(self.config.max_rows, self.config.reference.first_rows - self.pending.num_rows))
        return self.config.max_rows

    def _advance(self, cursor: object, records: list[WindowRecord], remainder: pa.Table | None) -> None:
        """After the commit: the cursor, the waiting rows and the next window number move on."""
        self.position = cursor
        self.pending.committed(remainder, records[-1].ended_at if records else None)
        if records:
            self.next_seq = records[-1].seq + 1

    def _tick_pushdown(self) -> TickReport:
        """The source counted each complete window itself: score the counts, commit them with the cursor."""
        assert self.summary is not None and self.reference is not None and self.config.window.span is not None
        if self._counted is None or self._counted.summary is not self.summary:
            self._counted = CountReference(self.summary)
        batch: AggregateBatch = self.fetcher.aggregate(self.position, self._counted.plan(self.kinds,
                                                                                          self.config.window.span))
        records = [self._evaluate(window) for window in batch.windows]
        _, committed = self.store.commit_tick(self.monitor_id, batch.cursor, None, 0, records, lease=self.lease,
                                              routes=self._routes())
        self.position = batch.cursor
        self.fetcher.commit(batch.cursor)
        self.pending.committed(None)
        if records:
            self.next_seq = records[-1].seq + 1
        self._announced(records)
        self.publisher.published(records, committed, self.reference.version)
        return TickReport(batch.num_rows, records, self.last_state)

    def _collect_reference(self, batch: Batch, rows: pa.Table) -> TickReport:
        wanted = self.config.reference.first_rows
        assert wanted is not None
        if rows.num_rows < wanted:
            self.store.commit_tick(self.monitor_id, batch.cursor, serialised(rows), rows.num_rows, [],
                                   lease=self.lease)
            self._advance(batch.cursor, [], rows)
            self.fetcher.commit(batch.cursor)
            self.publisher.invalid_values(self.pending.take_invalid())
            return TickReport(batch.num_rows, [], self.last_state)
        new = summarize_table(rows.slice(0, wanted), self.config.features, self.config.reference.bins,
                              self.config.reference.max_rows, origin=f"first {wanted} rows",
                              multivariate_sample=self.config.reference.multivariate_sample)
        remainder = rows.slice(wanted)
        stored, _ = self.store.commit_tick(self.monitor_id, batch.cursor, serialised(remainder),
                                           remainder.num_rows, [], reference=new, lease=self.lease)
        assert stored is not None
        self._advance(batch.cursor, [], remainder)
        self.fetcher.commit(batch.cursor)
        self.publisher.invalid_values(self.pending.take_invalid())
        self.reference = replace(stored, summary=b"")  # the runner keeps the decoded form, not the bytes too
        self._hold(self._decoded(new.summary))
        log.info("monitor %s: stored reference version %d from the first %d rows", self.name, stored.version, wanted)
        if auto_measures(self.measures):
            log.warning("monitor %s: measure(s) %s have threshold: auto: no window is evaluated until "
                        "`driftd calibrate %s --from FILE` stores a calibration with reference version %d",
                        self.name, ", ".join(auto_measures(self.measures)), self.name, stored.version)
        self.publisher.published([], [], stored.version)
        return TickReport(batch.num_rows, [], self.last_state)

    def evaluate_history(self, rows: pa.Table, progress: Callable[[int, int], None] | None = None,
                         reference: NewReference | None = None) -> Backfill:
        """Backfill: evaluate ``rows`` of the past window by window with this monitor's own rules (windows,
        reference, measures, policy) and store the windows with their own times, all in ONE transaction.

        The source's cursor and its waiting rows are left as they are: the daemon then reads the live
        source as before. Needs ``reference`` (stored as the active version once the monitor is found
        free), an active reference or ``reference.path``, and a monitor without windows yet (its
        windows are numbered from 1). ``progress(done, total)`` is called as windows are evaluated.
        No adaptation is queued for the past.
        """
        held, _ = self.leases.take()
        if not held:
            raise MonitorError(f"monitor {self.name!r} is evaluated by a running replica now: stop it (or set "
                               "enabled: false and reload) before a backfill")
        self._load()
        if self.next_seq != 1:
            raise MonitorError(f"monitor {self.name!r} already has {self.next_seq - 1} or more windows: a backfill "
                               "fills an empty history (use a new monitor name or a new database)")
        if reference is not None:
            self.store.add_reference(self.monitor_id, reference, activate=True)
        self._refresh_reference()
        if self.reference is None:
            raise MonitorError(f"monitor {self.name!r} has no reference for the backfill: pass --reference-rows or "
                               "--reference-until, or set reference.path")
        history = PendingRows(self.config)  # not the live source's waiting rows
        windows, remainder = history.split(history.combine(rows))
        records = []
        for done, window in enumerate(windows, start=1):
            records.append(self._evaluate(window, queue_adaptation=False))
            if progress is not None:
                progress(done, len(windows))
        committed = self.store.commit_windows(self.monitor_id, records, lease=self.lease)
        return Backfill(records, sum(1 for window in committed if window.event_id is not None), remainder.num_rows,
                        self.reference.version)

    def _evaluate(self, window: WindowSlice | WindowAggregate, queue_adaptation: bool = True) -> WindowRecord:
        assert self.reference is not None and self.summary is not None
        started = time.perf_counter()
        seq = self.next_seq
        self.next_seq += 1
        diagnoses: list[dict[str, object]] = []
        segments: list[dict[str, object]] = []
        if isinstance(window, WindowAggregate):  # push-down: the source's counts, no rows
            assert self._counted is not None
            evaluation = evaluate_aggregate(window, self.kinds, self._counted, self.active_measures,
                                            self.config.drift.correction, backend=self.backend,
                                            min_rows=self.config.drift.min_rows)
            rows = window.rows
        else:
            evaluation = evaluate_window(window.rows, self.kinds, self.summary, self.active_measures,
                                         self.config.drift.correction, backend=self.backend,
                                         min_rows=self.config.drift.min_rows, keep_windows=self.config.explain.enabled)
            evaluation = check_quality(window.rows, self.kinds, self.summary, self.config.quality, evaluation,
                                       self.config.drift.correction, self.config.drift.min_rows, window.invalid)
            rows = window.rows.num_rows
            self.recent.add(window.rows)
            diagnoses = explain(self.config, window.rows, self.kinds, self.summary, evaluation, seq, window.invalid)
            segments = segment_outcomes(self.config, window.rows, self.kinds, self.summary, self.active_measures,
                                        self.backend, seq)
        for feature, why in evaluation.missing.items():
            log.warning("monitor %s window %d: feature %r not measured: %s", self.name, seq, feature, why)
        for measure, why in evaluation.failed_measures.items():
            log.error("monitor %s window %d: measure %r failed: %s", self.name, seq, measure, why)
        statistic = self._detector_statistic(evaluation)
        decision = self.policy.decide(evaluation.feature_drifted, statistic, evaluation.multivariate_drift)
        performance, outputs = (self.performance.estimate(window.rows, self.reference.id, seq, diagnoses)
                                if self.performance is not None and isinstance(window, WindowSlice) else (None, None))
        decision = raised_state(decision, performance, self.config.performance, self.last_state)
        self.last_state = decision.state
        if decision.detector_fired:
            log.warning("monitor %s window %d: the sequential detector saw the %s creep up", self.name, seq,
                        self.config.drift.sequential.statistic if self.config.drift.sequential else "statistic")
        self.metrics.evaluation_seconds.labels(self.name).observe(time.perf_counter() - started)
        adaptation = self.config.adaptation
        queue = queue_adaptation and decision.starts_event and adaptation is not None
        return WindowRecord(
            seq=seq, reference_id=self.reference.id, rows=rows,
            started_at=window.started_at, ended_at=window.ended_at, state=decision.state,
            drift_share=decision.drift_share, drifted_features=decision.drifted_features,
            missing_features=sorted(evaluation.missing), results=evaluation.results,
            starts_event=decision.starts_event, statistic=statistic, failed_measures=evaluation.failed_measures,
            target_sample=self.recent.serialised() if queue else None,
            adapters=tuple((a.label, a.type) for a in adaptation.adapters) if queue and adaptation else (),
            diagnoses=diagnoses, segments=segments, performance=performance, performance_outputs=outputs,
        )

    def _detector_statistic(self, evaluation: WindowEvaluation) -> float | None:
        """The value the sequential detector watches for this window (None: nothing to feed)."""
        sequential = self.config.drift.sequential
        verdicts = evaluation.feature_drifted
        if sequential is None or not verdicts:
            return None
        if sequential.statistic == "drift_share":
            return sum(verdicts.values()) / len(verdicts)
        return max_divergence(evaluation.results, self._distance_measures)

    def close(self) -> None:
        """Close the connector (a hung fetch is left to finish on its own) and give back the summary's budget."""
        self._summaries.release(self.name)
        self.fetcher.close()

