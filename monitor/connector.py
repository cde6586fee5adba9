"""The connector contract: what a source plugin gives the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Where a source was read up to. Anything JSON can hold; ``None`` means "from the start".
Cursor = Any


class ConnectorError(Exception):
    """A source could not be read (down, unreachable, unreadable data)."""


class ConnectorOptionsError(ConnectorError):
    """A connector was given options it cannot work with."""


@dataclass(frozen=True)
class Batch:
    """Rows read from a source strictly after a cursor, and the cursor after them."""

    table: pa.Table
    cursor: Cursor

    @property
    def num_rows(self) -> int:
        """How many rows the batch holds."""
        return self.table.num_rows


class Connector:
    """Base class for connectors: built from ``options``; ``fetch`` rows after a cursor.

    A connector keeps no durable state of its own. The engine stores the cursor in the same
    transaction as the results of the rows it covers, and hands it back on the next ``fetch``.
    """

    #: The type name users write in ``source.type``.
    type_name: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return at most ``max_rows`` rows strictly after ``cursor`` and the cursor after them."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and files; the connector is not used afterwards."""


def parse_options(model: type[ModelT], options: Mapping[str, Any], type_name: str) -> ModelT:
    """Validate connector options with a pydantic model; ConnectorOptionsError names each bad option."""
    try:
        return model.model_validate(options)
    except ValidationError as error:
        raise ConnectorOptionsError(f"{type_name} connector: " + describe_options_error(model, error)) from None


def describe_options_error(model: type[BaseModel], error: ValidationError) -> str:
    """One line naming each bad option of a plugin's options model (unknown, missing, invalid)."""
    lines = []
    for detail in error.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"]).lstrip(".")
        if detail["type"] == "extra_forbidden":
            names = (field.alias or name for name, field in model.model_fields.items())
            known = f"; expected one of {', '.join(names)}" if len(detail["loc"]) == 1 else ""
            lines.append(f"option {loc!r} is unknown{known}")
        elif detail["type"] == "missing":
            lines.append(f"option {loc!r} is required")
        else:
            message = detail["msg"].removeprefix("Value error, ")
            got = "" if isinstance(detail["input"], Mapping) else f" (got {detail['input']!r})"
            lines.append(f"option {loc!r}: {message}{got}")
    return "; ".join(lines)
