"""The divergence engine: reference summaries, prepared windows, drift measures, corrections."""

from monitor.divergence.corrections import adjust_p_values
from monitor.divergence.measures import BACKENDS, Measure, Score
from monitor.divergence.registry import BUILTIN_MEASURES, MeasureRegistry
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
    "BACKENDS",
    "BUILTIN_MEASURES",
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
    "prepare_window",
    "summarize_categorical",
    "summarize_numeric",
]
