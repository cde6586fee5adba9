"""The configuration's schema: pydantic models, strict (unknown keys are errors) and frozen."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.explain import ExplainConfig, QualityConfig
from monitor.config.strict import _Strict
from monitor.config.performance import PerformanceConfig
from monitor.config.values import (
    MAX_DURATION,
    ConfigError,
    Duration,
    check_url,
    parse_duration,
)

DEFAULT_STORAGE_URL = "sqlite:///driftd.db"

#: The measures used when none are configured, by the daemon, ``driftd compare`` and
#: ``monitor.compare.compare()`` alike: a test for each feature kind (ks for numeric, chi_square
#: for categorical), so every feature can be flagged in a window of any size, with its false
#: alarms held at the threshold by the p-value (a distance at a fixed threshold is not: PSI > 0.2
#: flags most 30-row windows of unchanged data).
DEFAULT_MEASURES = ("ks", "chi_square")


#: Adapters that hand the event to something outside, so they need no model.


#: Upper bounds of counts: rows, samples, windows (far above any real need, far below an overflow).
MAX_ROWS = 100_000_000
MAX_COUNT = 1_000_000
#: The largest threshold a measure takes (a distance; a test's is a significance level below 1).
MAX_THRESHOLD = 1e12


class StorageConfig(_Strict):
    """Where the history lives, and how long a replica's claim on a monitor lasts (PostgreSQL)."""

    url: str = DEFAULT_STORAGE_URL
    lease: Duration = Field(30.0, description="seconds a replica keeps a monitor without renewing it")
    reference_cache_mib: int = Field(512, ge=0, le=MAX_COUNT, description=(
        "MiB of decoded reference summaries kept in memory between ticks, all monitors together; a monitor "
        "whose summary does not fit reads it from storage at each tick"))

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_url(url, needs_host=False)  # SQLite has no host; PostgreSQL may use a socket



class ServerConfig(_Strict):
    """The one HTTP port: metrics, health and the API."""

    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535)
    enabled: bool = True
    token_env: str = Field("DRIFTD_API_TOKEN", min_length=1,
                           description="the environment variable holding the API's bearer token")


class LoggingConfig(_Strict):
    """Log verbosity."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MetricsConfig(_Strict):
    """Bounds on exported series."""

    max_features: int = Field(100, ge=1, le=MAX_COUNT, description="per monitor; features past it are not exported")


class SourceConfig(_Strict):
    """A connector type and its options."""

    type: str
    options: dict[str, Any] = Field(default_factory=dict)


class ScheduleConfig(_Strict):
    """When a monitor ticks: a fixed interval or a cron expression."""

    interval: Duration | None = None
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except (ValueError, TypeError) as error:
                raise ValueError(f"not a valid cron expression (minute hour day month weekday): {error}") from None
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleConfig:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("set exactly one of 'interval' or 'cron'")
        return self


class WindowConfig(_Strict):
    """Tumbling windows: by row count, or by a time span of a timestamp column."""

    rows: int | None = Field(None, ge=1, le=MAX_ROWS)
    span: Duration | None = None
    timestamp: str | None = None


    @model_validator(mode="after")
    def _one_of(self) -> WindowConfig:
        if (self.rows is None) == (self.span is None):
            raise ValueError("set exactly one of 'rows' or 'span'")
        if self.span is not None and not self.timestamp:
            raise ValueError("a 'span' window needs the 'timestamp' column that orders rows in time")
        return self


class FeaturesConfig(_Strict):
    """Which columns are measured, and how."""

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    segment_by: list[str] = Field(default_factory=list, max_length=4, description=(
        "columns whose values split each window into segments, each measured against the same segment of the "
        "reference (monitor.domain.segments)"))
    max_segments: int = Field(20, ge=1, le=1000, description="segments kept: the most frequent in the reference")

    @model_validator(mode="after")
    def _disjoint(self) -> FeaturesConfig:
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        if not self.numeric and not self.categorical:
            raise ValueError("list at least one numeric or categorical feature")
        return self

    @property
    def names(self) -> list[str]:
        """Every feature, numeric first."""
        return [*self.numeric, *self.categorical]


class ReferenceConfig(_Strict):
    """Where the reference domain comes from: a file, the first rows, or ``driftd reference capture``."""

    path: str | None = None
    first_rows: int | None = Field(None, ge=2, le=MAX_ROWS)
    bins: int = Field(10, ge=2, le=1000)
    max_rows: int = Field(100_000, ge=2, le=MAX_ROWS, description="a larger reference is sub-sampled to this many rows")
    multivariate_sample: int = Field(2_000, ge=2, le=MAX_COUNT,
                                     description="reference rows kept for multivariate measures")

    @model_validator(mode="after")
    def _at_most_one(self) -> ReferenceConfig:
        if self.path is not None and self.first_rows is not None:
            raise ValueError("set at most one of 'path' or 'first_rows'")
        return self


class MeasureConfig(_Strict):
    """Per-measure settings: a threshold (or ``auto``: from the reference's calibration), the smallest effect
    a test may flag, and options of its class."""

    threshold: Annotated[float, Field(ge=0, le=MAX_THRESHOLD)] | Literal["auto"] | None = Field(
        None, description="a test's significance level, the distance past which a feature drifts, or 'auto'")
    min_effect: float | None = Field(
        None, ge=0, le=MAX_THRESHOLD, allow_inf_nan=False,
        description="tests only: flag drift only when the statistic (e.g. KS D) is also at least this large")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        if value is None or value == "auto" or isinstance(value, bool):
            return value  # a boolean is refused by the base class, with the reason
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError("Input should be a valid number, or 'auto' (per-feature thresholds from the "
                             "calibration stored with the reference version: `driftd calibrate`)") from None
        if not 0 <= number <= MAX_THRESHOLD:  # one clear line here, rather than one per member of the union
            raise ValueError(f"expected a finite number from 0 to {MAX_THRESHOLD:g}, or 'auto'")
        return value if isinstance(value, (int, float)) else number


class BackendConfig(_Strict):
    """Where measures compute: numpy, torch, or auto (torch when a GPU is there)."""

    name: Literal["numpy", "torch", "auto"] = "numpy"
    device: str | None = None
    dtype: Literal["float32", "float64"] = "float64"


class SequentialConfig(_Strict):
    """A Page–Hinkley detector over the series of window statistics, for slow creeps.

    The defaults suit ``drift_share`` (a number in 0..1): a share that rises and stays up by
    ``s > delta`` fires after about ``threshold / (s - delta)`` windows (a step from 0.05 to
    0.15 in about 11), while one window moves the share by at most 1, so a single spike cannot
    fire from a quiet start. For ``max_divergence`` set ``delta`` and ``threshold`` in the units
    of the measures' values.
    """

    statistic: Literal["drift_share", "max_divergence"] = Field(
        "drift_share", description="drift_share, or the largest value among the distance (non-test) results")
    delta: float = Field(0.01, ge=0, le=1e12, description="rise of the statistic's mean that is tolerated")
    threshold: float = Field(1.0, gt=0, le=1e12, description="evidence needed for an alarm (Page's lambda)")
    min_windows: int = Field(10, ge=1, le=MAX_COUNT, description="windows seen before the detector may fire")


class DriftConfig(_Strict):
    """When a window, and then the monitor, counts as drifted."""

    share: float = Field(0.3, gt=0, le=1, description="drifted share of features for dataset drift")
    consecutive: int = Field(1, ge=1, le=MAX_COUNT, description="windows in a row at or above the share")
    correction: Literal["none", "bonferroni", "bh"] = "bh"
    min_rows: int = Field(30, ge=0, le=MAX_ROWS,
                          description="values of a feature a distance measure (PSI, JS, Wasserstein, …) "
                                      "needs in a window before it may flag drift; tests are not limited")
    sequential: SequentialConfig | None = Field(
        None, description="also raise drift when a sequential detector sees the statistic creep up")


class ModelConfig(_Strict):
    """The model a monitor watches over, and the labelled data it was trained on (the source domain)."""

    path: str = Field(description="the model file: a pickle/joblib for sklearn, a state dict for torch")
    loader: str = Field("sklearn", description="a model loader name (driftd_model_loaders): sklearn, torch, …")
    options: dict[str, Any] = Field(default_factory=dict, description="loader options, e.g. torch factory and classes")
    features: list[str] | None = Field(None, description="the model's input columns; default: the numeric features")
    label: str | None = Field(None, description="the label column, in the training data and in live rows when labels arrive")
    training_data: str | None = Field(None, description="labelled source rows (CSV/Parquet/JSON lines); default: reference.path")
    store: str = Field("driftd-models", description="folder where promoted model versions are written")


class AdapterConfig(_Strict):
    """One adapter a monitor runs when drift is confirmed."""

    type: str
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="default: the type")
    options: dict[str, Any] = Field(default_factory=dict)
    timeout: Duration = Field(600.0, description="seconds before the run is cancelled and marked failed")


    @property
    def label(self) -> str:
        """The name the adapter's runs are recorded under."""
        return self.name or self.type


class AdaptationConfig(_Strict):
    """What happens after drift: adapters, the gate, promotion, and how often."""

    adapters: list[AdapterConfig] = Field(min_length=1)
    cooldown: float = Field(3600.0, ge=0, le=MAX_DURATION,
                            description="seconds after an adaptation before the monitor adapts again")
    target_rows: int = Field(5_000, ge=10, le=MAX_ROWS, description="recent live rows kept as the target domain")
    validation_share: float = Field(0.3, gt=0, lt=1, description="labelled rows held out for the gate")
    min_target_labels: int = Field(30, ge=1, le=MAX_ROWS,
                                   description="held-out target labels needed for them to decide where no "
                                               "label-free validator applies (below it they only veto)")
    decisive_target_labels: int = Field(200, ge=1, le=MAX_ROWS,
                                        description="held-out target labels from which they alone decide")
    regression_loss: Literal["squared_error", "absolute_error"] = Field(
        "squared_error", description="the per-row loss the gate compares regression models by")
    promote: bool = Field(True, description="promote the gate's winner as a new model version")
    keep_rejected: bool = Field(False, description="write challengers that are not promoted to "
                                                   "store/<monitor>/rejected-<run id> for inspection")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds the held-out split and the adapters")
    artifacts: str = Field("driftd-artifacts", min_length=1, description=(
        "folder where adapters keep what outlives the run (ctx.artifacts: ARTIFACTS/MONITOR/adaptation-ID)"))

    @field_validator("adapters", mode="before")
    @classmethod
    def _adapter_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"type": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, value: Any) -> float:
        return 0.0 if not isinstance(value, bool) and value in (0, "0") else parse_duration(value)

    @field_validator("adapters")
    @classmethod
    def _unique(cls, adapters: list[AdapterConfig]) -> list[AdapterConfig]:
        labels = [adapter.label for adapter in adapters]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"adapters named more than once: {duplicated} (give each a distinct 'name')")
        return adapters


#: What a notifier can be sent (the outbox's event kinds).
EventKind = Literal["drift_detected", "window_evaluated", "adaptation_finished"]
_NAME = r"^[A-Za-z0-9_.-]{1,100}$"


class NotifierConfig(_Strict):
    """A notifier: where events go (built by the ``driftd_notifiers`` plugin of that type)."""

    type: str
    name: str | None = Field(None, pattern=_NAME, description="default: the type")
    options: dict[str, Any] = Field(default_factory=dict)
    events: list[EventKind] = Field(default_factory=lambda: ["drift_detected"], min_length=1)
    monitors: list[str] | None = Field(None, description="the monitors it hears from (default: every monitor)")

    @property
    def label(self) -> str:
        """The name monitors and the outbox know it by."""
        return self.name or self.type


class MonitorNotifierConfig(_Strict):
    """A monitor's own choice of a notifier, optionally with other events."""

    name: str
    events: list[EventKind] | None = Field(None, min_length=1, description="default: the notifier's events")


class OutboxConfig(_Strict):
    """Delivery of events (hooks, notifiers) after the commit: polling, retries, claims and retention."""

    poll: Duration = Field(1.0, description="seconds between looks for due messages (a commit wakes it sooner)")
    retry_base: Duration = Field(1.0, description="seconds before the first retry; doubled on each failure")
    retry_cap: Duration = Field(300.0, description="the longest wait between two retries")
    claim: Duration = Field(60.0, description="seconds a replica holds a message while delivering it")
    retention: Duration = Field(7 * 86400.0, description="delivered and dropped messages are kept this long")
    batch: int = Field(100, ge=1, le=10_000, description="messages claimed at a time")


class MonitorConfig(_Strict):
    """One monitored data source."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    source: SourceConfig
    features: FeaturesConfig
    window: WindowConfig
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    schedule: ScheduleConfig = Field(default_factory=lambda: ScheduleConfig(interval=60))
    measures: dict[str, MeasureConfig] = Field(
        default_factory=lambda: {name: MeasureConfig() for name in DEFAULT_MEASURES}
    )
    drift: DriftConfig = Field(default_factory=DriftConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    max_rows: int = Field(10_000, ge=1, le=MAX_ROWS, description="rows fetched per tick at most")
    fetch_timeout: Duration = Field(300.0, description="seconds before a fetch that does not return is given up")
    backend: BackendConfig = Field(default_factory=BackendConfig)
    model: ModelConfig | None = None
    performance: PerformanceConfig | None = None
    adaptation: AdaptationConfig | None = None
    notifiers: list[MonitorNotifierConfig] | None = Field(
        None, description="the notifiers this monitor sends to, instead of the top-level choice ([]: none)")
    enabled: bool = True

    @field_validator("notifiers", mode="before")
    @classmethod
    def _notifier_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _adaptation_needs(self) -> MonitorConfig:
        if self.model is not None:
            unknown = sorted(set(self.model_features) - set(self.features.numeric))
            if unknown:
                raise ValueError(f"model.features must be numeric features of the monitor; not: {unknown}")
            if self.model.label is not None and self.model.label in self.features.names:
                raise ValueError(f"model.label {self.model.label!r} is also a monitored feature")
        performance = self.performance
        if performance is not None and not performance.reads_outputs and self.model is None:
            raise ValueError("performance needs the model's outputs: name 'prediction'/'probabilities' columns "
                             "or configure a 'model'")
        if performance is not None and not (performance.reference or self.reference.path or
                                            (self.model and self.model.training_data)):
            raise ValueError("performance needs labelled reference rows: set performance.reference "
                             "(or reference.path)")
        return self

    @property
    def model_features(self) -> list[str]:
        """The model's input columns (default: every numeric feature)."""
        if self.model is None:
            return []
        return list(self.model.features) if self.model.features else list(self.features.numeric)


    @field_validator("backend", mode="before")
    @classmethod
    def _backend_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("measures", mode="before")
    @classmethod
    def _measure_list(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(name, str) for name in value):
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {name: ({} if options is None else options) for name, options in value.items()}
        return value  # anything else: pydantic reports that it is not a mapping of measures

    @field_validator("measures")
    @classmethod
    def _some_measure(cls, measures: dict[str, MeasureConfig]) -> dict[str, MeasureConfig]:
        if not measures:
            raise ValueError("no measures: with none, no window could ever drift; list at least one "
                             f"(or leave 'measures' out for the defaults: {', '.join(DEFAULT_MEASURES)})")
        return measures


class AdaptationPoolConfig(_Strict):
    """The daemon's pool of adaptation workers."""

    workers: int = Field(2, ge=1, le=64, description="adaptations running at once (one per monitor at most)")
    stop_timeout: Duration = Field(30.0, description="seconds a stopping daemon waits for cancelled adaptations")



class DriftdConfig(_Strict):
    """The whole configuration file."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    adaptation: AdaptationPoolConfig = Field(default_factory=AdaptationPoolConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    notifiers: list[NotifierConfig] = Field(default_factory=list)
    plugins: dict[str, Any] = Field(default_factory=dict, description=(
        "each plugin's own settings by plugin name, validated by the model the plugin declares "
        "(driftd_config_model)"))
    monitors: list[MonitorConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _notifier_references(self) -> DriftdConfig:
        labels = [notifier.label for notifier in self.notifiers]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"notifiers named more than once: {duplicated} (give each a distinct 'name')")
        monitors = {monitor.name for monitor in self.monitors}
        for notifier in self.notifiers:
            unknown = sorted(set(notifier.monitors or ()) - monitors)
            if unknown:
                raise ValueError(f"notifier {notifier.label!r}: monitors: no monitor named {unknown[0]!r}")
        for monitor in self.monitors:
            for choice in monitor.notifiers or ():
                if choice.name not in labels:
                    raise ValueError(f"monitor {monitor.name!r}: notifiers: no notifier named {choice.name!r} "
                                     f"(configured: {', '.join(labels) or 'none'})")
        return self

    def notifier_events(self, monitor: MonitorConfig) -> dict[str, tuple[str, ...]]:
        """Notifier name → the events it is sent for ``monitor`` (the monitor's own choice wins)."""
        by_label = {notifier.label: notifier for notifier in self.notifiers}
        if monitor.notifiers is not None:
            return {choice.name: tuple(choice.events or by_label[choice.name].events) for choice in monitor.notifiers}
        return {notifier.label: tuple(notifier.events) for notifier in self.notifiers
                if notifier.monitors is None or monitor.name in notifier.monitors}

    @field_validator("monitors")
    @classmethod
    def _unique_names(cls, monitors: list[MonitorConfig]) -> list[MonitorConfig]:
        seen: set[str] = set()
        for monitor in monitors:
            if monitor.name in seen:
                raise ValueError(f"monitor {monitor.name!r} is defined more than once")
            seen.add(monitor.name)
        return monitors

    def monitor(self, name: str) -> MonitorConfig:
        """The monitor of that name, or a ConfigError listing the known ones."""
        for monitor in self.monitors:
            if monitor.name == name:
                return monitor
        known = ", ".join(m.name for m in self.monitors) or "none"
        raise ConfigError(f"no monitor named {name!r} (configured: {known})")
