"""One drift event's adaptation: run each queued adapter (with its timeout), judge, promote, record."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa

from monitor.adaptation.contract import (
    AdaptationCancelled,
    AdaptationContext,
    AdaptationResult,
    AdapterError,
    Domain,
    DriftInfo,
)
from monitor.adaptation.gate import GateDecision, GateSplit, split_for_gate
from monitor.adaptation.model import Model, ModelLoadError, is_regressor
from monitor.adaptation.session import adapter_context, gate
from monitor.config import AdapterConfig, MonitorConfig
from monitor.daemon.model_versions import ModelStore, point_current
from monitor.domain.events import NO_ROUTES, Routes
from monitor.domain.reference import read_table, summarize_table, table_from_bytes
from monitor.metrics import Metrics
from monitor.store import AdaptationRow, Store, StoreError
from monitor.store.adaptations import AdaptationRecords, QueuedEvent
from monitor.store.crashpoints import crash_point

log = logging.getLogger("driftd.adaptation")


class AdaptationSetupError(Exception):
    """The event cannot be adapted at all (no rows, no model, unreadable training data)."""


@dataclass
class Attempt:
    """What one adapter run produced: a result, or why it did not."""

    run: AdaptationRow
    config: AdapterConfig
    result: AdaptationResult | None = None
    error: str | None = None
    seconds: float = 0.0


class EventAdaptation:
    """Runs the pending adapters of one drift event of one monitor, in order, one at a time."""

    def __init__(self, config: MonitorConfig, store: Store, records: AdaptationRecords, models: ModelStore,
                 adapters: Mapping[str, type], metrics: Metrics, replica: str, cancelled: threading.Event,
                 routes: Callable[[str], Routes] = lambda monitor: NO_ROUTES) -> None:
        self.config = config
        self.store = store
        self.records = records
        self.models = models
        self.adapter_classes = adapters
        self.metrics = metrics
        self.replica = replica
        self.cancelled = cancelled
        self.routes = routes
        assert config.adaptation is not None
        self.settings = config.adaptation

    def run(self, event: QueuedEvent) -> None:
        """Adapt to ``event``; every run ends in a final state with its reason, whatever happens."""
        name = self.config.name
        attempts = [Attempt(run, self._adapter_config(run)) for run in event.runs]
        try:
            target_table = _target_table(event)
            champion, version = self._champion()
            source, target = self._domains(target_table, champion)
        except (AdaptationSetupError, ModelLoadError, OSError, ValueError) as error:
            for attempt in attempts:
                self._finish(attempt, "failed", f"cannot adapt: {error}")
            log.error("monitor %s: drift event %d cannot be adapted: %s", name, event.id, error)
            return
        stratify = champion is None or not is_regressor(champion)
        split = split_for_gate(source, target, self.settings.validation_share, self.settings.seed,
                               stratify) if source else None
        info = DriftInfo(event.id, event.window_seq, event.drift_share, tuple(event.features),
                         tuple(self.config.measures))
        with tempfile.TemporaryDirectory(prefix=f"driftd-adapt-{name}-") as workdir:
            # challengers first and judged together; then the hand-overs; the re-baseline last
            challengers = [a for a in attempts if self._needs_model(a.config)]
            for attempt in challengers:
                self._attempt(attempt, info, split, target, champion, Path(workdir))
            decision = self._judge(challengers, champion, split)
            promoted = self._settle(challengers, decision, version)
            for attempt in attempts:
                if not self._needs_model(attempt.config) and attempt.config.type != "rebaseline":
                    self._attempt(attempt, info, split, target, champion, Path(workdir))
                    self._settle([attempt], None, version)
            for attempt in attempts:
                if attempt.config.type == "rebaseline":
                    self._rebaseline(attempt, event, target_table, promoted, info, champion, Path(workdir))

    def _needs_model(self, config: AdapterConfig) -> bool:
        """Whether the adapter makes a challenger (its class's ``needs_model``; an unknown type fails as one)."""
        return getattr(self.adapter_classes.get(config.type), "needs_model", True) is not False

    # ---- inputs -------------------------------------------------------------------------------

    def _adapter_config(self, run: AdaptationRow) -> AdapterConfig:
        found = next((adapter for adapter in self.settings.adapters if adapter.label == run.adapter), None)
        return found or AdapterConfig(type=run.adapter_type or run.adapter)

    def _champion(self) -> tuple[Model | None, int | None]:
        if self.config.model is None:
            return None, None
        version, model = self.models.champion(self.config.name, self.config.model)
        return model, version.version

    def _domains(self, target_table: pa.Table, champion: Model | None) -> tuple[Domain | None, Domain]:
        """The labelled source domain (None without a model) and the target domain of the event."""
        features = self.config.model_features or list(self.config.features.numeric)
        label = self.config.model.label if self.config.model else None
        target = table_domain(target_table, features, label, champion, what="the event's target rows")
        if self.config.model is None:
            return None, target
        path = self.config.model.training_data or self.config.reference.path
        if not path:
            raise AdaptationSetupError("no labelled source data: set model.training_data (or reference.path)")
        if label is None:
            raise AdaptationSetupError("no label column: set model.label")
        source = table_domain(read_table(path), features, label, champion, what=f"training data {path}")
        if source.labelled_rows == 0:
            raise AdaptationSetupError(f"training data {path} has no labelled rows in column {label!r}")
        return source, target

    # ---- running one adapter ------------------------------------------------------------------

    def _attempt(self, attempt: Attempt, info: DriftInfo, split: GateSplit | None, target: Domain,
                 champion: Model | None, workdir: Path) -> None:
        name, adapter = self.config.name, attempt.run.adapter
        if self.cancelled.is_set():
            self._finish(attempt, "failed", "cancelled: driftd is stopping")
            return
        try:
            self.records.start(attempt.run.id, self.replica)
        except StoreError as error:  # another process took it (e.g. a second replica, or the CLI)
            attempt.error = str(error)
            return
        log.info("monitor %s: adaptation %d (%s) started for drift event %d", name, attempt.run.id, adapter, info.id)
        artifacts = Path(self.settings.artifacts) / name / f"adaptation-{attempt.run.id}"
        artifacts.mkdir(parents=True, exist_ok=True, mode=0o700)
        ctx = adapter_context(name, info, split, target, champion, workdir, adapter, self.settings.seed,
                              artifacts=artifacts)
        started = time.perf_counter()
        result, error = self._call_with_timeout(attempt.config, ctx)
        attempt.seconds = time.perf_counter() - started
        self.metrics.adaptation_took(name, adapter, attempt.seconds)
        if error is not None:
            attempt.error = error
            self._finish(attempt, "failed", error)
            return
        attempt.result = result

    def _call_with_timeout(self, config: AdapterConfig, ctx: AdaptationContext) -> tuple[AdaptationResult | None, str | None]:
        """Build and run the adapter on its own thread; give up after its timeout (cancelling it)."""
        cls = self.adapter_classes.get(config.type)
        if cls is None:
            return None, f"unknown adapter type {config.type!r} (installed: {', '.join(sorted(self.adapter_classes))})"
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = cls(config.options).adapt(ctx)
            except BaseException as error:  # noqa: BLE001 - a plugin's failure is recorded, never raised
                outcome["error"] = error

        thread = threading.Thread(target=work, name=f"driftd-adapter-{self.config.name}-{config.label}", daemon=True)
        thread.start()
        deadline = time.monotonic() + config.timeout
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.2)
            if self.cancelled.is_set():
                ctx.cancelled.set()
        if thread.is_alive():
            ctx.cancelled.set()
            thread.join(5.0)
            stopping = self.cancelled.is_set()
            return None, ("cancelled: driftd is stopping" if stopping
                          else f"timed out after {config.timeout:g}s (the adapter was asked to stop)")
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, AdaptationCancelled):
                return None, "cancelled: driftd is stopping" if self.cancelled.is_set() else f"cancelled: {error}"
            if isinstance(error, (AdapterError, ModelLoadError)):
                return None, str(error)
            log.error("monitor %s: adapter %s raised", self.config.name, config.label, exc_info=error)
            return None, f"the adapter raised {type(error).__name__}: {error}"
        result = outcome.get("result")
        if not isinstance(result, AdaptationResult):
            return None, f"adapt() returned {type(result).__name__}, expected an AdaptationResult"
        return result, None

    # ---- the gate and the record --------------------------------------------------------------

    def _judge(self, attempts: list[Attempt], champion: Model | None, split: GateSplit | None) -> GateDecision | None:
        decision = gate(champion, [(attempt.run.adapter, attempt.result) for attempt in attempts], split,
                        self.settings.seed, self.settings.min_target_labels, self.settings.decisive_target_labels,
                        self.settings.regression_loss)
        if decision is not None:
            log.info("monitor %s: gate: %s", self.config.name, decision.reason)
        return decision

    def _settle(self, attempts: list[Attempt], decision: GateDecision | None, version: int | None) -> bool:
        """Give every attempt with a result its final state; True when a challenger was promoted."""
        judged = [attempt for attempt in attempts if attempt.result is not None and attempt.result.assumption != "none"]
        winner = judged[decision.winner] if decision is not None and decision.winner is not None else None
        promoted = False
        for attempt in attempts:
            result = attempt.result
            if result is None:
                continue
            if result.assumption == "none":
                self._finish(attempt, "succeeded", result.reason or "handed over; not validated by the gate")
            elif attempt is winner and self.settings.promote and result.model is not None and self.config.model:
                promoted = self._promote(attempt, decision.reason, version) or promoted
            elif attempt is winner:
                self._finish(attempt, "succeeded", f"{decision.reason} Not promoted (adaptation.promote is off).",
                             artifact=self._keep(attempt))
            elif result.passed:
                self._finish(attempt, "succeeded", result.reason or "passed the gate; another challenger won",
                             artifact=self._keep(attempt))
            else:
                reason = result.reason or "rejected by the gate"
                if decision is not None and decision.needs_labels and "labels" not in reason:
                    reason = f"{reason} ({decision.reason})"
                self._finish(attempt, "rejected", reason, artifact=self._keep(attempt))
        return promoted

    def _keep(self, attempt: Attempt) -> str | None:
        """With ``keep_rejected``, write a challenger that is not promoted to ``store/<monitor>/rejected-<id>``."""
        result = attempt.result
        if not self.settings.keep_rejected or result is None or result.model is None or self.config.model is None:
            return None
        try:
            folder = self.models.write(self.config.name, self.config.model, result.model, attempt.run.id, "rejected")
        except (ModelLoadError, OSError) as error:
            log.warning("monitor %s: adaptation %d (%s): keep_rejected: the model could not be saved: %s",
                        self.config.name, attempt.run.id, attempt.run.adapter, error)
            return None
        return str(folder)

    def _promote(self, attempt: Attempt, because: str, version: int | None) -> bool:
        """Write the winner's folder, then record the version and the run's state in ONE transaction."""
        assert attempt.result is not None and attempt.result.model is not None and self.config.model is not None
        name = self.config.name
        try:
            folder = self.models.write(name, self.config.model, attempt.result.model, attempt.run.id)
        except (ModelLoadError, OSError) as error:
            self._finish(attempt, "failed", f"passed the gate but could not be saved: {error}")
            return False
        crash_point("promotion.written")
        stored, run = self.records.promote(
            attempt.run.id, name, str(folder), note=f"{attempt.run.adapter}: {attempt.result.reason}",
            reason=f"{because} Promoted as model version {{version}} (was {version}).",
            metrics=self._summary(attempt), routes=self.routes(name))
        point_current(Path(self.config.model.store) / name, folder)
        self.metrics.model_version.labels(name).set(stored.version)
        self._ended(attempt, run)
        return True

    def _rebaseline(self, attempt: Attempt, event: QueuedEvent, table: pa.Table, promoted: bool, info: DriftInfo,
                    champion: Model | None, workdir: Path) -> None:
        if not promoted and self.config.model is not None and not _forced(attempt):
            self._finish(attempt, "rejected", "no adaptation was promoted, so the reference is kept")
            return
        self._attempt(attempt, info, None, table_domain(table, list(self.config.features.numeric), None, None,
                                                        "the event's target rows"), champion, workdir)
        if attempt.result is None:
            return
        new = summarize_table(table, self.config.features, self.config.reference.bins, self.config.reference.max_rows,
                              origin=f"rebaseline after drift event {event.id}",
                              multivariate_sample=self.config.reference.multivariate_sample)
        stored = self.store.add_reference(self.store.monitor_id(self.config.name), new)
        self._finish(attempt, "succeeded", f"the event's {table.num_rows} target rows are the active reference "
                     f"version {stored.version}", artifact=f"reference:{stored.version}")

    def _finish(self, attempt: Attempt, state: str, reason: str, artifact: str | None = None,
                model_version: int | None = None) -> None:
        result = attempt.result
        run = self.records.finish(attempt.run.id, state, reason, metrics=self._summary(attempt),
                                  artifact=artifact or (result.artifact if result else None),
                                  error=attempt.error, model_version=model_version,
                                  routes=self.routes(self.config.name))
        self._ended(attempt, run)

    def _summary(self, attempt: Attempt) -> dict[str, Any] | None:
        metrics = attempt.result.summary() if attempt.result is not None else None
        if metrics is not None:
            metrics["seconds"] = round(attempt.seconds, 3)
        return metrics

    def _ended(self, attempt: Attempt, run: AdaptationRow) -> None:
        """Count and log a run that reached its final state (its event is in the outbox already)."""
        self.metrics.adaptation_ended(self.config.name, attempt.run.adapter, run.state)
        level = logging.WARNING if run.state == "failed" else logging.INFO
        log.log(level, "monitor %s: adaptation %d (%s) %s: %s", self.config.name, attempt.run.id,
                attempt.run.adapter, run.state, run.reason)


def table_domain(table: pa.Table, features: list[str], label: str | None, model: Model | None, what: str) -> Domain:
    """The float feature matrix (rows with a missing or non-finite value dropped) and labels of a table."""
    missing = [name for name in features if name not in table.column_names]
    if missing:
        raise AdaptationSetupError(f"{what} lack the model's columns {missing}")
    try:
        matrix = np.column_stack([table.column(name).to_numpy(zero_copy_only=False).astype(float)
                                  for name in features]) if table.num_rows else np.empty((0, len(features)))
    except (ValueError, TypeError, pa.ArrowInvalid) as error:
        raise AdaptationSetupError(f"{what}: a model column is not numeric: {error}") from None
    keep = np.isfinite(matrix).all(axis=1)
    labels = labelled = None
    if label is not None and label in table.column_names:
        column = table.column(label)
        labelled = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        values = np.asarray(column.to_pylist(), dtype=object)
        labels = _as_classes(values, labelled, model)
    if not keep.any():
        raise AdaptationSetupError(f"{what} have no row with every model column present")
    return Domain(matrix[keep], tuple(features), None if labels is None else labels[keep],
                  None if labelled is None else labelled[keep])


def _as_classes(values: np.ndarray, labelled: np.ndarray, model: Model | None) -> np.ndarray:
    """Labels in the dtype of the model's classes (a CSV may read 1 as 1.0 or "1")."""
    if model is None:
        return values
    if is_regressor(model):
        numbers = np.full(len(values), np.nan)
        for index, (value, known) in enumerate(zip(values, labelled)):
            try:
                numbers[index] = float(value) if known else np.nan
            except (TypeError, ValueError):
                pass
        labelled &= np.isfinite(numbers)
        return np.where(labelled, numbers, 0.0)
    dtype = model.classes.dtype
    converted = np.empty(len(values), dtype=dtype)
    fill = model.classes[0]
    for index, (value, known) in enumerate(zip(values, labelled)):
        if not known:
            converted[index] = fill
            continue
        try:
            converted[index] = np.asarray(float(value) if dtype.kind in "iuf" else value).astype(dtype)
        except (TypeError, ValueError):
            labelled[index] = False
            converted[index] = fill
    return converted


def _target_table(event: QueuedEvent) -> pa.Table:
    if not event.target_sample:
        raise AdaptationSetupError(f"drift event {event.id} kept no target rows")
    return table_from_bytes(event.target_sample)


#: The run name of a re-baseline an operator asked for (``driftd adaptations rebaseline``).
OPERATOR_REBASELINE = "rebaseline-requested"


def _forced(attempt: Attempt) -> bool:
    return attempt.run.adapter == OPERATOR_REBASELINE
