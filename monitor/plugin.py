"""The public plugin API: everything a connector, measure, adapter or notifier plugin needs, in one module.

    from monitor.plugin import hookimpl, Connector, Batch, parse_options

A plugin is a module with ``@hookimpl`` functions named after the hooks in ``monitor.hookspecs``
(``driftd_connectors``, ``driftd_divergences``, ``driftd_adapters``, …), registered under the
``driftd`` entry-point group. Conformance checks for its tests are in ``monitor.testing``.
These names stay importable from here across releases; the modules they live in may move.
"""

from monitor.adaptation.contract import (
    AdaptationCancelled,
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    Assumption,
    Domain,
    DriftInfo,
    Remedy,
    parse_adapter_options,
)
from monitor.adaptation.model import (
    AdaptedModel,
    AffineMap,
    Model,
    ModelLoadError,
    SklearnModel,
    TorchModel,
    unwrap,
)
from monitor.config.values import Duration, check_url, parse_duration
from monitor.connector import (
    AggregateBatch,
    AggregatePlan,
    Backlog,
    Batch,
    CategoryCounts,
    Connector,
    ConnectorError,
    ConnectorOptionsError,
    Cursor,
    NumericCounts,
    WindowAggregate,
    as_text,
    concat_tables,
    describe_options_error,
    fetching_for,
    parse_options,
)
from monitor.divergence import (
    NUMPY,
    Backend,
    CategoricalSummary,
    CategoricalWindow,
    FeatureSummary,
    FeatureWindow,
    Measure,
    MultivariateMeasure,
    MultivariateSummary,
    NumericSummary,
    NumericWindow,
    Score,
)
from monitor.divergence.base import categorical_pair, numeric_pair
from monitor.divergence.counts import category_counts, proportions, window_bin_counts
from monitor.hookspecs import hookimpl
from monitor.notifier import (
    NOTIFIER_EVENTS,
    Notifier,
    NotifierError,
    NotifierOptionsError,
    event_changes,
    event_summary,
    parse_notifier_options,
)
from monitor.redact import mask_urls

__all__ = [
    # hooks
    "hookimpl",
    # connectors
    "AggregateBatch", "AggregatePlan", "Backlog", "Batch", "CategoryCounts", "Connector", "ConnectorError",
    "ConnectorOptionsError", "Cursor", "Duration", "NumericCounts", "WindowAggregate", "as_text", "check_url",
    "concat_tables", "describe_options_error", "fetching_for", "mask_urls", "parse_duration", "parse_options",
    # measures
    "NUMPY", "Backend", "CategoricalSummary", "CategoricalWindow", "FeatureSummary", "FeatureWindow", "Measure",
    "MultivariateMeasure", "MultivariateSummary", "NumericSummary", "NumericWindow", "Score",
    "categorical_pair", "category_counts", "numeric_pair", "proportions", "window_bin_counts",
    # adapters
    "AdaptationCancelled", "AdaptationContext", "AdaptationResult", "AdaptedModel", "Adapter", "AdapterError",
    "AffineMap", "Assumption", "Domain", "DriftInfo", "Model", "ModelLoadError", "Remedy", "SklearnModel",
    "TorchModel", "parse_adapter_options", "unwrap",
    # notifiers
    "NOTIFIER_EVENTS", "Notifier", "NotifierError", "NotifierOptionsError", "event_changes", "event_summary", "parse_notifier_options",
]
