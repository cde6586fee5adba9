"""The ``mean_alignment`` adapter: shift live rows so their feature means match the source's.

The simplest feature-map remedy: when a sensor's offset moved (a recalibration, a new unit), live
rows are moved back by the difference of means and the current model is kept.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    AdaptedModel,
    Adapter,
    AdapterError,
    AffineMap,
    parse_adapter_options,
    unwrap,
)


class MeanAlignmentOptions(BaseModel):
    """Options of ``mean_alignment``."""

    model_config = ConfigDict(extra="forbid")
    min_rows: int = Field(50, ge=2, description="target rows needed to estimate the means")


class MeanAlignment(Adapter):
    """Maps target rows x ↦ x - mean_target + mean_source in front of the current model."""

    type_name = "mean_alignment"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.settings = parse_adapter_options(MeanAlignmentOptions, options, self.type_name)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """A translation of the features, wrapped around the current model."""
        ctx.check_cancelled()
        model = ctx.require_model()
        if ctx.target.rows < self.settings.min_rows:
            raise AdapterError(f"{ctx.target.rows} target rows; mean_alignment needs {self.settings.min_rows}")
        shift = ctx.source.features.mean(axis=0) - ctx.target.features.mean(axis=0)
        features = len(shift)
        to_source = AffineMap(np.eye(features), shift)
        base, _, ratios = unwrap(model)  # the new map takes raw live rows to the source: it replaces an old one
        ctx.log.info("mean_alignment: shifting %d features by up to %.3g", features, float(np.abs(shift).max()))
        return AdaptationResult(remedy="feature_map", assumption="map", model=AdaptedModel(base, to_source, ratios),
                                feature_map=to_source, details={"shift": dict(zip(ctx.source.feature_names, shift))})
