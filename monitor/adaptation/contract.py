"""The adapter contract: what an adaptation plugin is given and what it gives back.

Vocabulary of domain adaptation: the *source* domain is the labelled data the model was trained
on (the reference); the *target* domain is the recent live windows (labels only where they have
arrived). An adapter is built from its options and has ``adapt(ctx) -> AdaptationResult``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from monitor.adaptation.model import AffineMap, Model
from monitor.connector import describe_options_error

OptionsT = TypeVar("OptionsT", bound=BaseModel)

#: What kind of remedy an adapter proposes.
Remedy = Literal["sample_weights", "feature_map", "prior_ratios", "model", "external", "reference"]

#: What a remedy assumes about how the target relates to the source; the gate validates under it.
#:  covariate - p(y|x) is unchanged, only p(x) moved (importance-weighted validation applies)
#:  map       - target rows are source rows moved by a feature map, labels travel with them
#:  label     - p(x|y) is unchanged, only the class priors moved
#:  labels    - judged on target labels only (e.g. fine-tuning on them)
#:  none      - not validated by the gate (an outside pipeline, a new reference)
Assumption = Literal["covariate", "map", "label", "labels", "none"]


class AdapterError(Exception):
    """An adapter cannot work on this input; the message says why (e.g. no target labels)."""


class AdaptationCancelled(Exception):
    """The run was cancelled (timeout or shutdown) and stopped at a check point."""


@dataclass(frozen=True)
class Domain:
    """Rows of one domain: a float feature matrix, its column names, and labels where known.

    ``labels`` has one entry per row (class labels as in the model's ``classes``) or is None;
    ``labelled`` marks the rows whose label has arrived (all rows of a labelled source).
    """

    features: np.ndarray
    feature_names: tuple[str, ...]
    labels: np.ndarray | None = None
    labelled: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise ValueError(f"features must be (rows, {len(self.feature_names)}), got {self.features.shape}")
        if self.labels is not None and len(self.labels) != len(self.features):
            raise ValueError("labels must have one entry per row")
        if self.labels is not None and self.labelled is None:
            object.__setattr__(self, "labelled", np.ones(len(self.features), dtype=bool))

    @property
    def rows(self) -> int:
        """How many rows the domain holds."""
        return int(self.features.shape[0])

    @property
    def labelled_rows(self) -> int:
        """How many rows carry a label."""
        return 0 if self.labelled is None else int(self.labelled.sum())

    def with_labels(self) -> Domain:
        """Only the rows whose label is known."""
        if self.labels is None or self.labelled is None:
            return Domain(self.features[:0], self.feature_names, np.empty(0), np.zeros(0, dtype=bool))
        mask = self.labelled
        return Domain(self.features[mask], self.feature_names, self.labels[mask], np.ones(int(mask.sum()), dtype=bool))

    def take(self, index: np.ndarray) -> Domain:
        """The rows at ``index`` (an integer or boolean array)."""
        return Domain(self.features[index], self.feature_names,
                      None if self.labels is None else self.labels[index],
                      None if self.labelled is None else self.labelled[index])


@dataclass(frozen=True)
class DriftInfo:
    """The drift event that triggered the run."""

    id: int | None
    window_seq: int | None
    drift_share: float
    features: tuple[str, ...]
    measures: tuple[str, ...] = ()


@dataclass
class AdaptationContext:
    """Everything an adapter may use. Check ``cancelled`` (or call ``check_cancelled``) in loops.

    ``workdir`` is temporary: it is deleted when the run ends, whatever its outcome. ``artifacts``
    is a folder of this run that survives it (``adaptation.artifacts``/MONITOR/adaptation-ID): put
    there what a person or a later run needs, and name it in ``AdaptationResult.artifact``.
    """

    monitor: str
    event: DriftInfo
    source: Domain
    target: Domain
    model: Model | None
    workdir: Path
    log: logging.Logger
    cancelled: threading.Event = field(default_factory=threading.Event)
    seed: int = 0
    artifacts: Path | None = None

    def check_cancelled(self) -> None:
        """Raise AdaptationCancelled when the run was cancelled."""
        if self.cancelled.is_set():
            raise AdaptationCancelled(f"monitor {self.monitor!r}: adaptation cancelled")

    def require_model(self) -> Model:
        """The current model, or AdapterError when the monitor names none."""
        if self.model is None:
            raise AdapterError("the monitor has no model configured (set model.path)")
        return self.model

    def require_source_labels(self) -> Domain:
        """The labelled source rows, or AdapterError when the source has no labels."""
        if self.source.labels is None or self.source.labelled_rows == 0:
            raise AdapterError("the source domain has no labels (set model.label and model.training_data)")
        return self.source.with_labels()


@dataclass
class AdaptationResult:
    """What an adapter produced: the remedy, the challenger model and the evidence for it.

    ``model`` is the challenger as it would be deployed (the current model wrapped with a feature
    map or prior correction, or a retrained one); None for remedies that do not change the model
    (``external``, ``reference``). ``passed``/``scores``/``reason`` are filled by the gate for
    validated remedies, or by the adapter itself for ``external`` and ``reference`` ones.
    """

    remedy: Remedy
    assumption: Assumption
    model: Model | None = None
    artifact: str | None = None
    weights: np.ndarray | None = None
    feature_map: AffineMap | None = None
    prior_ratios: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float | str] = field(default_factory=dict)
    passed: bool | None = None
    reason: str = ""

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record of the result (what SQL and the API keep)."""
        return {"remedy": self.remedy, "assumption": self.assumption, "artifact": self.artifact,
                "details": _jsonable(self.details), "scores": _jsonable(self.scores), "passed": self.passed,
                "reason": self.reason}


class Adapter:
    """Base class for adapters: built from ``options``; ``adapt(ctx)`` returns an AdaptationResult."""

    #: The type name users write in ``adaptation.adapters[].type``.
    type_name: ClassVar[str] = ""
    #: Whether the adapter works on the monitor's model (a challenger the gate judges). False: it
    #: hands the event over (a webhook, a command) and runs, after the challengers, without a model.
    needs_model: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Bring the model to the target domain."""
        raise NotImplementedError


def parse_adapter_options(model: type[OptionsT], options: Mapping[str, Any], type_name: str) -> OptionsT:
    """Validate adapter options with a pydantic model; AdapterError names each bad option."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as error:
        raise AdapterError(f"{type_name} adapter: " + describe_options_error(model, error)) from None


def _jsonable(value: Any) -> Any:
    """Numbers, lists and mappings only: numpy scalars and arrays become Python ones."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
