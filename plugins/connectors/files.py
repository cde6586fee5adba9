"""The ``files`` connector: CSV, Parquet and JSON-lines files in a directory or matching a glob."""

from __future__ import annotations

import glob
import logging
import os
import time
from typing import Any, Literal, Mapping

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    Batch,
    Connector,
    ConnectorError,
    Cursor,
    hookimpl,
    parse_duration,
    parse_options,
)

log = logging.getLogger(__name__)

Format = Literal["csv", "parquet", "jsonl"]

#: File extensions (lower case) and the format each one is read as.
EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class CsvOptions(BaseModel):
    """How CSV files are parsed."""

    model_config = ConfigDict(extra="forbid", strict=False)

    delimiter: str = Field(default=",", min_length=1, max_length=1)


class FilesOptions(BaseModel):
    """Options of the ``files`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    path: str = Field(min_length=1)
    format: Format | None = None
    csv: CsvOptions = CsvOptions()
    columns: list[str] | None = Field(default=None, min_length=1)
    skip_unreadable_after: float | None = Field(
        default=None, gt=0, description="seconds after its last change an unreadable file is skipped (logged); "
                                        "default: never — the monitor stops at it until it is fixed or removed")

    @field_validator("skip_unreadable_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)



def _extension_format(path: str) -> Format | None:
    """The format a file's extension names, if any."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _complete_lines(data: bytes) -> bytes:
    """Cut a file still being written back to its last newline."""
    return data[: data.rfind(b"\n") + 1]


class FilesConnector(Connector):
    """Reads files in lexicographic path order; the cursor is ``{"file": path, "row": n}``.

    Files sorting before the cursor's file are finished; rows appended to the cursor's file and
    files sorting after it are picked up on later fetches.
    """

    type_name = "files"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(FilesOptions, self.options, "files")
        self._path = os.path.normpath(os.path.expanduser(self.config.path))
        self._cache: dict[str, tuple[tuple[int, int], pa.Table]] = {}
        self._warned: set[str] = set()
        self._skipped: set[str] = set()

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` rows after ``cursor``, spanning files where needed."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        current, consumed = self._parse_cursor(cursor)
        new_cursor = cursor
        parts: list[tuple[str, pa.Table]] = []
        schema: pa.Schema | None = None
        remaining = max_rows
        for path in self._list():
            if current is not None and path < current:
                continue
            try:
                table = self._read(path)
            except FileNotFoundError:
                continue
            except ConnectorError as error:
                if not self._skippable(path, error):
                    raise
                if path != current:
                    if parts:  # the rows before it are returned now; the cursor moves past it next time
                        break
                    current, consumed = path, 0
                continue
            if table.num_columns == 0:  # e.g. JSON lines of only `{}`: no values yet, nothing to count
                continue
            schema = schema or table.schema
            start = consumed if path == current else 0
            if table.num_rows > start:
                part = table.slice(start, remaining)
                parts.append((path, part))
                remaining -= part.num_rows
                new_cursor = {"file": path, "row": start + part.num_rows}
                if remaining == 0:
                    break
        if new_cursor is not None:
            self._cache = {p: v for p, v in self._cache.items() if p >= new_cursor["file"]}
        if not parts:
            empty = schema.empty_table() if schema is not None else pa.table({})
            return Batch(empty, cursor)
        return Batch(self._concat(parts), new_cursor)

    def close(self) -> None:
        """Drop the parsed-file cache."""
        self._cache.clear()

    def _skippable(self, path: str, error: ConnectorError) -> bool:
        """Whether an unreadable file has stayed unchanged long enough to be skipped (logged once)."""
        grace = self.config.skip_unreadable_after
        try:
            age = time.time() - os.stat(path).st_mtime
        except OSError:
            return False
        if grace is None or age < grace:
            return False
        if path not in self._skipped:
            self._skipped.add(path)
            log.error("%s; unchanged for %.0fs (skip_unreadable_after %gs): skipping it, its rows are not "
                      "evaluated", error, age, grace)
        return True

    def _parse_cursor(self, cursor: Cursor) -> tuple[str | None, int]:
        if cursor is None:
            return None, 0
        if (
            isinstance(cursor, Mapping)
            and isinstance(cursor.get("file"), str)
            and isinstance(cursor.get("row"), int)
            and not isinstance(cursor["row"], bool)
            and cursor["row"] >= 0
        ):
            return cursor["file"], cursor["row"]
        raise ConnectorError(
            f"files connector: invalid cursor {cursor!r}, expected {{'file': str, 'row': int}}"
        )

    def _list(self) -> list[str]:
        """The files to read, sorted by path; those of unknown format are skipped."""
        if os.path.isdir(self._path):
            wanted = {self.config.format} if self.config.format else set(EXTENSIONS.values())
            paths = [
                os.path.join(self._path, name)
                for name in os.listdir(self._path)
                if not name.startswith(".") and _extension_format(name) in wanted
            ]
        elif any(char in self._path for char in "*?["):
            paths = glob.glob(self._path, recursive=True)
        elif os.path.exists(self._path):
            paths = [self._path]
        else:
            raise ConnectorError(f"files connector: path {self._path!r} does not exist")
        return sorted(p for p in paths if os.path.isfile(p) and self._readable_format(p))

    def _format(self, path: str) -> Format | None:
        return self.config.format or _extension_format(path)

    def _readable_format(self, path: str) -> bool:
        if self._format(path) is not None:
            return True
        if path not in self._warned:
            self._warned.add(path)
            log.warning("files connector: skipping %s (unknown extension; set 'format')", path)
        return False

    def _read(self, path: str) -> pa.Table:
        """The whole parsed file (cached while its size and mtime stay the same)."""
        stat = os.stat(path)
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            table = self._parse(path, self._format(path))
            try:
                table.column_names
            except UnicodeDecodeError:
                raise pa.ArrowInvalid("a column name holds bytes that are not UTF-8") from None
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as error:
            raise ConnectorError(f"files connector: cannot read {path}: {error}") from error
        names = table.column_names
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:  # Arrow cannot select or combine such a table; say which file and column
            raise ConnectorError(f"files connector: cannot read {path}: column {duplicated[0]!r} appears more than once")
        if self.config.columns is not None and table.num_columns:
            missing = [c for c in self.config.columns if c not in table.column_names]
            if missing:
                raise ConnectorError(
                    f"files connector: {path} has no column {missing[0]!r} "
                    f"(it has {', '.join(table.column_names)})"
                )
            table = table.select(self.config.columns)
        self._cache[path] = (key, table)
        return table

    def _parse(self, path: str, fmt: Format | None) -> pa.Table:
        if fmt == "parquet":
            return pq.read_table(path)
        with open(path, "rb") as file:
            data = _complete_lines(file.read())
        if not data:
            return pa.table({})
        if fmt == "jsonl":
            table = pa_json.read_json(pa.BufferReader(data))
            # The JSON reader lets invalid UTF-8 into string columns; full validation catches it.
            table.validate(full=True)
            return table
        parse = pa_csv.ParseOptions(delimiter=self.config.csv.delimiter)
        table = pa_csv.read_csv(pa.BufferReader(data), parse_options=parse)
        # pyarrow infers ``binary`` for text that is not UTF-8; a text file holding it is corrupt.
        for field in table.schema:
            if pa.types.is_binary(field.type):
                raise pa.ArrowInvalid(f"column {field.name!r} holds bytes that are not UTF-8")
        return table

    def _concat(self, parts: list[tuple[str, pa.Table]]) -> pa.Table:
        """Concatenate per-file slices, promoting types where the files disagree."""
        schema = parts[0][1].schema
        for (before, _), (path, table) in zip(parts, parts[1:]):
            try:
                schema = pa.unify_schemas([schema, table.schema], promote_options="permissive")
            except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
                raise ConnectorError(
                    f"files connector: cannot combine {before} and {path}: {error}"
                ) from error
        return pa.concat_tables([t for _, t in parts], promote_options="permissive")


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``files`` connector."""
    return {"files": FilesConnector}
