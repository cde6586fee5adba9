"""What driftd's HTTP hand-overs share (the ``webhook`` adapter and the HTTP notifiers): compact JSON
bodies, the HMAC-SHA256 signature, header values from environment variables, redaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, Mapping

import httpx

#: The header that carries the body's HMAC-SHA256 signature.
SIGNATURE_HEADER = "X-Driftd-Signature"


def encode_body(body: Any) -> bytes:
    """Compact UTF-8 JSON (NaN and infinities are refused by design: they are not JSON)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False).encode("utf-8")


def signature(key: str, body: bytes) -> str:
    """The ``X-Driftd-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256 of the exact bytes>``."""
    return "sha256=" + hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def safe_location(url: str) -> str:
    """``scheme://host[:port]/path`` of a URL: no credentials and no query (either may hold a key)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{f':{parsed.port}' if parsed.port else ''}{parsed.path}"


def redact(text: str | None, secrets: list[str]) -> str | None:
    """``text`` with every secret replaced by ``***``."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def excerpt(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, stripped, with an ellipsis when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


def secret_headers(headers_env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Header name → value from the environment variable named for it, and the values (secrets).

    KeyError names the option of a variable that is unset.
    """
    headers = {}
    for header, variable in headers_env.items():
        value = os.environ.get(variable)
        if not value:
            raise KeyError(f"option 'headers_env.{header}': environment variable {variable} is not set")
        headers[header] = value
    return headers, list(headers.values())
