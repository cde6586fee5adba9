"""Reading a configuration file: safe YAML, ``${VAR}`` interpolation, ``DRIFTD_*`` overrides, clear errors."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from monitor.config.schema import (
    DriftdConfig,
    LoggingConfig,
    MetricsConfig,
    ServerConfig,
    StorageConfig,
)
from monitor.config.values import ConfigError

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping holding the same key twice (YAML leaves it to the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def interpolate(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ, f"{where}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _ENV_REFERENCE.sub(substitute, value)


def _with_monitor_name(message: str, raw: Mapping[str, Any]) -> str:
    """Prefix ``monitor 'name':`` to a message about ``monitors[i]...`` when that monitor has a name."""
    match = re.match(r"monitors\[(\d+)\]", message)
    monitors = raw.get("monitors")
    if match and isinstance(monitors, list) and int(match.group(1)) < len(monitors):
        entry = monitors[int(match.group(1))]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            return f"monitor {entry['name']!r}: {message}"
    return message


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Let ``DRIFTD_<SECTION>_<KEY>`` variables (e.g. ``DRIFTD_STORAGE_URL``) override the file."""
    merged = dict(raw)
    for section, model in (("storage", StorageConfig), ("server", ServerConfig),
                           ("logging", LoggingConfig), ("metrics", MetricsConfig)):
        for key in model.model_fields:
            variable = f"DRIFTD_{section}_{key}".upper()
            if variable in environ:
                merged[section] = {**(merged.get(section) or {}), key: environ[variable]}
    return merged


def _describe_error(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    location = list(error["loc"])
    prefix = ""
    if len(location) >= 2 and location[0] == "monitors" and isinstance(location[1], int):
        monitors = raw.get("monitors") or []
        entry = monitors[location[1]] if location[1] < len(monitors) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        prefix = f"monitor {name!r}: " if name else f"monitor #{location[1] + 1}: "
        location = location[2:]
    if not location and not prefix and error["type"] == "value_error":  # a whole-file check (names across sections)
        return _without_input(error["msg"].removeprefix("Value error, "), error.get("input"))
    key = ".".join(str(part) for part in location) or "(top level)"
    return f"{prefix}{key}: {_without_input(error['msg'], error.get('input'))}"


def _without_input(message: str, value: Any) -> str:
    """Drop the offending value from a message: it may be a secret that came from ``${VAR}``."""
    if isinstance(value, str):  # only text can come from ``${VAR}``; numbers stay (they may be bounds)
        message = message.replace(repr(value), "<value hidden>")
        if len(value) >= 4:
            message = message.replace(value, "<value hidden>")
    return message


def build_config(raw: Any, source: str, environ: Mapping[str, str] | None = None) -> DriftdConfig:
    """Validate a parsed YAML tree; ``source`` names it in error messages."""
    environ = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    try:
        raw = apply_env_overrides(interpolate(raw, environ), environ)
    except ConfigError as error:
        raise ConfigError(f"{source}: {_with_monitor_name(str(error), raw)}") from None
    try:
        return DriftdConfig.model_validate(raw)
    except ValidationError as error:
        lines = [_describe_error(detail, raw) for detail in error.errors()]
        raise ConfigError(f"{source}: invalid configuration\n  " + "\n  ".join(lines)) from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> DriftdConfig:
    """Read, interpolate and validate a YAML configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return build_config(raw, str(path), environ)
