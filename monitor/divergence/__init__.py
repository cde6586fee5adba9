"""The numbers: reference summaries, prepared windows, drift measures, corrections, backends.

Pure numerics over numpy and scipy (torch when asked for); nothing here imports the rest of
driftd. The names below load lazily from the module of their family, so ``import
monitor.divergence`` is cheap and a plugin pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name → the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Measure", "Score", "map_features"), "base"),
    **dict.fromkeys(("NUMPY", "Backend", "resolve_backend"), "backend"),
    "adjust_p_values": "corrections",
    "MultivariateMeasure": "multivariate",
    **dict.fromkeys(("BUILTIN", "BUILTIN_MEASURES", "MULTIVARIATE_MEASURES", "AnyMeasure", "MeasureRegistry"),
                    "registry"),
    **dict.fromkeys(("CategoricalSummary", "FeatureSummary", "MultivariateSummary", "NumericSummary",
                     "ReferenceSummary", "summarize_categorical", "summarize_multivariate", "summarize_numeric"),
                    "summary"),
    **dict.fromkeys(("CategoricalWindow", "FeatureWindow", "NumericWindow", "prepare_window"), "window"),
}
#: Kept for ``from monitor.divergence import compare``: it moved above the numbers, to ``monitor.compare``.
_MOVED = {"compare": "monitor.compare", "DriftReport": "monitor.compare", "as_table": "monitor.compare"}

__all__ = [
    "AnyMeasure",
    "BUILTIN",
    "BUILTIN_MEASURES",
    "Backend",
    "CategoricalSummary",
    "CategoricalWindow",
    "FeatureSummary",
    "FeatureWindow",
    "MULTIVARIATE_MEASURES",
    "Measure",
    "MeasureRegistry",
    "MultivariateMeasure",
    "MultivariateSummary",
    "NUMPY",
    "NumericSummary",
    "NumericWindow",
    "ReferenceSummary",
    "Score",
    "adjust_p_values",
    "map_features",
    "prepare_window",
    "resolve_backend",
    "summarize_categorical",
    "summarize_multivariate",
    "summarize_numeric",
]

if TYPE_CHECKING:
    from monitor.divergence.backend import NUMPY, Backend, resolve_backend
    from monitor.divergence.base import Measure, Score, map_features
    from monitor.divergence.corrections import adjust_p_values
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
    from monitor.divergence.window import CategoricalWindow, FeatureWindow, NumericWindow, prepare_window


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    elif name in _MOVED:  # the one import from the numbers up to the domain, for compatibility
        value = getattr(importlib.import_module(_MOVED[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
