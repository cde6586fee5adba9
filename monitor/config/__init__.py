"""The configuration file: one YAML document validated with pydantic.

``schema`` holds the models, ``loading`` reads and validates a file, ``values`` the plain values
(durations) and the error type.
"""

from monitor.config.loading import (
    apply_env_overrides,
    build_config,
    interpolate,
    load_config,
)
from monitor.config.explain import ExplainConfig, QualityCheckConfig, QualityConfig
from monitor.config.performance import PerformanceAlertConfig, PerformanceConfig
from monitor.config.schema import (
    DEFAULT_MEASURES,
    DEFAULT_STORAGE_URL,
    AdaptationConfig,
    AdaptationPoolConfig,
    AdapterConfig,
    BackendConfig,
    DriftConfig,
    DriftdConfig,
    FeaturesConfig,
    LoggingConfig,
    MeasureConfig,
    MetricsConfig,
    ModelConfig,
    MonitorConfig,
    MonitorNotifierConfig,
    NotifierConfig,
    OutboxConfig,
    ReferenceConfig,
    ScheduleConfig,
    SequentialConfig,
    ServerConfig,
    SourceConfig,
    StorageConfig,
    WindowConfig,
)
from monitor.config.values import ConfigError, parse_duration

__all__ = [
    "DEFAULT_MEASURES", "DEFAULT_STORAGE_URL", "AdaptationConfig", "AdaptationPoolConfig",
    "AdapterConfig",
    "BackendConfig", "ConfigError", "DriftConfig", "DriftdConfig", "ExplainConfig", "FeaturesConfig", "LoggingConfig",
    "MeasureConfig", "MetricsConfig", "ModelConfig", "MonitorConfig", "MonitorNotifierConfig", "NotifierConfig",
    "OutboxConfig", "PerformanceAlertConfig", "PerformanceConfig", "QualityCheckConfig", "QualityConfig",
    "ReferenceConfig", "ScheduleConfig",
    "SequentialConfig", "ServerConfig", "SourceConfig", "StorageConfig", "WindowConfig", "apply_env_overrides",
    "build_config", "interpolate", "load_config", "parse_duration",
]
