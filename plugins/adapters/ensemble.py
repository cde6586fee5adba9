"""The ``ensemble`` adapter: the current model and adapted members, their outputs averaged with chosen weights.

Members are built by the built-in adapters named in ``members`` (run on the same context). With at
least ``min_labels`` labelled target rows visible to adapters, the weights are chosen on them
(``stacked``: the grid of weights in steps of ``1/steps`` with the highest accuracy, or lowest
squared error for a regressor, ties to the most even); otherwise every model gets the same weight
(``averaged``). The gate then judges the ensemble like any other challenger, on rows no adapter saw.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.adaptation.model import EnsembleModel, is_regressor
from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    Model,
    hookimpl,
    parse_adapter_options,
)

TYPE_NAME = "ensemble"
MemberName = Literal["importance_weighting", "feature_alignment", "label_shift", "augmentation"]


class EnsembleOptions(BaseModel):
    """Options of the ``ensemble`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    members: list[MemberName] = Field(default=["importance_weighting", "label_shift"], min_length=1)
    include_current: bool = True
    min_labels: int = Field(default=20, ge=1)
    steps: int = Field(default=4, ge=1, le=10)


class Ensemble(Adapter):
    """Combines the current model and adapted members into one weighted ensemble."""

    type_name = TYPE_NAME

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_adapter_options(EnsembleOptions, self.options, TYPE_NAME)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Build the members, choose the weights, return the ensemble."""
        champion = ctx.require_model()
        models: list[Model] = [champion] if self.config.include_current else []
        names = ["current"] if self.config.include_current else []
        for name in self.config.members:
            ctx.check_cancelled()
            try:
                result = _member(name)({}).adapt(ctx)
            except AdapterError as error:
                ctx.log.info("ensemble: member %s left out: %s", name, error)
                continue
            if result.model is not None:
                models.append(result.model)
                names.append(name)
        if len(models) < 2:
            raise AdapterError(f"{TYPE_NAME} needs at least two models to combine (have {', '.join(names) or 'none'})")
        labelled = ctx.target.with_labels()
        if labelled.rows >= self.config.min_labels:
            weights, combine = _stacked(models, labelled.features, labelled.labels, self.config.steps), "stacked"
        else:
            weights, combine = np.ones(len(models)), "averaged"
        model = EnsembleModel(models, weights)
        return AdaptationResult(remedy="model", assumption="covariate", model=model,
                                details={"combine": combine, "members": names,
                                         "weights": [round(float(w), 4) for w in model.weights]})


def _member(name: str) -> type[Adapter]:
    """The built-in adapter class of a member."""
    from plugins.adapters.augmentation import Augmentation
    from plugins.adapters.feature_alignment import FeatureAlignment
    from plugins.adapters.importance_weighting import ImportanceWeighting
    from plugins.adapters.label_shift import LabelShift

    classes: dict[str, type[Adapter]] = {"importance_weighting": ImportanceWeighting,
                                         "feature_alignment": FeatureAlignment, "label_shift": LabelShift,
                                         "augmentation": Augmentation}
    return classes[name]


def _stacked(models: list[Model], features: np.ndarray, labels: np.ndarray, steps: int) -> np.ndarray:
    """The simplex-grid weights that score best on the labelled rows (ties: the most even)."""
    regression = is_regressor(models[0])
    outputs = [model.predict(features) if regression else model.predict_proba(features) for model in models]
    best, best_score = np.ones(len(models)), -np.inf
    for counts in itertools.product(range(steps + 1), repeat=len(models)):
        if sum(counts) != steps:
            continue
        weights = np.asarray(counts, dtype=float) / steps
        mixed = sum(weight * output for weight, output in zip(weights, outputs))
        if regression:
            score = -float(np.mean((mixed - labels) ** 2))
        else:
            score = float(np.mean(models[0].classes[np.argmax(mixed, axis=1)] == labels))
        score -= 1e-9 * float(np.var(weights))  # ties go to the most even weights
        if score > best_score:
            best, best_score = weights, score
    return best


@hookimpl
def driftd_adapters() -> dict[str, type]:
    """The built-in ``ensemble`` adapter."""
    return {TYPE_NAME: Ensemble}
