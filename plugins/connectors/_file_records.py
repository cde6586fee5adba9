"""Where the complete records of a text file still being written end (CSV and JSON lines).

A record is complete once its line ending is written: LF, CRLF or a lone CR (old Mac files). In
CSV a line ending inside a quoted field belongs to the value, so the quotes decide, exactly as
Arrow's CSV parser reads them: a field that *starts* with the quote character is quoted until a
quote not doubled (``""`` is a quote inside the value); a quote anywhere else is an ordinary
character. JSON text cannot hold a raw line ending inside a value, so for JSON lines the last
line ending is the end.
"""

from __future__ import annotations

import re
from functools import lru_cache

BOM = b"\xef\xbb\xbf"


def last_line_end(data: bytes) -> int:
    """The length of ``data`` up to and including its last LF or CR (0 when it has none)."""
    return max(data.rfind(b"\n"), data.rfind(b"\r")) + 1


@lru_cache(maxsize=16)
def _records_pattern(delimiter: bytes, quote: bytes) -> re.Pattern[bytes]:
    d, q = re.escape(delimiter), re.escape(quote)
    # possessive everywhere: Arrow's parser never backtracks, and neither may this scan
    field = rb"(?:" + q + rb"(?:[^" + q + rb"]|" + q + q + rb")*+" + q + rb"[^" + d + rb"\r\n]*+" \
        + rb"|(?!" + q + rb")[^" + d + rb"\r\n]*+)"
    record = field + rb"(?:" + d + field + rb")*+(?:\r\n|\n|\r)"
    return re.compile(rb"(?:" + record + rb")*+")


def csv_records_end(data: bytes, delimiter: str = ",", quote: str = '"', start: int = 0) -> int:
    """The length of the leading complete CSV records of ``data`` (a record still being written is left out).

    ``start``: a position known to end a record (an earlier read of the same bytes), where the scan begins.
    """
    quote_byte = quote.encode()
    if quote_byte not in data:
        return last_line_end(data)
    if start == 0 and data.startswith(BOM):
        start = len(BOM)
    match = _records_pattern(delimiter.encode(), quote_byte).match(data, start)
    assert match is not None  # the pattern matches the empty string
    end = match.end()
    return 0 if data.startswith(BOM) and end <= len(BOM) else end


def complete_csv(data: bytes, delimiter: str = ",", quote: str = '"') -> bytes:
    """The leading complete CSV records of ``data``."""
    return data[:csv_records_end(data, delimiter, quote)]


def complete_lines(data: bytes) -> bytes:
    """The leading complete lines of JSON-lines ``data``."""
    return data[:last_line_end(data)]
