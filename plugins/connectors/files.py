"""The ``files`` connector: CSV, Parquet and JSON-lines files in a directory or matching a glob.

The cursor is ``{"file": path, "row": n, "bytes": size, "digest": hex}``: the file read up to, the
rows of it counted, and the length and digest of the bytes those rows came from (``_file_read``).
A file that no longer begins with those bytes was rewritten in place (logrotate ``copytruncate``)
or replaced by a new file of the same name: it is read again from its start, logged once. Files
are walked once per real file (``_file_walk``); a record is consumed only once its line ending is
written (``_file_records``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    Batch,
    Connector,
    ConnectorError,
    Cursor,
    concat_tables,
    fetching_for,
    hookimpl,
    parse_duration,
    parse_options,
)
from plugins.connectors._file_read import Content, Format, Mark, read_content, stat_key
from plugins.connectors._file_walk import WalkLimitError, has_magic, unique_files, walk_glob

log = logging.getLogger(__name__)

#: Files and folders a walk visits at most, unless ``max_files`` says otherwise.
MAX_FILES = 100_000

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

    max_files: int = Field(
        default=MAX_FILES, ge=1, strict=True,
        description="files and folders the walk of a directory or glob visits at most; past it every fetch "
                    "fails naming the bound (nothing is skipped silently)")

    @field_validator("skip_unreadable_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)



def _extension_format(path: str) -> Format | None:
    """The format a file's extension names, if any."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _who() -> str:
    """How a log line names its source: the monitor (when the engine says) and the connector."""
    monitor = fetching_for()
    return f"monitor {monitor!r}: files connector" if monitor else "files connector"


class FilesConnector(Connector):
    """Reads files in lexicographic path order; see the module docstring for the cursor.

    Files sorting before the cursor's file are finished; rows appended to the cursor's file and
    files sorting after it are picked up on later fetches.
    """

    type_name = "files"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(FilesOptions, self.options, "files")
        self._path = os.path.normpath(os.path.expanduser(self.config.path))
        self._cache: dict[str, Content] = {}
        self._warned: set[str] = set()
        self._skipped: set[str] = set()
        self._rewrites: set[tuple[str, str]] = set()
        self._matched: int | None = None

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` rows after ``cursor``, spanning files where needed."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        current, consumed, mark = self._parse_cursor(cursor)
        new_cursor = cursor
        parts: list[tuple[str, pa.Table]] = []
        schema: pa.Schema | None = None
        remaining = max_rows
        paths = self._list()
        for path in paths:
            if current is not None and path < current:
                continue
            is_current = path == current
            before = self._cache.get(path)
            try:
                content = self._read(path, mark if is_current else None)
            except FileNotFoundError:
                continue
            except ConnectorError as error:
                if not self._skippable(path, error):
                    raise
                if not is_current:
                    if parts:  # the rows before it are returned now; the cursor moves past it next time
                        break
                    current, consumed, mark = path, 0, None
                continue
            start = consumed if is_current else 0
            if is_current and mark is not None and not content.continues(mark):
                self._rewritten(path, mark, consumed, content, before)
                start = 0
            table = content.table
            if table.num_columns == 0:  # e.g. JSON lines of only `{}`: no values yet, nothing to count
                continue
            schema = schema or table.schema
            if table.num_rows > start:
                part = table.slice(start, remaining)
                parts.append((path, part))
                remaining -= part.num_rows
                new_cursor = {"file": path, "row": start + part.num_rows,
                              "bytes": content.mark.size, "digest": content.mark.digest}
                if remaining == 0:
                    break
        if new_cursor is not None:
            self._cache = {p: v for p, v in self._cache.items() if p >= new_cursor["file"]}
        if not parts:
            empty = schema.empty_table() if schema is not None else pa.table({})
            return Batch(empty, cursor, files=len(paths))
        return Batch(concat_tables([table for _, table in parts]), new_cursor, files=len(paths))

    def close(self) -> None:
        """Drop the parsed-file cache."""
        self._cache.clear()

    def _rewritten(self, path: str, mark: Mark, consumed: int, content: Content, before: Content | None) -> None:
        """Say once that the cursor's file no longer begins with the bytes its counted rows came from."""
        if (path, mark.digest) in self._rewrites:
            return
        self._rewrites.add((path, mark.digest))
        how = (f"it shrank from {mark.size} to {content.mark.size} bytes" if content.mark.size < mark.size
               else f"its first {mark.size} bytes changed")
        unread = ""
        if before is not None and before.mark == mark and before.table.num_rows > consumed:
            unread = (f"; {before.table.num_rows - consumed} row(s) it held after row {consumed} were "
                      "replaced before they were read")
        log.warning("%s: %s was rewritten in place or replaced (%s): reading it again from its start "
                    "(the %d row(s) read from it before stay counted once)%s", _who(), path, how, consumed, unread)

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
            monitor = fetching_for()
            log.error("%s%s; unchanged for %.0fs (skip_unreadable_after %gs): skipping it, its rows are not "
                      "evaluated", f"monitor {monitor!r}: " if monitor else "", error, age, grace)
        return True

    def _parse_cursor(self, cursor: Cursor) -> tuple[str | None, int, Mark | None]:
        if cursor is None:
            return None, 0, None
        if (
            isinstance(cursor, Mapping)
            and isinstance(cursor.get("file"), str)
            and _count(cursor.get("row"))
        ):
            if "bytes" not in cursor and "digest" not in cursor:  # a cursor stored before the marks
                return cursor["file"], cursor["row"], None
            if _count(cursor.get("bytes")) and isinstance(cursor.get("digest"), str):
                return cursor["file"], cursor["row"], Mark(cursor["bytes"], cursor["digest"])
        raise ConnectorError(
            f"files connector: invalid cursor {cursor!r}, expected "
            "{'file': str, 'row': int, 'bytes': int, 'digest': str}"
        )

    def _list(self) -> list[str]:
        """The files to read, sorted by path, each real file once; those of unknown format are skipped."""
        limit = self.config.max_files
        try:
            if os.path.isdir(self._path):
                wanted = {self.config.format} if self.config.format else set(EXTENSIONS.values())
                with os.scandir(self._path) as entries:
                    names = [entry.path for entry in entries
                             if not entry.name.startswith(".") and _extension_format(entry.name) in wanted]
                paths = unique_files(names, limit)
            elif has_magic(self._path):
                paths, not_followed = walk_glob(self._path, limit)
                for link in not_followed:
                    if link not in self._warned:
                        self._warned.add(link)
                        log.info("%s: not following %s: it leads to a folder already walked (a loop, or a "
                                 "second path to it); each file is read once", _who(), link)
            elif os.path.exists(self._path):
                paths = [self._path]
            else:
                raise ConnectorError(f"files connector: path {self._path!r} does not exist")
        except WalkLimitError as error:
            raise ConnectorError(f"files connector: {self._path}: {error}; narrow the path, move finished "
                                 "files away, or raise max_files") from None
        found = [p for p in paths if os.path.isfile(p) and self._readable_format(p)]
        self._say_when_nothing_matches(len(found))
        return found

    def _say_when_nothing_matches(self, matched: int) -> None:
        """Log once when the path starts or stops matching no file (``driftd_source_files`` shows it too)."""
        if matched == 0 and self._matched != 0:
            log.warning("%s: %s matches no file: nothing to read until one appears", _who(), self._path)
        elif matched and self._matched == 0:
            log.info("%s: %s matches %d file(s) now", _who(), self._path, matched)
        self._matched = matched

    def _format(self, path: str) -> Format | None:
        return self.config.format or _extension_format(path)

    def _readable_format(self, path: str) -> bool:
        if self._format(path) is not None:
            return True
        if path not in self._warned:
            self._warned.add(path)
            log.warning("%s: skipping %s (unknown extension; set 'format')", _who(), path)
        return False

    def _read(self, path: str, mark: Mark | None) -> Content:
        """The parsed file (cached while it is unchanged); with ``mark``, able to tell whether it continues it."""
        cached = self._cache.get(path)
        if cached is not None and cached.key == stat_key(os.stat(path)) and (mark is None or cached.knows(mark)):
            return cached
        fmt = self._format(path)
        assert fmt is not None
        try:
            content = read_content(path, fmt, self.config.csv.delimiter, mark)
            try:
                content.table.column_names
            except UnicodeDecodeError:
                raise pa.ArrowInvalid("a column name holds bytes that are not UTF-8") from None
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as error:
            raise ConnectorError(f"files connector: cannot read {path}: {error}") from error
        table = content.table
        names = table.column_names
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:  # Arrow cannot select or combine such a table; say which file and column
            raise ConnectorError(f"files connector: cannot read {path}: column {duplicated[0]!r} appears "
                                 "more than once")
        if self.config.columns is not None and table.num_columns:
            missing = [c for c in self.config.columns if c not in table.column_names]
            if missing:
                raise ConnectorError(
                    f"files connector: {path} has no column {missing[0]!r} "
                    f"(it has {', '.join(table.column_names)})"
                )
            content.table = table.select(self.config.columns)
        self._cache[path] = content
        return content


def _count(value: object) -> bool:
    """Whether a cursor field is a non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``files`` connector."""
    return {"files": FilesConnector}
