"""Reading one file of a ``files`` source: its complete records, parsed, and a fingerprint of their bytes.

The fingerprint (length and BLAKE2b digest of the bytes the rows came from) goes into the cursor,
so the next fetch — in this process or after a restart — can tell a file that grew by appended
rows (its first bytes are unchanged) from one rewritten in place or replaced by a new file of the
same name (they are not): the latter is read again from its start.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from plugins.connectors._file_records import csv_records_end, last_line_end
from plugins.connectors._records import RecordError, json_object, records_table

Format = Literal["csv", "parquet", "jsonl"]


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=16)


@dataclass(frozen=True)
class Mark:
    """What a cursor remembers of its file: how many bytes its rows came from, and their digest."""

    size: int
    digest: str


@dataclass
class Content:
    """One read of a file: the rows of its complete records and the mark of the bytes they came from."""

    table: pa.Table
    mark: Mark
    #: (size, mtime, inode, change time): the same key means the same bytes, no need to read again
    key: tuple[int, int, int, int]
    #: digests of leading parts of the bytes, by length (the whole, and those a cursor asked about)
    prefixes: dict[int, str] = field(default_factory=dict)

    def continues(self, mark: Mark) -> bool:
        """Whether these bytes begin with the bytes ``mark`` describes (the file only grew since)."""
        return self.mark.size >= mark.size and self.prefixes.get(mark.size) == mark.digest

    def knows(self, mark: Mark) -> bool:
        """Whether ``continues`` can answer for ``mark`` without reading the file again."""
        return mark.size in self.prefixes or mark.size > self.mark.size


def stat_key(info: os.stat_result) -> tuple[int, int, int, int]:
    """What identifies a version of a file without reading it."""
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns


def read_content(path: str, fmt: Format, delimiter: str, mark: Mark | None) -> Content:
    """Read and parse the complete records of ``path``; with ``mark``, also learn whether it continues it.

    Raises ``pa.ArrowException`` or ``OSError`` when the file cannot be read or parsed.
    """
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        data = file.read()
    view = memoryview(data)
    prefixes: dict[int, str] = {}
    known_end = 0  # where a record is known to end: the earlier read's end, when these bytes continue it
    head = _hasher()
    if mark is not None and mark.size <= len(data):
        head.update(view[:mark.size])
        prefixes[mark.size] = head.hexdigest()
        known_end = mark.size if prefixes[mark.size] == mark.digest else 0
        if not known_end:
            head = _hasher()
    if fmt == "parquet":
        end = len(data)
    elif fmt == "jsonl":
        end = last_line_end(data)
    else:
        end = csv_records_end(data, delimiter, start=known_end)
    if known_end and end >= known_end:
        head.update(view[known_end:end])
    else:
        head = _hasher()
        head.update(view[:end])
    prefixes[end] = head.hexdigest()
    quoted = data.find(b'"', 0, end) >= 0
    table = parse(pa.py_buffer(view[:end]), fmt, delimiter, quoted) if end else pa.table({})
    return Content(table, Mark(end, prefixes[end]), stat_key(info), prefixes)


def parse(data: pa.Buffer, fmt: Format, delimiter: str, quoted: bool = True) -> pa.Table:
    """Rows of complete records of one format (``quoted``: the bytes hold a quote character)."""
    if fmt == "parquet":
        return pq.read_table(pa.BufferReader(data))
    if fmt == "jsonl":
        return _parse_jsonl(data)
    # quoted values may hold line endings: Arrow must not cut its blocks at them
    parse_options = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=quoted)
    table = pa_csv.read_csv(pa.BufferReader(data), parse_options=parse_options)
    # pyarrow infers ``binary`` for text that is not UTF-8; a text file holding it is corrupt.
    for column in table.schema:
        if pa.types.is_binary(column.type):
            raise pa.ArrowInvalid(f"column {column.name!r} holds bytes that are not UTF-8")
    return table


def _parse_jsonl(data: pa.Buffer) -> pa.Table:
    try:
        table = pa_json.read_json(pa.BufferReader(data))
    except pa.ArrowInvalid as error:
        if "changed from" not in str(error):
            raise
        # a field whose JSON type changes between lines (a number, then a string): Arrow refuses the
        # file; read it line by line instead, such a column as text (the engine reads each value)
        return _jsonl_by_line(data.to_pybytes())
    # The JSON reader lets invalid UTF-8 into string columns; full validation catches it.
    table.validate(full=True)
    return table


def _jsonl_by_line(data: bytes) -> pa.Table:
    records = []
    for number, line in enumerate(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(json_object(line))
        except RecordError as error:
            raise pa.ArrowInvalid(f"JSON parse error in row {len(records)} (line {number}): {error}") from None
    return records_table(records) if records else pa.table({})
