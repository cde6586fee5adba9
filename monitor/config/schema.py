"""The configuration's schema: pydantic models, strict (unknown keys are errors) and frozen."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.config.values import ConfigError, parse_duration

DEFAULT_STORAGE_URL = "sqlite:///driftd.db"

#: The measures used when none are configured, by the daemon, ``driftd compare`` and
#: ``monitor.compare.compare()`` alike: a test for each feature kind (ks for numeric, chi_square
#: for categorical), so every feature can be flagged in a window of any size, with its false
#: alarms held at the threshold by the p-value (a distance at a fixed threshold is not: PSI > 0.2
#: flags most 30-row windows of unchanged data).
DEFAULT_MEASURES = ("ks", "chi_square")


#: Adapters that hand the event to something outside, so they need no model.
EXTERNAL_ADAPTERS = frozenset({"webhook", "command", "rebaseline"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Strict):
    """Where the history lives, and how long a replica's claim on a monitor lasts (PostgreSQL)."""

    url: str = DEFAULT_STORAGE_URL
    lease: float = Field(30.0, description="seconds a replica keeps a monitor without renewing it")

    @field_validator("lease", mode="before")
    @classmethod
    def _lease(cls, value: Any) -> float:
        return parse_duration(value)


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

    max_features: int = Field(100, ge=1, description="per monitor; features past it are not exported")


class SourceConfig(_Strict):
    """A connector type and its options."""

    type: str
    options: dict[str, Any] = Field(default_factory=dict)


class ScheduleConfig(_Strict):
    """When a monitor ticks: a fixed interval or a cron expression."""

    interval: float | None = None
    cron: str | None = None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

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

    rows: int | None = Field(None, ge=1)
    span: float | None = None
    timestamp: str | None = None

    @field_validator("span", mode="before")
    @classmethod
    def _span(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

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
    first_rows: int | None = Field(None, ge=2)
    bins: int = Field(10, ge=2, le=1000)
    max_rows: int = Field(100_000, ge=2, description="a larger reference is sub-sampled to this many rows")
    multivariate_sample: int = Field(2_000, ge=2, description="reference rows kept for multivariate measures")

    @model_validator(mode="after")
    def _at_most_one(self) -> ReferenceConfig:
        if self.path is not None and self.first_rows is not None:
            raise ValueError("set at most one of 'path' or 'first_rows'")
        return self


class MeasureConfig(_Strict):
    """Per-measure settings: a threshold (or ``auto``: from the reference's calibration), the smallest effect
    a test may flag, and options of its class."""

    threshold: Annotated[float, Field(allow_inf_nan=False)] | Literal["auto"] | None = None
    min_effect: float | None = Field(
        None, allow_inf_nan=False,
        description="tests only: flag drift only when the statistic (e.g. KS D) is also at least this large")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        if value is None or value == "auto" or isinstance(value, (int, float)):
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError("Input should be a valid number, or 'auto' (per-feature thresholds from the "
                             "calibration stored with the reference version: `driftd calibrate`)") from None


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
    delta: float = Field(0.01, ge=0, description="rise of the statistic's mean that is tolerated")
    threshold: float = Field(1.0, gt=0, description="evidence needed for an alarm (Page's lambda)")
    min_windows: int = Field(10, ge=1, description="windows seen before the detector may fire")


class DriftConfig(_Strict):
    """When a window, and then the monitor, counts as drifted."""

    share: float = Field(0.3, gt=0, le=1, description="drifted share of features for dataset drift")
    consecutive: int = Field(1, ge=1, description="windows in a row at or above the share")
    correction: Literal["none", "bonferroni", "bh"] = "bh"
    min_rows: int = Field(30, ge=0, description="values of a feature a distance measure (PSI, JS, Wasserstein, …) "
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
    timeout: float = Field(600.0, description="seconds before the run is cancelled and marked failed")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)

    @property
    def label(self) -> str:
        """The name the adapter's runs are recorded under."""
        return self.name or self.type


class AdaptationConfig(_Strict):
    """What happens after drift: adapters, the gate, promotion, and how often."""

    adapters: list[AdapterConfig] = Field(min_length=1)
    cooldown: float = Field(3600.0, description="seconds after an adaptation before the monitor adapts again")
    target_rows: int = Field(5_000, ge=10, description="recent live rows kept as the target domain")
    validation_share: float = Field(0.3, gt=0, lt=1, description="labelled rows held out for the gate")
    min_target_labels: int = Field(30, ge=1, description="held-out target labels needed for them to decide")
    promote: bool = Field(True, description="promote the gate's winner as a new model version")
    seed: int = 0

    @field_validator("adapters", mode="before")
    @classmethod
    def _adapter_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"type": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, value: Any) -> float:
        return 0.0 if value in (0, "0") else parse_duration(value)

    @field_validator("adapters")
    @classmethod
    def _unique(cls, adapters: list[AdapterConfig]) -> list[AdapterConfig]:
        labels = [adapter.label for adapter in adapters]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"adapters named more than once: {duplicated} (give each a distinct 'name')")
        return adapters


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
    max_rows: int = Field(10_000, ge=1, description="rows fetched per tick at most")
    fetch_timeout: float = Field(300.0, description="seconds before a fetch that does not return is given up")
    backend: BackendConfig = Field(default_factory=BackendConfig)
    model: ModelConfig | None = None
    adaptation: AdaptationConfig | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _adaptation_needs(self) -> MonitorConfig:
        if self.model is not None:
            unknown = sorted(set(self.model_features) - set(self.features.numeric))
            if unknown:
                raise ValueError(f"model.features must be numeric features of the monitor; not: {unknown}")
            if self.model.label is not None and self.model.label in self.features.names:
                raise ValueError(f"model.label {self.model.label!r} is also a monitored feature")
        if self.adaptation is not None and self.model is None and any(
                adapter.type not in EXTERNAL_ADAPTERS for adapter in self.adaptation.adapters):
            raise ValueError("adaptation needs a 'model' (path, label, training_data) for its adapters "
                             f"(only {sorted(EXTERNAL_ADAPTERS)} work without one)")
        return self

    @property
    def model_features(self) -> list[str]:
        """The model's input columns (default: every numeric feature)."""
        if self.model is None:
            return []
        return list(self.model.features) if self.model.features else list(self.features.numeric)

    @field_validator("fetch_timeout", mode="before")
    @classmethod
    def _fetch_timeout(cls, value: Any) -> float:
        return parse_duration(value)

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
    stop_timeout: float = Field(30.0, description="seconds a stopping daemon waits for cancelled adaptations")

    @field_validator("stop_timeout", mode="before")
    @classmethod
    def _stop_timeout(cls, value: Any) -> float:
        return parse_duration(value)


class DriftdConfig(_Strict):
    """The whole configuration file."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    adaptation: AdaptationPoolConfig = Field(default_factory=AdaptationPoolConfig)
    monitors: list[MonitorConfig] = Field(default_factory=list)

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
