"""The ``feature_alignment`` adapter: an affine map between the target and the source feature moments.

Two maps, both affine and both matching means and covariances:

* ``coral`` - CORAL (Sun, Feng and Saenko 2016): whiten with one covariance, re-colour with the
  other, x ↦ μ_to + C_to^{1/2} C_from^{-1/2} (x - μ_from);
* ``ot``    - the optimal-transport (Monge) map between the Gaussians with those moments,
  x ↦ μ_to + A (x - μ_from), A = C_f^{-1/2} (C_f^{1/2} C_to C_f^{1/2})^{1/2} C_f^{-1/2}: the only
  symmetric positive map between them, so it recovers any per-feature positive gain exactly.

Covariances are regularised by ``eps`` times their mean variance. ``direction: inverse`` maps live
rows back onto the source and keeps the model (the challenger applies the map to its inputs);
``forward`` maps the labelled source onto the target and retrains the model there. Either way
``result.feature_map`` is the map from raw target rows to the source.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    AdaptedModel,
    Adapter,
    AdapterError,
    AffineMap,
    Model,
    ModelLoadError,
    hookimpl,
    parse_adapter_options,
    unwrap,
)

TYPE_NAME = "feature_alignment"


class FeatureAlignmentOptions(BaseModel):
    """Options of the ``feature_alignment`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    method: Literal["ot", "coral"] = "ot"
    direction: Literal["inverse", "forward"] = "inverse"
    eps: float = Field(default=1e-3, ge=0.0, le=10.0)


class FeatureAlignment(Adapter):
    """Aligns the target feature distribution with the source one by an affine map."""

    type_name = TYPE_NAME

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = _parse(self.options)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Fit the map and build the challenger for the configured direction."""
        model = ctx.require_model()
        base, existing, ratios = unwrap(model)
        source = ctx.require_source_labels() if self.config.direction == "forward" else ctx.source
        if source.rows < 2 or ctx.target.rows < 2:
            raise AdapterError(f"{TYPE_NAME} needs at least 2 source and 2 target rows "
                               f"(got {source.rows} and {ctx.target.rows})")
        live = ctx.target.features if existing is None else existing(ctx.target.features)
        ctx.check_cancelled()
        if self.config.direction == "inverse":
            to_source = compose(fit_map(self.config.method, live, source.features, self.config.eps), existing)
            challenger: Model = AdaptedModel(base, to_source, ratios)
        else:
            forward = fit_map(self.config.method, source.features, live, self.config.eps)
            to_source = compose(forward.inverse(), existing)
            challenger = _retrain(base, forward(source.features), source.labels, existing, ratios)
        return AdaptationResult(remedy="feature_map", assumption="map", model=challenger, feature_map=to_source,
                                details={"method": self.config.method, "direction": self.config.direction})


def fit_map(method: str, from_rows: np.ndarray, to_rows: np.ndarray, eps: float = 1e-3) -> AffineMap:
    """The affine map that takes the moments of ``from_rows`` to those of ``to_rows``."""
    mean_from, cov_from = _moments(from_rows, eps)
    mean_to, cov_to = _moments(to_rows, eps)
    if method == "coral":
        matrix = _power(cov_to, 0.5) @ _power(cov_from, -0.5)
    elif method == "ot":
        root = _power(cov_from, 0.5)
        inverse_root = _power(cov_from, -0.5)
        matrix = inverse_root @ _power(root @ cov_to @ root, 0.5) @ inverse_root
    else:
        raise ValueError(f"method must be 'ot' or 'coral' (got {method!r})")
    return AffineMap(matrix, mean_to - matrix @ mean_from)


def compose(outer: AffineMap, inner: AffineMap | None) -> AffineMap:
    """outer ∘ inner (just ``outer`` without an inner map)."""
    if inner is None:
        return outer
    return AffineMap(outer.matrix @ inner.matrix, outer.matrix @ inner.offset + outer.offset)


def _retrain(base: Model, features: np.ndarray, labels: np.ndarray, existing: AffineMap | None,
             ratios: np.ndarray | None) -> Model:
    """The base model retrained on mapped source rows, behind the existing map and prior ratios."""
    try:
        retrained = base.refit(features, labels)
    except ModelLoadError as error:
        raise AdapterError(f"{TYPE_NAME} (direction forward) cannot retrain the model: {error}") from None
    return retrained if existing is None and ratios is None else AdaptedModel(retrained, existing, ratios)


def _moments(rows: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance, the covariance regularised by eps times its mean variance."""
    rows = np.asarray(rows, dtype=float)
    covariance = np.atleast_2d(np.cov(rows, rowvar=False))
    ridge = eps * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    return rows.mean(axis=0), covariance + ridge * np.eye(len(covariance))


def _power(matrix: np.ndarray, exponent: float) -> np.ndarray:
    """A symmetric positive semi-definite matrix to a real power (eigenvalues floored above 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    values = np.maximum(values, 1e-12 * max(float(values.max()), 1e-300))
    return (vectors * values**exponent) @ vectors.T


def _parse(options: Mapping[str, Any]) -> FeatureAlignmentOptions:
    """Validated options; AdapterError names each bad option."""
    return parse_adapter_options(FeatureAlignmentOptions, options, TYPE_NAME)


@hookimpl
def driftd_adapters() -> dict[str, type]:
    """The built-in ``feature_alignment`` adapter."""
    return {TYPE_NAME: FeatureAlignment}
