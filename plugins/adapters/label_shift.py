"""The ``label_shift`` adapter: re-weight the model's class probabilities by target/source prior ratios.

Under label shift p(x|y) stays and only the class priors move from p to q, so the target
posterior is the source one times q(y)/p(y), renormalised. q is estimated from unlabelled target
rows:

* ``em`` (default) - Saerens et al. (2002) maximum likelihood, on posteriors first calibrated on
  the labelled source with bias-corrected temperature scaling (``calibrate``). Alexandari et al.
  (2020) found calibrated EM more accurate than BBSE, whose moment equations use hard predictions
  only; EM's likelihood is concave in q, so it needs no BBSE start;
* ``bbse`` - Lipton et al. (2018): the confusion matrix C of hard predictions on the labelled source
  rows, then C w = μ_target solved for w ≥ 0 by least squares with a small ridge towards w = 1; for
  models whose probabilities cannot be trusted.

``min_ratio`` floors each target prior at that share of its source prior, so that no class is
ruled out for good; ``ridge`` is BBSE's pull towards w = 1, relative to the size of C.

The estimate uses the base model (without any earlier prior correction, behind any input map),
so ``prior_ratios`` are q/p relative to the training priors and replace earlier ratios.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.adaptation.density import estimate_target_priors
from monitor.adaptation.model import is_regressor
from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    AdaptedModel,
    Adapter,
    AdapterError,
    hookimpl,
    parse_adapter_options,
    unwrap,
)

TYPE_NAME = "label_shift"


class LabelShiftOptions(BaseModel):
    """Options of the ``label_shift`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    method: Literal["em", "bbse"] = "em"
    calibrate: bool = True
    ridge: float = Field(default=1e-4, ge=0.0, le=100.0)
    min_ratio: float = Field(default=1e-3, gt=0.0, le=1.0)


class LabelShift(Adapter):
    """Corrects the model's outputs for changed class priors."""

    type_name = TYPE_NAME

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = _parse(self.options)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Estimate the target priors and wrap the model with the ratios q/p."""
        base, input_map, _ = unwrap(ctx.require_model())
        if is_regressor(base):
            raise AdapterError(f"{TYPE_NAME} corrects class priors, and a regression model has no classes "
                               f"(use importance_weighting or feature_alignment)")
        source = ctx.require_source_labels()
        if ctx.target.rows == 0:
            raise AdapterError(f"{TYPE_NAME} needs target rows")
        labels_index = class_index(base.classes, source.labels)
        target_model = base if input_map is None else AdaptedModel(base, input_map)
        proba_source = base.predict_proba(source.features)
        ctx.check_cancelled()
        proba_target = target_model.predict_proba(ctx.target.features)
        source_priors, target_priors = estimate_target_priors(
            proba_source, labels_index, proba_target, self.config.method, self.config.calibrate, self.config.ridge)
        ratios = np.maximum(target_priors, self.config.min_ratio * source_priors) / np.clip(source_priors, 1e-12, None)
        return AdaptationResult(remedy="prior_ratios", assumption="label", model=AdaptedModel(base, input_map, ratios),
                                prior_ratios=ratios,
                                details={"method": self.config.method, "source_priors": source_priors,
                                         "target_priors": target_priors, "classes": base.classes.tolist()})


def class_index(classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each label's position in ``classes``; AdapterError for labels the model does not know."""
    lookup = {value: index for index, value in enumerate(classes.tolist())}
    unknown = sorted({str(label) for label in labels.tolist() if label not in lookup})
    if unknown:
        raise AdapterError(f"source labels {', '.join(unknown[:5])} are not among the model's classes "
                           f"{classes.tolist()}")
    return np.array([lookup[label] for label in labels.tolist()], dtype=int)


def _parse(options: Mapping[str, Any]) -> LabelShiftOptions:
    """Validated options; AdapterError names each bad option."""
    return parse_adapter_options(LabelShiftOptions, options, TYPE_NAME)


@hookimpl
def driftd_adapters() -> dict[str, type]:
    """The built-in ``label_shift`` adapter."""
    return {TYPE_NAME: LabelShift}
