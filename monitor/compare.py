"""The small public API: compare a reference and a window, get a typed report.

    >>> from monitor.compare import compare
    >>> report = compare(reference_df, live_df, measures=["ks", "psi", "mmd"])
    >>> report.drift, report.drifted_features
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from monitor.config import DEFAULT_MEASURES, DriftConfig, FeaturesConfig, MeasureConfig
from monitor.divergence import BUILTIN, MeasureRegistry, MultivariateMeasure, resolve_backend
from monitor.domain.diagnosis import explain_window
from monitor.domain.evaluate import evaluate_window, resolve_measures
from monitor.domain.policy import DriftPolicy
from monitor.domain.records import ResultRecord
from monitor.domain.reference import feature_kinds, summarize_rows
from monitor.domain.segments import evaluate_segments

#: The daemon's drift rule defaults (share, correction, min_rows), used here too.
_DRIFT = DriftConfig()

#: Anything ``compare`` accepts as a table.
TableLike = Any

@dataclass(frozen=True)
class DriftReport:
    """The outcome of one comparison: every result, which features drifted, and what was skipped."""

    reference_rows: int
    window_rows: int
    drift: bool
    drift_share: float
    drifted_features: list[str]
    missing_features: dict[str, str]
    failed_measures: dict[str, str]
    results: list[ResultRecord] = field(repr=False)
    #: What kind of change each feature shows (``monitor.domain.diagnosis``), as JSON-ready mappings.
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    #: Each segment's outcome (``segment_by``; ``monitor.domain.segments``), as JSON-ready mappings.
    segments: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (an infinite value as the string "Infinity" or "-Infinity")."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    """JSON has no infinity: +-inf become "Infinity"/"-Infinity" (``float()`` reads them back), NaN null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def as_table(data: TableLike) -> pa.Table:
    """A pyarrow Table from a Table, a pandas DataFrame, a mapping of columns or a 2-D array."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, Mapping):
        return pa.table({str(name): np.asarray(column) for name, column in data.items()})
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"a numpy array must be 2-D (rows x features), got shape {data.shape}")
        return pa.table({f"x{i}": data[:, i] for i in range(data.shape[1])})
    if hasattr(data, "to_arrow"):  # polars
        return data.to_arrow()
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"cannot compare a {type(data).__name__}: pass a pyarrow Table, a pandas DataFrame, "
                    "a mapping of columns or a 2-D numpy array")


def infer_features(table: pa.Table) -> tuple[list[str], list[str]]:
    """Numeric (integer and float) and categorical (text, boolean, dictionary) columns."""
    numeric, categorical = [], []
    for column in table.schema:
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            numeric.append(column.name)
        elif (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
              or pa.types.is_dictionary(kind)):
            categorical.append(column.name)
    return numeric, categorical


def installed_measures() -> MeasureRegistry:
    """The built-in measures and those the installed plugins add, through the daemon's plugin manager."""
    from monitor.plugins import PluginManager

    return MeasureRegistry(PluginManager().provided["divergences"])


def compare(
    reference: TableLike,
    window: TableLike,
    measures: Sequence[str] | Mapping[str, Mapping[str, Any]] = DEFAULT_MEASURES,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    correction: str = _DRIFT.correction,
    share: float = _DRIFT.share,
    bins: int = 10,
    backend: str = "numpy",
    min_rows: int = _DRIFT.min_rows,
    registry: MeasureRegistry | None = None,
    segment_by: Sequence[str] = (),
    max_segments: int = 20,
) -> DriftReport:
    """Measure how far ``window`` moved from ``reference``, with the engine's own code path.

    ``measures`` is a list of names or a mapping of name → ``{"threshold": ..., "options": {...}}``.
    Features default to every numeric and text column of the reference. ValueError/KeyError name
    bad input (unknown measure, missing column). Distances from fewer than ``min_rows`` values of a
    feature are reported but do not flag drift (tests are not limited). ``registry`` defaults to the
    built-in measures and those of the installed plugins, loaded as the daemon loads them (only when a
    chosen measure is not built in: a plugin cannot take a built-in's name).
    ``segment_by`` (columns, not features) also measures each of the reference's ``max_segments`` most
    frequent segments against the same segment of ``window``, corrected across segments as the daemon does.
    """
    reference_table, window_table = as_table(reference), as_table(window)
    if numeric is None and categorical is None:
        numeric, categorical = infer_features(reference_table)
        numeric = [name for name in numeric if name not in segment_by]
        categorical = [name for name in categorical if name not in segment_by]
    features = FeaturesConfig(numeric=list(numeric or []), categorical=list(categorical or []),
                              segment_by=list(segment_by), max_segments=max_segments)
    configured = ({name: MeasureConfig() for name in measures} if not isinstance(measures, Mapping)
                  else {name: MeasureConfig(**dict(options or {})) for name, options in measures.items()})
    if not configured:
        raise ValueError("no measures: with none, nothing could ever drift; pass at least one "
                         f"(the defaults: {', '.join(DEFAULT_MEASURES)})")
    if registry is None:
        # plugins may not reuse a built-in's name: with only built-ins chosen, loading them changes nothing
        registry = MeasureRegistry() if all(name in BUILTIN for name in configured) else installed_measures()
    settings = resolve_measures(configured, registry)
    auto = [setting.measure.name for setting in settings if setting.auto]
    if auto:
        raise ValueError(f"measure(s) {', '.join(map(repr, auto))}: threshold 'auto' takes a monitor's calibration "
                         "(`driftd calibrate`); compare() needs a number")
    # Nothing is stored here: the summary stays in memory (never serialised), and the multivariate
    # side is built only when a chosen measure reads it.
    multivariate = any(isinstance(setting.measure, MultivariateMeasure) for setting in settings)
    summary, _ = summarize_rows(reference_table, features, bins, max(reference_table.num_rows, 2), "compare",
                                multivariate_sample=2_000 if multivariate else None)
    kinds, resolved = feature_kinds(features), resolve_backend(backend)
    evaluation = evaluate_window(window_table, kinds, summary, settings, correction, backend=resolved,
                                 min_rows=min_rows, keep_windows=True)
    segments = (evaluate_segments(window_table, kinds, summary, settings, correction, segment_by, backend=resolved,
                                  min_rows=min_rows) if segment_by else [])
    decision = DriftPolicy(DriftConfig(share=share, correction=correction)).decide(
        evaluation.feature_drifted, multivariate_drift=evaluation.multivariate_drift)
    return DriftReport(
        reference_rows=reference_table.num_rows, window_rows=window_table.num_rows,
        drift=decision.state == "drift", drift_share=decision.drift_share,
        drifted_features=decision.drifted_features, missing_features=evaluation.missing,
        failed_measures=evaluation.failed_measures, results=evaluation.results,
        diagnoses=[d.as_dict() for d in explain_window(window_table, kinds, summary, decision.drifted_features,
                                                       windows=evaluation.windows).diagnoses],
        segments=[outcome.as_dict() for outcome in segments],
    )
