"""Model performance: estimated without labels (CBPE, DLE), realized when labels arrive."""

from .estimate import EstimationError, PerformanceEstimator, PerformanceSpec, estimate
from .metrics import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS
from .records import MetricEstimate, WindowEstimate

__all__ = ["CLASSIFICATION_METRICS", "EstimationError", "LOWER_IS_BETTER", "MetricEstimate", "PerformanceEstimator",
           "PerformanceSpec", "REGRESSION_METRICS", "WindowEstimate", "estimate"]
