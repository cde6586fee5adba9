"""Performance estimated without labels: one estimator per reference, one estimate per window.

``estimate()`` is the public face; the daemon builds a ``PerformanceEstimator`` once per reference
version and calls ``estimate_window`` per window, so both run the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .cbpe import ClassifierEstimator
from .dle import RegressorEstimator
from .metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from .records import WindowEstimate
from .support import Support

Columns = Mapping[str, Any]


class EstimationError(ValueError):
    """The estimator cannot be built or applied; the message names the cause."""


@dataclass(frozen=True)
class PerformanceSpec:
    """Where a model's outputs and the truth are, and what to estimate.

    ``probabilities`` names one column per class (in ``classes`` order), or one column holding the
    positive class's probability for a binary model. ``features`` feed the assumption check, the
    loss model (regression) and ``model`` when outputs are computed rather than read.
    """

    target: str
    task: str = "classification"
    prediction: str | None = None
    probabilities: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    positive_class: Any = None
    classes: tuple[Any, ...] = ()
    chunk_rows: int | None = None
    max_outside_share: float = 0.015

    def chosen_metrics(self) -> tuple[str, ...]:
        """The metrics asked for, or all the task has."""
        known = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        chosen = self.metrics or known
        unknown = [m for m in chosen if m not in known]
        if unknown:
            raise EstimationError(f"unknown {self.task} metric(s) {unknown}; choose from {list(known)}")
        return tuple(chosen)


@dataclass
class PerformanceEstimator:
    """Fitted on one reference: the calibration or loss model, the reference bands and its support."""

    spec: PerformanceSpec
    model: Any = None
    chunk_rows: int = 0
    classes: tuple[Any, ...] = ()
    _inner: Any = field(default=None, repr=False)
    _support: Support | None = field(default=None, repr=False)

    @classmethod
    def fit(cls, reference: Columns, spec: PerformanceSpec, model: Any = None) -> PerformanceEstimator:
        """Fit on reference rows whose target is known (rows without a target are left out)."""
        target = np.asarray(reference[spec.target], dtype=object)
        known = np.array([_known(v) for v in target.tolist()], dtype=bool)
        if known.sum() < 50:
            raise EstimationError(f"the reference has {int(known.sum())} rows with a known {spec.target!r}; "
                                  "estimating performance needs at least 50")
        rows = {name: np.asarray(values, dtype=object)[known] for name, values in _columns(reference).items()}
        self = cls(spec, model)
        self.chunk_rows = spec.chunk_rows or max(50, int(known.sum()) // 10)
        self._support = Support(_numeric(rows, spec), {name: rows[name] for name in spec.categorical})
        metrics = spec.chosen_metrics()
        if spec.task == "classification":
            scores, predicted, classes = self._outputs(rows)
            labels = rows[spec.target]
            self.classes = tuple(classes)
            positive = spec.positive_class if spec.positive_class is not None else classes[-1]
            self._inner = ClassifierEstimator(scores, predicted, labels, classes, metrics, positive, self.chunk_rows)
        else:
            predicted = self._regression_outputs(rows)
            targets = np.asarray(rows[spec.target], dtype=float)
            self._inner = RegressorEstimator(_numeric(rows, spec), predicted, targets, metrics, self.chunk_rows)
        return self

    def estimate_window(self, window: Columns) -> WindowEstimate:
        """Every metric estimated on one window, and whether the window lies on the reference's support."""
        rows = _columns(window)
        count = len(next(iter(rows.values()))) if rows else 0
        if count == 0:
            return WindowEstimate(0, float("nan"), False, "the window has no rows")
        assert self._support is not None
        outside = self._support.outside(_numeric(rows, self.spec), {n: rows[n] for n in self.spec.categorical})
        share = float(outside.mean())
        if self.spec.task == "classification":
            scores, predicted, _ = self._outputs(rows)
            metrics = self._inner.estimate(scores, predicted)
        else:
            metrics = self._inner.estimate(_numeric(rows, self.spec), self._regression_outputs(rows))
        reliable = share <= self.spec.max_outside_share
        reason = None if reliable else (
            f"{share:.0%} of the window's rows lie outside the reference's support (more than "
            f"{self.spec.max_outside_share:.0%}): the reference cannot say how the model does there, "
            "so its performance cannot be known without labels")
        return WindowEstimate(count, share, reliable, reason, metrics)

    def outputs(self, window: Columns) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's predictions and (classifiers) class scores on a window, read or computed."""
        rows = _columns(window)
        if self.spec.task == "classification":
            scores, predicted, _ = self._outputs(rows)
            return predicted, scores
        return self._regression_outputs(rows), None

    def realized_from(self, predicted: np.ndarray, scores: np.ndarray | None, target: Sequence[Any]) -> dict[str, float]:
        """Each metric from stored outputs and their true labels (rows without one left out)."""
        truth = np.asarray(target, dtype=object)
        known = np.array([_known(v) for v in truth.tolist()], dtype=bool)
        if self.spec.task == "classification":
            return self._inner.realized(truth[known], np.asarray(predicted, dtype=object)[known],
                                        None if scores is None else scores[known])
        return self._inner.realized(np.asarray(truth[known], dtype=float), np.asarray(predicted, dtype=float)[known])

    def realized(self, window: Columns, target: Sequence[Any]) -> dict[str, float]:
        """Each metric computed from the window's true labels (rows without one left out)."""
        rows = _columns(window)
        truth = np.asarray(target, dtype=object)
        known = np.array([_known(v) for v in truth.tolist()], dtype=bool)
        rows = {name: values[known] for name, values in rows.items()}
        if self.spec.task == "classification":
            scores, predicted, _ = self._outputs(rows)
            return self._inner.realized(truth[known], predicted, scores)
        return self._inner.realized(np.asarray(truth[known], dtype=float), self._regression_outputs(rows))

    def _outputs(self, rows: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        spec = self.spec
        if self.model is not None and not spec.probabilities:
            scores = np.asarray(self.model.predict_proba(_matrix(rows, spec.features)), dtype=float)
            classes = list(np.asarray(self.model.classes).tolist())
        elif spec.probabilities:
            scores = np.column_stack([np.asarray(rows[c], dtype=float) for c in spec.probabilities])
            if scores.shape[1] == 1:
                scores = np.column_stack([1.0 - scores[:, 0], scores[:, 0]])
            classes = list(spec.classes) or list(self.classes) or _classes_from(rows, spec, scores.shape[1])
        else:
            raise EstimationError("a classifier's performance needs its probabilities: name the 'probabilities' "
                                  "column(s) or give a model")
        if len(classes) != scores.shape[1]:
            raise EstimationError(f"{scores.shape[1]} probability columns for {len(classes)} classes {classes}")
        if not np.isfinite(scores).all():
            raise EstimationError(f"{int((~np.isfinite(scores).all(axis=1)).sum())} row(s) have a missing or "
                                  "non-finite probability")
        if spec.prediction:
            predicted = np.asarray(rows[spec.prediction], dtype=object)
        else:
            predicted = np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]
        return scores, predicted, classes

    def _regression_outputs(self, rows: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.spec.prediction:
            predicted = np.asarray(rows[self.spec.prediction], dtype=float)
        elif self.model is not None:
            predicted = np.asarray(self.model.predict(_matrix(rows, self.spec.features)), dtype=float)
        else:
            raise EstimationError("a regressor's performance needs its prediction: name the 'prediction' column "
                                  "or give a model")
        if not np.isfinite(predicted).all():
            raise EstimationError(f"{int((~np.isfinite(predicted)).sum())} row(s) have a missing prediction")
        return predicted


def estimate(reference: Columns, windows: Sequence[Columns], *, target: str, model: Any = None,
             prediction: str | None = None, probabilities: str | Sequence[str] | None = None,
             features: Sequence[str] = (), categorical: Sequence[str] = (), task: str | None = None,
             metrics: Sequence[str] = (), positive_class: Any = None, classes: Sequence[Any] = (),
             chunk_rows: int | None = None, max_outside_share: float = 0.015) -> list[WindowEstimate]:
    """Per-window performance estimates for a model, without the windows' labels.

    ``reference`` and each window map column names to values (a dict of arrays or a pandas
    DataFrame). The reference needs ``target``; the model's outputs come from the ``prediction`` and
    ``probabilities`` columns, or from ``model`` (``predict_proba``/``predict``) over ``features``.
    ``task`` is ``classification`` or ``regression`` (guessed from what is given when omitted).
    """
    if isinstance(probabilities, str):
        probabilities = (probabilities,)
    if task is None:
        task = "classification" if probabilities or (model is not None and hasattr(model, "predict_proba")) \
            else "regression"
    if task not in ("classification", "regression"):
        raise EstimationError(f"task must be 'classification' or 'regression', not {task!r}")
    spec = PerformanceSpec(target=target, task=task, prediction=prediction, probabilities=tuple(probabilities or ()),
                           features=tuple(features), categorical=tuple(categorical), metrics=tuple(metrics),
                           positive_class=positive_class, classes=tuple(classes), chunk_rows=chunk_rows,
                           max_outside_share=max_outside_share)
    estimator = PerformanceEstimator.fit(reference, spec, model)
    return [estimator.estimate_window(window) for window in windows]


def _columns(frame: Columns) -> dict[str, np.ndarray]:
    names = list(frame.columns) if hasattr(frame, "columns") else list(frame.keys())
    return {str(name): np.asarray(frame[name], dtype=object) for name in names}


def _matrix(rows: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    if not names:
        raise EstimationError("computing the model's outputs needs the feature columns it takes")
    return np.column_stack([np.asarray(rows[name], dtype=float) for name in names])


def _numeric(rows: Mapping[str, np.ndarray], spec: PerformanceSpec) -> np.ndarray:
    names = [n for n in spec.features if n not in spec.categorical]
    count = len(next(iter(rows.values()))) if rows else 0
    if not names:
        return np.zeros((count, 0))
    return np.column_stack([np.asarray(rows[name], dtype=float) for name in names])


def _classes_from(rows: Mapping[str, np.ndarray], spec: PerformanceSpec, count: int) -> list[Any]:
    seen = sorted({v for v in rows[spec.target].tolist() if _known(v)} if spec.target in rows else set(), key=str)
    if len(seen) != count:
        raise EstimationError(f"name the model's 'classes' ({count} probability columns, labels seen: {seen})")
    return seen


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
