"""The ``augmentation`` adapter: retrain on the source plus copies of it moved toward the target.

Moment-matched perturbation (``method: moments``): each augmented copy of a labelled source row is
x + α·(T(x) - x), T the optimal-transport map from the source moments to the target's (as in
``feature_alignment``), labels kept; ``noise`` adds Gaussian noise of α times each feature's
spread instead (no target needed to shape it). The amount α is chosen from ``amounts`` on a
held-out share of the source, scored both as it is and fully moved (T(x), y): the model must keep
working where the source was and where the target lies. The model is retrained (``refit``) on the
source rows plus their augmented copies. It is judged as a map remedy (``assumption: map``, the
map back to the source offered to the gate): promoted only where the target lies off the source
support and the map explains it, rejected where the target lies within the source support.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.adaptation.model import is_regressor
from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    Model,
    ModelLoadError,
    hookimpl,
    parse_adapter_options,
    unwrap,
)
from plugins.adapters.feature_alignment import fit_map

TYPE_NAME = "augmentation"


class AugmentationOptions(BaseModel):
    """Options of the ``augmentation`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    method: Literal["moments", "noise"] = "moments"
    amounts: list[float] = Field(default=[0.25, 0.5, 1.0], min_length=1)
    validation_share: float = Field(default=0.3, gt=0.0, lt=1.0)


class Augmentation(Adapter):
    """Retrains the model on source rows augmented toward the target, the amount chosen on validation rows."""

    type_name = TYPE_NAME

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_adapter_options(AugmentationOptions, self.options, TYPE_NAME)
        if any(not 0.0 < amount <= 2.0 for amount in self.config.amounts):
            raise AdapterError(f"{TYPE_NAME} adapter: amounts must lie in (0, 2] (got {self.config.amounts})")

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Choose the amount on held-out source rows, then retrain on all source rows and their copies."""
        base, existing, _ = unwrap(ctx.require_model())
        if existing is not None:
            raise AdapterError(f"{TYPE_NAME} retrains the base model, and the current one has an input map")
        source = ctx.require_source_labels()
        if source.rows < 10 or ctx.target.rows < 2:
            raise AdapterError(f"{TYPE_NAME} needs at least 10 labelled source and 2 target rows "
                               f"(got {source.rows} and {ctx.target.rows})")
        rng = np.random.default_rng(ctx.seed)
        to_target = fit_map("ot", source.features, ctx.target.features)
        held = rng.random(source.rows) < self.config.validation_share
        train_x, train_y = source.features[~held], source.labels[~held]
        val_x, val_y = source.features[held], source.labels[held]
        scores = {}
        for amount in self.config.amounts:
            ctx.check_cancelled()
            model = _retrain(base, train_x, train_y, self._augment(train_x, amount, to_target, rng))
            scores[amount] = (_utility(model, val_x, val_y) + _utility(model, to_target(val_x), val_y)) / 2.0
        amount = max(scores, key=scores.__getitem__)
        challenger = _retrain(base, source.features, source.labels,
                              self._augment(source.features, amount, to_target, rng))
        # it bets that the target is the source moved by the map: the gate checks that hypothesis with the map
        return AdaptationResult(remedy="model", assumption="map", model=challenger, feature_map=to_target.inverse(),
                                details={"method": self.config.method, "amount": amount,
                                         "validation": {str(key): value for key, value in scores.items()}})

    def _augment(self, rows: np.ndarray, amount: float, to_target: Any, rng: np.random.Generator) -> np.ndarray:
        """The augmented copies of ``rows``."""
        if self.config.method == "noise":
            return rows + amount * rows.std(axis=0) * rng.standard_normal(rows.shape)
        return rows + amount * (to_target(rows) - rows)


def _retrain(base: Model, features: np.ndarray, labels: np.ndarray, copies: np.ndarray) -> Model:
    try:
        return base.refit(np.vstack([features, copies]), np.concatenate([labels, labels]))
    except ModelLoadError as error:
        raise AdapterError(f"{TYPE_NAME} cannot retrain the model: {error}") from None


def _utility(model: Model, features: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a classifier, negated mean squared error of a regressor."""
    predicted = model.predict(features)
    if is_regressor(model):
        return -float(np.mean((np.asarray(predicted, dtype=float) - labels) ** 2))
    return float(np.mean(predicted == labels))


@hookimpl
def driftd_adapters() -> dict[str, type]:
    """The built-in ``augmentation`` adapter."""
    return {TYPE_NAME: Augmentation}
