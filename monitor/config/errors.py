"""Validation errors as short lines: the monitor and the key, the cause, the value when it is no secret,
and for an unknown key the one probably meant."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Mapping

from pydantic import BaseModel

from monitor.redact import cut, echo

#: Lines an invalid configuration reports at most (the rest are counted).
MAX_LINES = 20
HIDDEN = "<value hidden: it comes from the environment>"


def describe_errors(errors: list[Mapping[str, Any]], raw: Mapping[str, Any], root: type[BaseModel],
                    secrets: set[str]) -> list[str]:
    """One short line per error, ``MAX_LINES`` at most; values in ``secrets`` are never shown."""
    lines = [describe_error(error, raw, root, secrets) for error in errors[:MAX_LINES]]
    if len(errors) > MAX_LINES:
        lines.append(f"… and {len(errors) - MAX_LINES} more problems")
    return lines


def describe_error(error: Mapping[str, Any], raw: Mapping[str, Any], root: type[BaseModel],
                   secrets: set[str]) -> str:
    """``monitor 'name': key.path: cause (got value)``, at most a few hundred characters."""
    location = list(error["loc"])
    prefix = ""
    if len(location) >= 2 and location[0] == "monitors" and isinstance(location[1], int):
        monitors = raw.get("monitors") or []
        entry = monitors[location[1]] if location[1] < len(monitors) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        prefix = f"monitor {cut(repr(name), 60)}: " if isinstance(name, str) else f"monitor #{location[1] + 1}: "
    value = error.get("input")
    if not location and error["type"] == "value_error":  # a whole-file check (names across sections)
        message = str(error["msg"]).removeprefix("Value error, ")
        return cut(_hide(message, value) if _is_secret(value, secrets) else message, 400)
    key = ".".join(cut(str(part), 40) for part in (location[2:] if prefix else location)) or "(top level)"
    secret = _is_secret(value, secrets)
    if error["type"] == "extra_forbidden":
        cause = f"unknown key{_suggestion(root, location)}"
    elif error["type"] == "missing":
        cause = "Field required"
    else:
        cause = str(error["msg"]).removeprefix("Value error, ")
        if secret:
            cause = _hide(cause, value)
        elif _scalar(value) and echo(value) not in cause:
            cause += f" (got {echo(value)})"
    return cut(f"{prefix}{key}: {cause}", 400)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_secret(value: Any, secrets: set[str]) -> bool:
    return isinstance(value, str) and any(value == secret or (len(secret) >= 4 and secret in value)
                                          for secret in secrets)


def _hide(message: str, value: str) -> str:
    """Drop a secret value (in any form an error may quote it) from a message."""
    for form in (echo(value), repr(value), value):
        if form:
            message = message.replace(form, HIDDEN)
    return message


# ---- "did you mean": the keys a model takes at a location ------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The types inside ``X | None``, ``Annotated[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [inner for arg in typing.get_args(annotation) for inner in _unwrap(arg)]
    return [annotation]


def _model_of(annotation: Any, rest: list[Any]) -> type[BaseModel] | None:
    """The model reached by following ``rest`` (field names, list indexes, mapping keys) from ``annotation``."""
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if not rest:
                return candidate
            field = candidate.model_fields.get(str(rest[0]))
            if field is not None:
                found = _model_of(field.annotation, rest[1:])
                if found is not None:
                    return found
        elif typing.get_origin(candidate) in (list, dict) and rest:
            found = _model_of(typing.get_args(candidate)[-1], rest[1:])
            if found is not None:
                return found
    return None


def _keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _suggestion(root: type[BaseModel], location: list[Any]) -> str:
    """``; did you mean 'window'?`` for a misspelt key, ``; it belongs under 'schedule'`` for a misplaced one."""
    model = _model_of(root, location[:-1])
    if model is None:
        return ""
    unknown = str(location[-1])
    keys = _keys(model)
    close = difflib.get_close_matches(unknown, keys, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    for name, field in model.model_fields.items():
        for inner in _unwrap(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and unknown in _keys(inner):
                return f"; it belongs under {(field.alias or name)!r} ({name}.{unknown})"
    return f" (expected one of: {cut(', '.join(keys), 200)})"
