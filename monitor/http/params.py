"""The API's building blocks: errors as JSON, parameters parsed and documented, endpoints."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Literal

from starlette.responses import JSONResponse

MAX_LIMIT = 500


class ApiError(Exception):
    """A request the API answers with an error status and a JSON body."""

    def __init__(self, status: int, message: str, parameter: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.parameter, self.headers = status, message, parameter, headers

    def response(self) -> JSONResponse:
        """The JSON error response: ``{"error": ..., "parameter": ...}``."""
        body = {"error": self.message, **({"parameter": self.parameter} if self.parameter else {})}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


Kind = Literal["string", "integer", "datetime", "enum", "cursor", "pair_cursor"]


@dataclass(frozen=True)
class Param:
    """A path or query parameter: how it is parsed, validated and documented."""

    name: str
    where: Literal["path", "query"]
    kind: Kind
    description: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, raw: str | None) -> Any:
        """The parameter's value from its text; ApiError(400) when malformed."""
        if raw is None:
            return self.default
        if self.kind == "integer":
            if not re.fullmatch(r"-?\d{1,18}", raw):
                raise ApiError(400, f"{self.name} must be an integer", self.name)
            value = int(raw)
            too_small = self.minimum is not None and value < self.minimum
            if too_small or (self.maximum is not None and value > self.maximum):
                raise ApiError(400, f"{self.name} must be between {self.minimum} and {self.maximum}", self.name)
            return value
        if self.kind == "datetime":
            return parse_time(raw, self.name)
        if self.kind == "enum":
            if raw not in self.choices:
                raise ApiError(400, f"{self.name} must be one of {', '.join(self.choices)}", self.name)
            return raw
        if self.kind == "cursor":
            if not re.fullmatch(r"\d{1,18}", raw):
                raise ApiError(400, "cursor must be the `next` value of the previous page", self.name)
            return int(raw)
        if self.kind == "pair_cursor":
            if not re.fullmatch(r"\d{1,18}-\d{1,18}", raw):
                raise ApiError(400, "cursor must be the `next` value of the previous page", self.name)
            seq, result_id = raw.split("-")
            return int(seq), int(result_id)
        if not raw or len(raw) > 200:
            raise ApiError(400, f"{self.name} must be 1 to 200 characters", self.name)
        return raw

    def schema(self) -> dict[str, Any]:
        """The parameter's OpenAPI schema."""
        if self.kind == "integer":
            bounds = {"minimum": self.minimum, "maximum": self.maximum, "default": self.default}
            return {"type": "integer", **{key: value for key, value in bounds.items() if value is not None}}
        if self.kind == "datetime":
            return {"type": "string", "format": "date-time"}
        if self.kind == "enum":
            return {"type": "string", "enum": list(self.choices)}
        return {"type": "string"}


def parse_time(raw: str, parameter: str) -> datetime:
    """An ISO 8601 time as aware UTC; a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{parameter} must be an ISO 8601 time such as 2026-01-31T12:00:00Z "
                            "(percent-encode a '+' offset)", parameter) from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


NAME = Param("name", "path", "string", "the monitor's configured name")
SINCE = Param("since", "query", "datetime", "only items at or after this time (ISO 8601, UTC)")
UNTIL = Param("until", "query", "datetime", "only items before this time (ISO 8601, UTC)")
LIMIT = Param("limit", "query", "integer", "items per page", default=50, minimum=1, maximum=MAX_LIMIT)
CURSOR = Param("cursor", "query", "cursor", "the `next` value of the previous page")
FEATURE = Param("feature", "query", "string", "only this feature (`*` for multivariate measures)")
MEASURE = Param("measure", "query", "string", "only this measure, e.g. ks")


@dataclass(frozen=True)
class Endpoint:
    """One operation: its route, parameters, documented responses and handler (whose docstring is its summary)."""

    method: Literal["GET", "POST"]
    path: str
    handler: Callable[..., dict[str, Any]]
    response: str
    params: tuple[Param, ...] = ()
    write: bool = False
    errors: dict[int, str] = field(default_factory=dict)



def as_json(value: Any) -> Any:
    """Times as ISO 8601 UTC, +-inf as the strings "Infinity"/"-Infinity", NaN as null, recursively.

    JSON has no infinity; an infinite statistic is a real (maximal) result, and these strings are
    what ``float()`` in Python and ``Number()`` in JavaScript read back as infinity.
    """
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return value
