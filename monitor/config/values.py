"""Plain values of the configuration: its error, durations, and the strict number rules every field follows.

Every number in the configuration is finite and within a stated range, and a boolean is never
taken for a number (YAML reads ``yes`` as true, and true is not 1 rows); the models' base class
(``schema._Strict``) applies ``check_plain_value`` to every field, and plugin options go through
the same check (``check_options``), so a new field cannot forget it.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from datetime import timedelta
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, BeforeValidator

from monitor.redact import echo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}

#: The shortest and the longest duration the configuration takes (1 ms and 3650 days).
MIN_DURATION = 0.001
MAX_DURATION = 3650 * 86400.0


class ConfigError(Exception):
    """The configuration is unusable; the message names the file, the monitor and the key."""


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``30s``, ``5m``, ``1.5h``: finite, 1 ms to 3650 days.

    The ValueError shows the value (cut short); the loader hides it when it came from ``${VAR}``.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"not a duration: {echo(value)} (use a number of seconds or e.g. 30s, 5m, 1h)")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if not match:
            raise ValueError(f"not a duration: {echo(value)} (use a number of seconds or e.g. 30s, 5m, 1h)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, got {echo(value)}")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {echo(value)}")
    if seconds < MIN_DURATION:
        raise ValueError(f"duration must be at least 1ms, got {echo(value)}")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration must be at most 3650d (10 years), got {echo(value)}")
    return seconds


#: A configuration field holding a duration: seconds, or text such as ``30s``; finite, 1 ms to 3650 days.
Duration = Annotated[float, BeforeValidator(parse_duration)]


# ---- URLs ---------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")


def check_url(url: str, schemes: tuple[str, ...] = (), needs_host: bool = True) -> str:
    """``url`` when its parts are sound: a scheme (one of ``schemes`` when given, before any ``+driver``),
    a host when ``needs_host``, a port from 1 to 65535, no whitespace or control characters.

    The ValueError never quotes the URL (it may hold a password); it names the part that is wrong.
    """
    if any(character.isspace() or ord(character) < 32 for character in url):
        raise ValueError("a URL holds no spaces or control characters")
    scheme, separator, rest = url.partition("://")
    if not separator or not _SCHEME.match(scheme):
        raise ValueError("not a URL (expected scheme://host...)")
    if schemes and scheme.split("+")[0].lower() not in schemes:
        raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL, not {scheme[:20]}://")
    authority = re.split(r"[/?#]", rest[rest.rfind("@") + 1:] if "@" in rest else rest, maxsplit=1)[0]
    host, port = authority, ""
    if authority.startswith("["):  # [IPv6]:port
        host, _, tail = authority.partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    if needs_host and not host.strip("[]"):
        raise ValueError("the URL has no host")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"the URL's port must be a number from 1 to 65535, got {port[:10]!r}")
    return url


# ---- numbers and booleans: one rule for every field ------------------------------------------------


def _plain_types(annotation: Any) -> set[type]:
    """The plain types an annotation accepts (``int | None`` → {int, NoneType}); empty for anything else."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _plain_types(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_plain_types(arg) for arg in typing.get_args(annotation)))
    return {annotation} if annotation in (bool, int, float, type(None)) else set()


def check_plain_value(value: Any, annotation: Any) -> Any:
    """Refuse a boolean for a number, a number for a boolean, and a non-finite float; return ``value``.

    ``annotation`` is the field's type; only fields of plain ``bool``/``int``/``float`` types are
    checked (strings of numbers still pass, so ``${VAR}`` and ``DRIFTD_*`` overrides work).
    """
    accepted = _plain_types(annotation)
    if not accepted:
        return value
    numeric = bool(accepted & {int, float})
    if isinstance(value, bool):
        if numeric and bool not in accepted:
            raise ValueError(f"expected a number, got {echo(value)} (YAML reads yes/no/on/off as true/false)")
        return value
    if bool in accepted and not numeric and isinstance(value, (int, float)):
        raise ValueError(f"expected true or false, got {echo(value)}")
    if numeric:
        number = _as_float(value)
        if number is not None and not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {echo(value)}")
    return value


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            return math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def check_model_values(model: type[BaseModel], data: Any, where: str = "") -> None:
    """``check_plain_value`` for every field of ``model`` (and its nested models) given in ``data``.

    For option models of plugins, which need not derive from the configuration's base class.
    ValueError names the option (``pushdown.grace``).
    """
    if not isinstance(data, Mapping):
        return
    for name, field in model.model_fields.items():
        key = field.alias if field.alias is not None and field.alias in data else name
        if key not in data:
            continue
        path = f"{where}.{key}" if where else key
        try:
            check_plain_value(data[key], field.annotation)
        except ValueError as error:
            raise ValueError(f"option {path!r}: {error}") from None
        for inner in _models(field.annotation):
            check_model_values(inner, data[key], path)
        items = data[key] if isinstance(data[key], list) else []
        for index, item in enumerate(items):
            for inner in _models(_item_type(field.annotation)):
                if isinstance(item, Mapping) and set(item) <= {f.alias or n for n, f in inner.model_fields.items()}:
                    check_model_values(inner, item, f"{path}[{index}]")


def _item_type(annotation: Any) -> Any:
    """``X`` of ``list[X]`` (also inside ``list[X] | None``); None for anything else."""
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is list:
            return typing.get_args(arg)[0]
    return None


def _models(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [model for arg in typing.get_args(annotation) for model in _models(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def check_options(options: Mapping[str, Any], annotations: Mapping[str, Any]) -> None:
    """``check_plain_value`` for each option with a known annotation; ValueError names the option."""
    for name, value in options.items():
        if name in annotations:
            try:
                check_plain_value(value, annotations[name])
            except ValueError as error:
                raise ValueError(f"option {name!r}: {error}") from None


def signature_annotations(function: Any) -> dict[str, Any]:
    """The plain annotations of a callable's parameters, taken from their defaults when not annotated."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable hints: fall back to the defaults' types
        hints = {}
    found = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in hints:
            found[name] = hints[name]
        elif parameter.default is not inspect.Parameter.empty and parameter.default is not None:
            found[name] = type(parameter.default)
    return found
