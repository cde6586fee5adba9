"""The divergence engine: reference summaries, prepared windows, drift measures, corrections."""

from monitor.divergence.corrections import adjust_p_values
from monitor.divergence.measures import Measure, Score
from monitor.divergence.api import DriftReport, as_table, compare
from monitor.divergence.backend import NUMPY, Backend, resolve_backend
from monitor.divergence.multivariate import (
    MULTIVARIATE_MEASURES,
    MultivariateMeasure,
    MultivariateSummary,
    summarize_multivariate,
)
from monitor.divergence.registry import BUILTIN, BUILTIN_MEASURES, AnyMeasure, MeasureRegistry
from monitor.divergence.summary import (
    CategoricalSummary,
    FeatureSummary,
    NumericSummary,
    ReferenceSummary,
    summarize_categorical,
    summarize_numeric,
)
from monitor.divergence.window import (
    CategoricalWindow,
    FeatureWindow,
    NumericWindow,
    prepare_window,
)

__all__ = [
    "AnyMeasure",
    "BUILTIN",
    "BUILTIN_MEASURES",
    "Backend",
    "DriftReport",
    "MULTIVARIATE_MEASURES",
    "NUMPY",
    "MultivariateMeasure",
    "MultivariateSummary",
    "CategoricalSummary",
    "CategoricalWindow",
    "FeatureSummary",
    "FeatureWindow",
    "Measure",
    "MeasureRegistry",
    "NumericSummary",
    "NumericWindow",
    "ReferenceSummary",
    "Score",
    "adjust_p_values",
    "as_table",
    "compare",
    "prepare_window",
    "resolve_backend",
    "summarize_multivariate",
    "summarize_categorical",
    "summarize_numeric",
]
