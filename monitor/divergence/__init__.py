"""The divergence engine: reference summaries, drift measures and p-value corrections."""

from monitor.divergence.corrections import adjust_p_values
from monitor.divergence.measures import Measure, Score
from monitor.divergence.registry import BUILTIN_MEASURES, MeasureRegistry
from monitor.divergence.summary import (
    CategoricalSummary,
    FeatureSummary,
    NumericSummary,
    ReferenceSummary,
    summarize_categorical,
    summarize_numeric,
)

__all__ = [
    "BUILTIN_MEASURES",
    "CategoricalSummary",
    "FeatureSummary",
    "Measure",
    "MeasureRegistry",
    "NumericSummary",
    "ReferenceSummary",
    "Score",
    "adjust_p_values",
    "summarize_categorical",
    "summarize_numeric",
]
