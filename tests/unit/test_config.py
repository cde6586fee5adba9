"""The configuration file: loading, validation messages, interpolation and overrides."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import DEFAULT_STORAGE_URL, ConfigError, load_config, parse_duration

VALID = """\
storage:
  url: sqlite:///history.db
monitors:
  - name: sensors
    source:
      type: synthetic
      options: {seed: 7}
    features:
      numeric: [temperature, pressure]
      categorical: [site]
    window:
      rows: 500
    schedule:
      interval: 30s
    measures: [ks, psi]
    drift:
      share: 0.5
      consecutive: 2
"""


def write(tmp_path: Path, text: str, name: str = "driftd.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def monitor_yaml(**sections: str) -> str:
    """A one-monitor config named 'sensors' whose sections can be replaced (YAML flow style)."""
    parts = {
        "source": "{type: files, options: {path: data.csv}}",
        "features": "{numeric: [x]}",
        "window": "{rows: 100}",
        **sections,
    }
    body = "\n".join(f"    {key}: {value}" for key, value in parts.items())
    return f"monitors:\n  - name: sensors\n{body}\n"


def error_for(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={} if environ is None else environ)
    message = str(caught.value)
    assert str(path) in message, message
    return message


def test_valid_file_loads_every_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={})
    assert config.storage.url == "sqlite:///history.db"
    assert config.server.host == "127.0.0.1"
    (monitor,) = config.monitors
    assert monitor.name == "sensors"
    assert monitor.source.type == "synthetic" and monitor.source.options == {"seed": 7}
    assert monitor.features.names == ["temperature", "pressure", "site"]
    assert monitor.window.rows == 500 and monitor.window.span is None
    assert monitor.schedule.interval == 30.0
    assert set(monitor.measures) == {"ks", "psi"}
    assert (monitor.drift.share, monitor.drift.consecutive) == (0.5, 2)
    assert config.monitor("sensors") is monitor


def test_unknown_monitor_name_lists_configured_ones(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={})
    with pytest.raises(ConfigError, match="sensors"):
        config.monitor("nope")


def test_span_window_with_timestamp_is_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, monitor_yaml(window="{span: 5m, timestamp: ts}")), environ={})
    window = config.monitors[0].window
    assert (window.span, window.timestamp, window.rows) == (300.0, "ts", None)


@pytest.mark.parametrize(
    ("sections", "key", "fragment"),
    [
        ({"window": "{rows: many}"}, "window.rows", "integer"),
        ({"window": "{rows: 10, colour: red}"}, "window.colour",
         "unknown key (expected one of: rows, span, timestamp)"),
        ({"drift": "{share: 0.3, consecutve: 2}"}, "drift.consecutve", "unknown key; did you mean 'consecutive'?"),
        ({"features": "{numeric: [x], categorical: [x]}"}, "features", "both numeric and categorical"),
        ({"window": "{rows: 10, span: 1m, timestamp: ts}"}, "window", "exactly one of 'rows' or 'span'"),
        ({"window": "{span: 1m}"}, "window", "timestamp"),
        ({"window": "{span: soon, timestamp: ts}"}, "window.span", "not a duration"),
        ({"schedule": "{interval: 10 parsecs}"}, "schedule.interval", "not a duration"),
        ({"window": "{rows: 0}"}, "window.rows", "greater than or equal to 1"),
    ],
)
def test_invalid_monitor_key_names_file_monitor_and_key(
    tmp_path: Path, sections: dict[str, str], key: str, fragment: str
) -> None:
    message = error_for(tmp_path, monitor_yaml(**sections))
    assert f"monitor 'sensors': {key}:" in message
    assert fragment in message


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    text = "monitors:\n  - name: sensors\n    source: {type: synthetic}\n    features: {numeric: [x]}\n"
    message = error_for(tmp_path, text)
    assert "monitor 'sensors': window: Field required" in message


def test_monitor_without_name_is_named_by_position(tmp_path: Path) -> None:
    text = monitor_yaml() + "  - source: {type: synthetic}\n    features: {numeric: [x]}\n    window: {rows: 5}\n"
    message = error_for(tmp_path, text)
    assert "monitor #2: name: Field required" in message


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    message = error_for(tmp_path, "storage: {url: 'sqlite://'}\nstorgae: {}\n")
    assert "storgae: unknown key; did you mean 'storage'?" in message


def test_duplicate_monitor_names_are_rejected(tmp_path: Path) -> None:
    text = monitor_yaml() + "  - name: sensors\n    source: {type: synthetic}\n    features: {numeric: [y]}\n    window: {rows: 5}\n"
    message = error_for(tmp_path, text)
    assert "monitor 'sensors'" in message and "monitors" in message


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    message = error_for(tmp_path, "monitors: [\n  - name: a\n")
    assert "not valid YAML" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load_config(path, environ={})
    assert str(path) in str(caught.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    message = error_for(tmp_path, "- a\n- b\n")
    assert "mapping" in message and "list" in message


def test_empty_file_is_a_valid_config_without_monitors(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.monitors == []
    assert config.storage.url == DEFAULT_STORAGE_URL


def test_env_interpolation_and_defaults(tmp_path: Path) -> None:
    text = monitor_yaml(source="{type: sql, options: {url: '${DB_URL}', password: '${DB_PASSWORD}'}}")
    text = "storage: {url: '${STORE:-sqlite:///fallback.db}'}\n" + text
    config = load_config(write(tmp_path, text), environ={"DB_URL": "postgresql://db/x", "DB_PASSWORD": "s3cr3t!"})
    assert config.storage.url == "sqlite:///fallback.db"
    assert config.monitors[0].source.options == {"url": "postgresql://db/x", "password": "s3cr3t!"}


def test_interpolation_inside_a_longer_string_and_set_value_beats_default(tmp_path: Path) -> None:
    text = "storage: {url: 'postgresql://${USER_NAME:-nobody}@${HOST:-localhost}/driftd'}\n"
    config = load_config(write(tmp_path, text), environ={"HOST": "db.internal"})
    assert config.storage.url == "postgresql://nobody@db.internal/driftd"


def test_unset_variable_names_key_path_and_variable(tmp_path: Path) -> None:
    text = monitor_yaml(source="{type: sql, options: {password: '${DB_PASSWORD}'}}")
    message = error_for(tmp_path, text)
    assert "DB_PASSWORD" in message
    assert "monitors[0].source.options.password" in message


def test_env_overrides_beat_the_file(tmp_path: Path) -> None:
    text = "storage: {url: 'sqlite:///file.db'}\nserver: {port: 1234, host: 0.0.0.0}\nlogging: {level: INFO}\n"
    environ = {"DRIFTD_STORAGE_URL": "postgresql://override/db", "DRIFTD_SERVER_PORT": "9999",
               "DRIFTD_LOGGING_LEVEL": "DEBUG"}
    config = load_config(write(tmp_path, text), environ=environ)
    assert config.storage.url == "postgresql://override/db"
    assert config.server.port == 9999
    assert config.server.host == "0.0.0.0"  # untouched keys of an overridden section stay
    assert config.logging.level == "DEBUG"


def test_env_override_is_validated_like_the_file(tmp_path: Path) -> None:
    message = error_for(tmp_path, "", environ={"DRIFTD_SERVER_PORT": "not-a-port"})
    assert "server.port" in message


@pytest.mark.parametrize("measures", ["[ks, psi, js]", "{ks: null, psi: {threshold: 0.2}, js: ~}"])
def test_measures_as_list_or_mapping_with_nulls(tmp_path: Path, measures: str) -> None:
    config = load_config(write(tmp_path, monitor_yaml(measures=measures)), environ={})
    chosen = config.monitors[0].measures
    assert list(chosen) == ["ks", "psi", "js"]
    assert chosen["ks"].threshold is None
    if "threshold" in measures:
        assert chosen["psi"].threshold == 0.2


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(5, 5.0), (2.5, 2.5), ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("1.5h", 5400.0),
     ("2d", 172800.0), (" 7 ", 7.0), ("10 m", 600.0)],
)
def test_parse_duration_units(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["soon", "5 minutes", "-3s", 0, "0s", True, "1w"])
def test_parse_duration_rejects_nonsense(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    "sections",
    [
        {"window": "{span: '${SECRET}', timestamp: ts}"},
        {"schedule": "{interval: '${SECRET}'}"},
        {"window": "{rows: '${SECRET}'}"},
        {"drift": "{share: '${SECRET}'}"},
        {"source": "{type: synthetic, options: '${SECRET}'}"},
    ],
)
def test_errors_never_echo_an_interpolated_secret(tmp_path: Path, sections: dict[str, str]) -> None:
    secret = "hunter2-Top-Secret"
    message = error_for(tmp_path, monitor_yaml(**sections), environ={"SECRET": secret})
    assert "monitor 'sensors'" in message
    assert secret not in message
    assert "hunter2" not in message


def test_env_override_errors_do_not_echo_the_value(tmp_path: Path) -> None:
    message = error_for(tmp_path, "", environ={"DRIFTD_LOGGING_LEVEL": "hunter2-Top-Secret"})
    assert "logging.level" in message
    assert "hunter2" not in message
