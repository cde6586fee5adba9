"""The ``importance_weighting`` adapter: retrain the model on source rows weighted by p_target/p_source.

Under covariate shift p(y|x) stays and only p(x) moves, so the target risk is the source risk with
each row weighted by w(x) = p_target(x)/p_source(x) (Shimodaira 2000). The weights come from a
cross-fitted domain classifier (default), uLSIF or KLIEP (``monitor.adaptation.density``), are
normalised to mean 1 and capped at ``clip`` so a few rows cannot carry the fit. ``folds`` and
``l2`` tune the classifier's cross-fitting and ridge, ``centres`` the kernel methods; ``seed``
defaults to the run's seed.

With an adapted model the base model is retrained behind its input map (weights are computed
between the source and the mapped target); earlier prior ratios are dropped, since the weighted
source already carries the target's class mix.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.adaptation import density
from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    AdaptedModel,
    Adapter,
    AdapterError,
    Model,
    ModelLoadError,
    hookimpl,
    parse_adapter_options,
    unwrap,
)

TYPE_NAME = "importance_weighting"


class ImportanceWeightingOptions(BaseModel):
    """Options of the ``importance_weighting`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    method: Literal["classifier", "ulsif", "kliep"] = "classifier"
    clip: float = Field(default=20.0, gt=1.0, le=1e6)
    folds: int = Field(default=5, ge=2, le=20)
    centres: int = Field(default=100, ge=5, le=2000)
    l2: float = Field(default=1e-3, ge=0.0, le=100.0)
    seed: int | None = None


class ImportanceWeighting(Adapter):
    """Retrains the model with importance weights on the labelled source rows."""

    type_name = TYPE_NAME

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = _parse(self.options)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Estimate the weights, clip them and refit the model with them."""
        base, input_map, _ = unwrap(ctx.require_model())
        source = ctx.require_source_labels()
        if source.rows < 2 or ctx.target.rows < 2:
            raise AdapterError(f"{TYPE_NAME} needs at least 2 labelled source and 2 target rows "
                               f"(got {source.rows} and {ctx.target.rows})")
        live = ctx.target.features if input_map is None else input_map(ctx.target.features)
        raw = self.ratios(source.features, live, ctx.seed if self.config.seed is None else self.config.seed)
        weights, clipped = density.clip_weights(raw, self.config.clip)
        ctx.check_cancelled()
        try:
            retrained = base.refit(source.features, source.labels, sample_weight=weights)
        except ModelLoadError as error:
            raise AdapterError(f"{TYPE_NAME} cannot retrain the model: {error}") from None
        challenger: Model = retrained if input_map is None else AdaptedModel(retrained, input_map)
        return AdaptationResult(remedy="sample_weights", assumption="covariate", model=challenger, weights=weights,
                                details=self.describe(weights, clipped))

    def ratios(self, source: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
        """Density ratios at the source rows by the configured method."""
        if self.config.method == "classifier":
            return density.classifier_ratio(source, target, folds=self.config.folds, l2=self.config.l2, seed=seed)
        estimate = density.ulsif_ratio if self.config.method == "ulsif" else density.kliep_ratio
        return estimate(source, target, centres=self.config.centres, folds=self.config.folds, seed=seed)

    def describe(self, weights: np.ndarray, clipped: float) -> dict[str, Any]:
        """The details recorded with the result."""
        quantiles = np.quantile(weights, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
        return {"method": self.config.method, "ess": density.effective_sample_size(weights),
                "ess_share": density.ess_share(weights), "clipped_share": clipped,
                "weight_quantiles": dict(zip(("min", "p05", "p25", "p50", "p75", "p95", "max"), quantiles.tolist()))}


def _parse(options: Mapping[str, Any]) -> ImportanceWeightingOptions:
    """Validated options; AdapterError names each bad option."""
    return parse_adapter_options(ImportanceWeightingOptions, options, TYPE_NAME)


@hookimpl
def driftd_adapters() -> dict[str, type]:
    """The built-in ``importance_weighting`` adapter."""
    return {TYPE_NAME: ImportanceWeighting}
