"""A monitor's performance watch: the estimator fitted per reference, an estimate per window, drop alerts."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from monitor.config import MonitorConfig, PerformanceAlertConfig, PerformanceConfig
from monitor.daemon.errors import MonitorError
from monitor.domain.policy import STATE_CODES, Decision
from monitor.domain.reference import ReferenceDataError, read_table, table_to_bytes
from monitor.performance import LOWER_IS_BETTER, EstimationError, PerformanceEstimator, PerformanceSpec, WindowEstimate

log = logging.getLogger("driftd.engine")

#: Diagnosis kinds (``monitor.domain.diagnosis``) that say the features' relation changed: a concept change.
CONCEPT_KINDS = frozenset({"swap", "correlation"})
#: Column names of a window's stored outputs.
KEY, PREDICTION = "key", "prediction"
#: ``load(path, options) -> model``, the plugins' model loaders.
Loader = Callable[[Path, Mapping[str, Any]], Any]


def performance_columns(config: MonitorConfig) -> list[str]:
    """Live columns a monitor keeps for its performance: the model's outputs (and its label, for later)."""
    performance = config.performance
    return [] if performance is None else [*performance.output_columns, performance.target]


class PerformanceWatch:
    """Estimates one monitor's performance per window; the estimator is refitted when the reference changes."""

    def __init__(self, config: MonitorConfig, loaders: Mapping[str, Loader]) -> None:
        assert config.performance is not None
        self.name = config.name
        self.config: PerformanceConfig = config.performance
        self.features = list(config.model_features) or [*config.features.numeric, *config.features.categorical]
        self.categorical = [name for name in self.features if name in config.features.categorical]
        self.path = self.config.reference or config.reference.path or (config.model and config.model.training_data)
        self.model: Any = None
        if not self.config.reads_outputs and config.model is not None:
            loader = loaders.get(config.model.loader)
            if loader is None:
                raise MonitorError(f"monitor {self.name!r}: performance: unknown model loader {config.model.loader!r}")
            try:
                self.model = loader(Path(config.model.path), config.model.options)
            except Exception as error:  # noqa: BLE001 - any load failure is the monitor's configuration
                raise MonitorError(f"monitor {self.name!r}: performance: {error}") from None
        self._estimator: PerformanceEstimator | None = None
        self._fitted_for: object = None

    def estimator(self, reference_id: object) -> PerformanceEstimator:
        """The estimator for this reference version (fitted once, from the labelled reference rows)."""
        if self._estimator is None or self._fitted_for != reference_id:
            spec = PerformanceSpec(
                target=self.config.target, task=self.config.task, prediction=self.config.prediction,
                probabilities=tuple(self.config.probabilities), features=tuple(self.features),
                categorical=tuple(self.categorical), metrics=tuple(self.config.metrics),
                positive_class=self.config.positive_class, classes=tuple(self.config.classes),
                chunk_rows=self.config.chunk_rows, max_outside_share=self.config.max_outside_share)
            try:
                rows = _columns(read_table(str(self.path)))
                self._estimator = PerformanceEstimator.fit(rows, spec, self.model)
            except (ReferenceDataError, EstimationError, KeyError) as error:
                raise MonitorError(f"monitor {self.name!r}: performance: {_cause(error)}") from None
            self._fitted_for = reference_id
        return self._estimator

    def estimate(self, rows: pa.Table, reference_id: object, seq: int,
                 diagnoses: Sequence[Mapping[str, Any]] = ()) -> tuple[dict[str, Any] | None, bytes | None]:
        """The window's estimate as stored (None, with one log line, when it cannot be made) and, with a
        label source, its row keys and model outputs to join labels to later.

        The estimate is unreliable when the window is off the reference's support, or when the window's
        shift diagnosis (``diagnoses``) finds a swap or a broken correlation on a model feature.
        """
        estimator = self.estimator(reference_id)
        columns = _columns(rows)
        try:
            estimate = self._concept_checked(estimator.estimate_window(columns), diagnoses)
            outputs = self._outputs(estimator, rows, columns, seq) if self.config.labels else None
        except (EstimationError, KeyError) as error:
            log.error("monitor %s window %d: performance not estimated: %s", self.name, seq, _cause(error))
            return None, None
        if not estimate.reliable:
            log.warning("monitor %s window %d: performance estimate unreliable: %s", self.name, seq, estimate.reason)
        undefined = [m.metric for m in estimate.metrics if not np.isfinite(m.value)]
        if undefined:
            log.warning("monitor %s window %d: %s not estimated: undefined on this window (e.g. no row predicted as "
                        "the positive class); stored as missing, never as unchanged", self.name, seq,
                        ", ".join(undefined))
        return {**estimate.to_json(), "alerts": self.alerts(estimate)}, outputs

    def _concept_checked(self, estimate: WindowEstimate, diagnoses: Sequence[Mapping[str, Any]]) -> WindowEstimate:
        """The estimate marked unreliable when the diagnosis says how the model's features relate changed: a
        model feature now reads like another model feature that itself no longer reads like its own reference
        (both diagnosed swaps: sensors exchanged), or a strong correlation between two model features broke.
        A lone swap diagnosis (one feature that merely looks like another) is a shift of its own."""
        features = set(self.features)
        swapped = {d.get("feature") for d in diagnoses if d.get("kind") == "swap"}
        changed = []
        for diagnosis in diagnoses:
            figures, feature = diagnosis.get("figures") or {}, diagnosis.get("feature")
            other = figures.get("looks_like") if diagnosis.get("kind") == "swap" else figures.get("partner")
            if diagnosis.get("kind") not in CONCEPT_KINDS or feature not in features or other not in features:
                continue
            if diagnosis.get("kind") == "correlation" or other in swapped:
                changed.append(diagnosis)
        if not changed or not estimate.reliable:
            return estimate
        found = "; ".join(str(d.get("sentence") or f"{d.get('feature')}: {d.get('kind')}") for d in changed)
        return replace(estimate, reliable=False, reason=(
            f"the shift diagnosis finds the model's features relate differently ({found}): the reference's "
            "relation between inputs and outcomes may not hold, so the performance cannot be known without labels"))

    def _outputs(self, estimator: PerformanceEstimator, rows: pa.Table, columns: Mapping[str, np.ndarray],
                 seq: int) -> bytes:
        labels = self.config.labels
        assert labels is not None
        predicted, scores = estimator.outputs(columns)
        keys = join_keys(rows.column(labels.key), labels.join == "time")
        shared = len(keys) - len(set(keys))
        if shared:
            log.warning("monitor %s window %d: %d row(s) share their %s %r with an earlier row of the window; a "
                        "label for it is joined to each of them", self.name, seq, shared, labels.join, labels.key)
        table = {KEY: pa.array(keys, pa.string()),
                 PREDICTION: pa.array(predicted.astype(str) if self.config.task == "classification" else predicted)}
        for k in range(0 if scores is None else scores.shape[1]):
            table[f"score_{k}"] = pa.array(scores[:, k])  # type: ignore[index]
        return table_to_bytes(pa.table(table))

    def realized(self, reference_id: object, outputs: pa.Table, labels: Sequence[Any]) -> dict[str, float]:
        """Each metric from a window's stored outputs and their labels."""
        estimator = self.estimator(reference_id)
        predicted = outputs.column(PREDICTION).to_numpy(zero_copy_only=False)
        if self.config.task == "classification":
            by_text = {str(c): c for c in estimator.classes}
            predicted = np.array([by_text[p] for p in predicted.tolist()], dtype=object)
            labels = [by_text.get(str(v), v) if v is not None else None for v in labels]
        names = sorted((n for n in outputs.column_names if n.startswith("score_")), key=lambda n: int(n[6:]))
        scores = np.column_stack([outputs.column(n).to_numpy() for n in names]) if names else None
        return estimator.realized_from(predicted, scores, labels)

    def alerts(self, estimate: WindowEstimate) -> list[str]:
        """The metrics whose reliable estimate dropped past the configured alert."""
        alert = self.config.alert
        if alert is None or not estimate.reliable:
            return []
        return [m.metric for m in estimate.metrics
                if (alert.metrics is None or m.metric in alert.metrics)
                and dropped(alert, m.metric, m.value, m.reference_value, m.reference_lower, m.reference_upper)]

    def realized_alerts(self, realized: Mapping[str, float],
                        references: Mapping[str, tuple[float | None, float | None, float | None]]) -> list[str]:
        """The metrics whose realized value dropped past the alert (``alert.realized``), by the same rule."""
        alert = self.config.alert
        if alert is None or not alert.realized:
            return []
        found = []
        for metric, value in realized.items():
            reference = references.get(metric)
            if reference is None or (alert.metrics is not None and metric not in alert.metrics):
                continue
            if dropped(alert, metric, value, *(np.nan if v is None else v for v in reference)):
                found.append(metric)
        return found


def join_keys(values: pa.Array | pa.ChunkedArray, by_time: bool) -> list[str | None]:
    """Each value as the text labels are joined on: as it reads (ids), or (``by_time``) its instant in UTC
    microseconds, so a time written with an offset, as text or as a timestamp joins the same instant.

    A value that cannot be read as a time has no key (None): the callers skip it with a log line.
    """
    if by_time:
        try:
            values = _instants(values)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            instants = []
            for value in values.to_pylist():
                try:
                    instants.append(_instants(pa.array([value], values.type))[0].as_py())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    instants.append(None)
            values = pa.array(instants, pa.int64())
    return [None if value is None else str(value) for value in values.to_pylist()]


def _instants(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Times as UTC microseconds since the epoch (a time without a zone is read as UTC)."""
    try:
        return values.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    except pa.ArrowInvalid:
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise
        # Text without an offset ("2026-01-01T00:33:20"): Arrow reads it only as a naive time, which is UTC here.
        return values.cast(pa.timestamp("us")).cast(pa.int64())


def dropped(alert: PerformanceAlertConfig, metric: str, value: float, reference_value: float,
            reference_lower: float, reference_upper: float) -> bool:
    """Whether ``value`` is ``alert.drop`` worse than the reference's, or (``below_reference``) beyond its band.

    A value that is not finite never alerts here: it is logged and stored as missing where it is made.
    """
    if value is None or not np.isfinite(value):
        return False
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    worse_by = sign * (reference_value - value)
    bound = reference_upper if sign < 0 else reference_lower
    below_band = alert.below_reference and np.isfinite(bound) and sign * (value - bound) < 0
    return bool((alert.drop is not None and np.isfinite(worse_by) and worse_by > alert.drop) or below_band)


def _columns(table: pa.Table) -> dict[str, np.ndarray]:
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def _cause(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"column {error.args[0]!r} is missing"
    return str(error)


def raised_state(decision: Decision, performance: Mapping[str, Any] | None, config: PerformanceConfig | None,
                 previous: str) -> Decision:
    """The window's decision with a performance alert raising its state (feature drift is left as it was).

    An event starts when the window enters the drift state, by either cause, from a window that was not in it.
    """
    if config is None or config.alert is None:
        return decision
    state = decision.state
    if performance and performance.get("alerts"):
        state = max(state, config.alert.state, key=STATE_CODES.__getitem__)
    return replace(decision, state=state, starts_event=state == "drift" and previous != "drift")
