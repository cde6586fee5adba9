"""The numbers: reference summaries, prepared windows, drift measures, corrections, backends.

Pure numerics over numpy and scipy (torch when asked for); nothing here imports the rest of
driftd, so ``import monitor.divergence`` loads no database, web or configuration library.
"""

from typing import Any

from monitor.divergence.corrections import adjust_p_values
from monitor.divergence.base import Measure, Score
from monitor.divergence.backend import NUMPY, Backend, resolve_backend
from monitor.divergence.multivariate import MultivariateMeasure
from monitor.divergence.registry import (
    BUILTIN,
    BUILTIN_MEASURES,
    MULTIVARIATE_MEASURES,
    AnyMeasure,
    MeasureRegistry,
)
from monitor.divergence.summary import (
    CategoricalSummary,
    FeatureSummary,
    MultivariateSummary,
    NumericSummary,
    ReferenceSummary,
    summarize_categorical,
    summarize_multivariate,
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
    "prepare_window",
    "resolve_backend",
    "summarize_multivariate",
    "summarize_categorical",
    "summarize_numeric",
]


def __getattr__(name: str) -> Any:
    """``compare``, ``DriftReport`` and ``as_table`` moved to ``monitor.compare`` (above the numbers);
    this keeps ``from monitor.divergence import compare`` working without importing it eagerly."""
    if name in ("compare", "DriftReport", "as_table"):
        import monitor.compare  # compatibility: the one import from the numbers up to the domain

        return getattr(monitor.compare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
