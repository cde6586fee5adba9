"""Text that is safe to show: passwords in URLs masked, echoed values cut short.

Every place that logs or echoes a URL or a value from the configuration goes through here, so a
malformed URL (an unescaped ``#``, ``@`` or ``/`` in its password) or a huge value cannot leak a
secret or flood a log line.
"""

from __future__ import annotations

import re
from typing import Any

#: How many characters of a value an error message echoes at most.
ECHO_LIMIT = 60

#: ``scheme://`` up to the end of the URL (whitespace or a quote ends it).
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"`<>]*)")
MASK = "***"


def _mask_rest(rest: str) -> str:
    """Mask the user information of one URL's text after ``//``: up to its LAST ``@`` (the host's)."""
    at = rest.rfind("@")
    if at < 0:
        return rest
    userinfo, host = rest[:at], rest[at:]
    user, colon, _ = userinfo.partition(":")
    if colon and "@" not in user and "/" not in user:
        return f"{user}:{MASK}{host}"
    return f"{MASK}{host}"


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it masked, however malformed the URL.

    Everything from the scheme's ``//`` to the host's ``@`` (the last ``@`` of the URL) but the
    user name is replaced, so a password holding ``#``, ``@``, ``/`` or ``?`` unescaped, or a token
    put in by ``${VAR}``, is masked whole.
    """
    if "://" not in text:
        return text
    return _URL.sub(lambda match: match.group("scheme") + _mask_rest(match.group("rest")), text)


def cut(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` shortened to about ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def echo(value: Any, limit: int = ECHO_LIMIT) -> str:
    """A value as an error message may show it: ``repr`` for text, URLs masked, cut short."""
    if isinstance(value, str):
        return cut(repr(mask_urls(value)), limit)
    if isinstance(value, (bool, int, float)) or value is None:
        return cut(repr(value), limit)
    return f"a {type(value).__name__}"


def safe_line(text: str, limit: int = 300) -> str:
    """One line of ``text`` fit for a log or an error: URLs masked, the first line only, cut short."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return cut(mask_urls(first), limit)
