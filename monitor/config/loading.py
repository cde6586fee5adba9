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
from monitor.config.errors import describe_errors
from monitor.config.values import ConfigError
from monitor.redact import cut, mask_urls

#: The largest configuration file read, and the most values its YAML may expand to (anchors and
#: aliases can make a few hundred bytes expand without bound: "billion laughs").
MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000

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


def interpolate(value: Any, environ: Mapping[str, str], where: str = "", secrets: set[str] | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree.

    Each string that took a value from the environment is added to ``secrets``: error messages
    never show it.
    """
    if isinstance(value, dict):
        return {key: interpolate(item, environ, f"{where}.{key}" if where else str(key), secrets)
                for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ, f"{where}[{index}]", secrets) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{cut(where, 100)}: environment variable {name} is not set")

    result = _ENV_REFERENCE.sub(substitute, value)
    if secrets is not None and result != value:
        secrets.add(result)
    return result


def _with_monitor_name(message: str, raw: Mapping[str, Any]) -> str:
    """Prefix ``monitor 'name':`` to a message about ``monitors[i]...`` when that monitor has a name."""
    match = re.match(r"monitors\[(\d+)\]", message)
    monitors = raw.get("monitors")
    if match and isinstance(monitors, list) and int(match.group(1)) < len(monitors):
        entry = monitors[int(match.group(1))]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            return f"monitor {cut(repr(entry['name']), 60)}: {message}"
    return message


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str],
                        secrets: set[str] | None = None) -> dict[str, Any]:
    """Let ``DRIFTD_<SECTION>_<KEY>`` variables (e.g. ``DRIFTD_STORAGE_URL``) override the file."""
    merged = dict(raw)
    for section, model in (("storage", StorageConfig), ("server", ServerConfig),
                           ("logging", LoggingConfig), ("metrics", MetricsConfig)):
        for key in model.model_fields:
            variable = f"DRIFTD_{section}_{key}".upper()
            if variable in environ:
                current = merged.get(section)
                merged[section] = {**(current if isinstance(current, dict) else {}), key: environ[variable]}
                if secrets is not None:
                    secrets.add(environ[variable])
    return merged


def build_config(raw: Any, source: str, environ: Mapping[str, str] | None = None) -> DriftdConfig:
    """Validate a parsed YAML tree; ``source`` names it in error messages."""
    environ = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    secrets: set[str] = set()
    try:
        raw = apply_env_overrides(interpolate(raw, environ, secrets=secrets), environ, secrets)
    except ConfigError as error:
        raise ConfigError(f"{source}: {_with_monitor_name(str(error), raw)}") from None
    try:
        return DriftdConfig.model_validate(raw)
    except ValidationError as error:
        lines = describe_errors(error.errors(), raw, DriftdConfig, secrets)
        raise ConfigError(f"{source}: invalid configuration\n  " + "\n  ".join(lines)) from None


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document in ``text``, its alias expansion bounded; ConfigError naming ``source``."""
    try:
        loader = _UniqueKeyLoader(text)
    except yaml.YAMLError as error:  # the reader checks the characters at once
        raise ConfigError(f"{source}: not valid YAML: {_short_yaml_error(error)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node)
        if size < 0:
            raise ConfigError(f"{source}: an alias refers to a value that holds it (a loop); refusing to load it")
        if size > MAX_NODES:
            raise ConfigError(f"{source}: the YAML expands to more than {MAX_NODES:,} values (anchors and "
                              "aliases nested too deep?); refusing to load it")
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {_short_yaml_error(error)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: the YAML nests too deep") from None
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document holds once every alias is expanded (at most ``MAX_NODES + 1``); -1 for a loop."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = min(MAX_NODES + 1, 1 + sum(sizes[id(child)] for child in children))
            continue
        if key in open_nodes:  # an alias to an enclosing node: infinite once expanded
            return -1
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return -1
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line_at(mark: yaml.Mark | None) -> str:
    """The source line a YAML mark points into, without its indentation."""
    if mark is None or not isinstance(mark.buffer, str):
        return ""
    start = mark.buffer.rfind("\n", 0, mark.pointer) + 1
    end = mark.buffer.find("\n", mark.pointer)
    return mark.buffer[start:end if end >= 0 else len(mark.buffer)].strip().rstrip("\0")


def _short_yaml_error(error: yaml.YAMLError) -> str:
    """PyYAML's message without the quoted source lines (they may be huge or hold a secret)."""
    if isinstance(error, yaml.MarkedYAMLError):
        parts = []
        for text, mark in ((error.context, error.context_mark), (error.problem, error.problem_mark)):
            if text:
                parts.append(f"{text} (line {mark.line + 1}, column {mark.column + 1})" if mark else str(text))
        line = _line_at(error.problem_mark)
        return cut(" ".join(parts), 300) + (f": {cut(repr(mask_urls(line)), 80)}" if line else "")
    return cut(str(error).splitlines()[0] if str(error) else type(error).__name__, 300)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> DriftdConfig:
    """Read, interpolate and validate a YAML configuration file."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror or error}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: the configuration file is larger than {MAX_BYTES // 1024} KiB; refusing to load it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: not utf-8 text (byte {error.start})") from None
    return build_config(parse_yaml(text, str(path)), str(path), environ)
