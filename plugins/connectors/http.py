"""The ``http`` connector: polls a JSON endpoint that pages through records by a cursor parameter.

Each fetch is one ``GET url?{cursor_param}={cursor}&{limit_param}={max_rows}`` (the cursor
parameter is left out before the first record). The endpoint must answer with the records
strictly after the cursor, in ascending ``cursor_field`` order: a list of JSON objects, or an
object holding that list at ``records_path`` (dotted, e.g. ``data.items``). The cursor is the
last record's ``cursor_field`` value, a JSON scalar sent back as text (``true``/``false`` for
booleans). Records beyond ``max_rows`` in an answer that ignores the limit are not used; they
are asked for again next time.

The auth header's value is read from the environment variable ``auth_env`` at every fetch, so
a rotated token is picked up without a restart; it never appears in a log line or an error.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import httpx
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.plugin import (
    Batch,
    Connector,
    ConnectorError,
    ConnectorOptionsError,
    Cursor,
    Duration,
    check_url,
    hookimpl,
    parse_options,
)
from plugins.connectors._records import records_table

#: Characters of a failing response's body quoted in the error.
EXCERPT_CHARS = 200


def http_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host; ValueError saying what is wrong otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError("not a valid URL") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError("expected an http:// or https:// URL with a host")
    return check_url(url, ("http", "https"))


class HttpOptions(BaseModel):
    """Options of the ``http`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    url: str = Field(min_length=1, description="http:// or https:// URL of the endpoint")
    cursor_param: str = Field(default="after", min_length=1)
    limit_param: str | None = Field(default="limit", min_length=1, description="null: send no limit")
    records_path: str | None = Field(default=None, min_length=1, description="dotted path to the record list")
    cursor_field: str = Field(min_length=1)
    auth_header: str | None = Field(default=None, min_length=1)
    auth_env: str | None = Field(default=None, min_length=1, description="environment variable holding the header")
    timeout: Duration = Field(default=10.0, description="seconds to wait for the endpoint's answer")

    _url = field_validator("url")(http_url)

    @model_validator(mode="after")
    def _auth_pair(self) -> HttpOptions:
        if (self.auth_header is None) != (self.auth_env is None):
            raise ValueError("set both 'auth_header' and 'auth_env', or neither")
        return self


def _query_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


class HttpConnector(Connector):
    """Pages through a JSON endpoint; the cursor is the last record's ``cursor_field`` value."""

    type_name = "http"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(HttpOptions, self.options, "http")
        self._url = url = httpx.URL(self.config.url)
        # no credentials or query (it may hold a key) in anything shown
        self.source = f"http source {url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """The HTTP client, created on first use (building the connector never connects)."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.timeout, follow_redirects=True)
        return self._client

    def _headers(self) -> tuple[dict[str, str], str | None]:
        config = self.config
        if config.auth_header is None or config.auth_env is None:
            return {}, None
        secret = os.environ.get(config.auth_env)
        if not secret:
            raise ConnectorOptionsError(f"{self.source}: option 'auth_env': "
                                        f"environment variable {config.auth_env} is not set")
        return {config.auth_header: secret}, secret

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return up to ``max_rows`` records after ``cursor`` from one request."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        if isinstance(cursor, (dict, list)):
            raise ConnectorError(f"{self.source}: invalid cursor {cursor!r}, expected a JSON scalar")
        headers, secret = self._headers()
        params: dict[str, str] = {}
        if cursor is not None:
            params[self.config.cursor_param] = _query_value(cursor)
        if self.config.limit_param is not None:
            params[self.config.limit_param] = str(max_rows)
        try:
            response = self.client.get(self._url.copy_merge_params(params), headers=headers)
        except httpx.HTTPError as error:
            raise ConnectorError(self._redact(f"{self.source}: {type(error).__name__}: {error}", secret)) from None
        if not response.is_success:
            excerpt = " ".join(response.text.split())[:EXCERPT_CHARS]
            raise ConnectorError(self._redact(
                f"{self.source}: HTTP {response.status_code} {response.reason_phrase}: {excerpt}", secret))
        records = self._records(response, secret)[:max_rows]
        if not records:
            return Batch(pa.table({}), cursor)
        return Batch(records_table(records), self._cursor(records[-1], len(records) - 1))

    def _records(self, response: httpx.Response, secret: str | None) -> list[dict[str, Any]]:
        try:
            found: Any = response.json()
        except ValueError as error:
            raise ConnectorError(self._redact(f"{self.source}: the response is not JSON: {error}", secret)) from None
        path = self.config.records_path
        for key in path.split(".") if path else []:
            if not isinstance(found, Mapping) or key not in found:
                raise ConnectorError(f"{self.source}: the response has no {path!r} (option 'records_path')")
            found = found[key]
        if not isinstance(found, list) or not all(isinstance(record, dict) for record in found):
            where = f"at {path!r}" if path else "the response"
            raise ConnectorError(f"{self.source}: expected a list of JSON objects {where}")
        return found

    def _cursor(self, record: Mapping[str, Any], index: int) -> Cursor:
        value = record.get(self.config.cursor_field)
        if value is None or isinstance(value, (dict, list)):
            raise ConnectorError(f"{self.source}: record {index} of the response has no scalar "
                                 f"{self.config.cursor_field!r} (option 'cursor_field'): {value!r}")
        return value

    @staticmethod
    def _redact(message: str, secret: str | None) -> str:
        return message.replace(secret, "***") if secret else message

    def close(self) -> None:
        """Close the HTTP client and its pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``http`` connector."""
    return {"http": HttpConnector}
