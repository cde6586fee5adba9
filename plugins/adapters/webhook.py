"""The ``webhook`` adapter: hands the drift event to an outside training pipeline over HTTP.

The event is POSTed as JSON (see ``event_body``). Header values come from environment variables
named in ``headers_env`` (e.g. ``{"Authorization": "PIPELINE_TOKEN"}``), read at every call so a
rotated token is picked up; with ``hmac_secret_env`` the exact body bytes are signed with
HMAC-SHA256 in ``X-Driftd-Signature: sha256=<hex>``. Secrets never appear in a log line, an error
or the result. A 2xx answer is an ``external`` remedy: the pipeline retrains on its own, and its
answer's ``artifact``, ``run_url`` or ``id`` is kept as the result's artifact.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    Domain,
    hookimpl,
    parse_adapter_options,
    unwrap,
)
from plugins.connectors.http import http_url
from plugins.webhooks import SIGNATURE_HEADER, encode_body, excerpt, redact, safe_location, signature

__all__ = ["SIGNATURE_HEADER", "Webhook", "WebhookOptions", "encode_body", "event_body"]

#: Characters of a response kept in the result, and of a failing response quoted in an error.
RESPONSE_CHARS = 4096
EXCERPT_CHARS = 200


def domain_summary(domain: Domain) -> dict[str, Any]:
    """Rows, labelled rows, feature names and each feature's mean and std (None where undefined)."""
    features: dict[str, dict[str, float | None]] = {}
    for position, name in enumerate(domain.feature_names):
        column = domain.features[:, position].astype(float)
        finite = column[np.isfinite(column)]
        features[name] = {"mean": _number(finite.mean()) if finite.size else None,
                          "std": _number(finite.std()) if finite.size else None}
    return {"rows": domain.rows, "labelled_rows": domain.labelled_rows,
            "feature_names": list(domain.feature_names), "features": features}


def model_summary(ctx: AdaptationContext) -> dict[str, Any] | None:
    """The current model's class (and the base class behind any map), with its classes."""
    if ctx.model is None:
        return None
    base, input_map, prior_ratios = unwrap(ctx.model)
    return {"class": type(ctx.model).__name__, "base_class": type(base).__name__,
            "classes": np.asarray(ctx.model.classes).tolist(),
            "input_map": input_map is not None, "prior_ratios": prior_ratios is not None}


def event_body(ctx: AdaptationContext) -> dict[str, Any]:
    """The JSON document an outside pipeline gets: the event and summaries of both domains."""
    event = ctx.event
    return {
        "monitor": ctx.monitor,
        "event": {"id": event.id, "window_seq": event.window_seq, "drift_share": _number(event.drift_share),
                  "features": list(event.features), "measures": list(event.measures)},
        "target": domain_summary(ctx.target),
        "source": domain_summary(ctx.source),
        "model": model_summary(ctx),
    }


def artifact_of(response: Any) -> str | None:
    """An answer's ``artifact``, else ``run_url``, else ``id``, as text."""
    if not isinstance(response, Mapping):
        return None
    for key in ("artifact", "run_url", "id"):
        if response.get(key) not in (None, ""):
            return str(response[key])
    return None


class WebhookOptions(BaseModel):
    """Options of the ``webhook`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    url: str = Field(min_length=1, description="http:// or https:// URL of the training pipeline")
    timeout: float = Field(default=30.0, gt=0, description="seconds to wait for the answer")
    headers_env: dict[str, str] = Field(default_factory=dict, description="header name → environment variable")
    hmac_secret_env: str | None = Field(default=None, min_length=1, description="environment variable of the HMAC key")
    verify_tls: bool = True

    _url = field_validator("url")(http_url)

    @field_validator("headers_env")
    @classmethod
    def _names(cls, headers: dict[str, str]) -> dict[str, str]:
        for header, variable in headers.items():
            if not header.strip() or not variable.strip():
                raise ValueError("header names and environment variable names must not be empty")
        return headers


class Webhook(Adapter):
    """POSTs the drift event to an outside training pipeline."""

    type_name = "webhook"
    needs_model = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config: WebhookOptions = parse_adapter_options(WebhookOptions, self.options, self.type_name)
        self.where = safe_location(self.config.url)  # no credentials or query (it may hold a key) in anything shown

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Send the event; a 2xx answer is an external remedy, anything else an AdapterError."""
        ctx.check_cancelled()
        headers, secrets = self._secret_headers()
        body = encode_body(event_body(ctx))
        if self.config.hmac_secret_env is not None:
            key = _environment(self.config.hmac_secret_env, "hmac_secret_env")
            secrets.append(key)
            headers[SIGNATURE_HEADER] = signature(key, body)
        headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        response = self._post(body, headers, secrets)
        elapsed = time.perf_counter() - started
        if not response.is_success:
            raise AdapterError(redact(f"webhook {self.where}: HTTP {response.status_code} {response.reason_phrase}: "
                                       f"{excerpt(response.text, EXCERPT_CHARS)}", secrets))
        details: dict[str, Any] = {"status": response.status_code, "elapsed": round(elapsed, 4)}
        parsed = _json_or_none(response)
        details.update(_response_details(response, parsed, secrets))
        ctx.log.info("webhook %s: HTTP %d in %.2fs", self.where, response.status_code, elapsed)
        return AdaptationResult(remedy="external", assumption="none", passed=None,
                                artifact=redact(artifact_of(parsed), secrets), details=details,
                                reason=f"handed to {self.where}")

    def _secret_headers(self) -> tuple[dict[str, str], list[str]]:
        """The configured headers with their values from the environment, and those values."""
        headers = {header: _environment(variable, f"headers_env.{header}")
                   for header, variable in self.config.headers_env.items()}
        return headers, list(headers.values())

    def _post(self, body: bytes, headers: dict[str, str], secrets: list[str]) -> httpx.Response:
        """One POST; transport failures become AdapterErrors without the secrets."""
        try:
            with httpx.Client(timeout=self.config.timeout, verify=self.config.verify_tls) as client:
                return client.post(self.config.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise AdapterError(f"webhook {self.where}: no answer within {self.config.timeout:g}s (timeout)") from None
        except httpx.HTTPError as error:
            raise AdapterError(redact(f"webhook {self.where}: {type(error).__name__}: {error}", secrets)) from None


def _environment(variable: str, option: str) -> str:
    """The value of an environment variable an option names; AdapterError when it is unset."""
    value = os.environ.get(variable)
    if not value:
        raise AdapterError(f"webhook: option {option!r}: environment variable {variable} is not set")
    return value


def _number(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN or infinity)."""
    number = float(value)
    return number if np.isfinite(number) else None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _response_details(response: httpx.Response, parsed: Any, secrets: list[str]) -> dict[str, Any]:
    """The answer as JSON when it is small, else a text snippet (secrets masked either way)."""
    if parsed is not None:
        text = json.dumps(parsed, sort_keys=True)
        if len(text) <= RESPONSE_CHARS and not any(secret in text for secret in secrets):
            return {"response": parsed}
        return {"response_text": redact(excerpt(text, RESPONSE_CHARS), secrets)}
    return {"response_text": redact(excerpt(response.text, RESPONSE_CHARS), secrets)}


@hookimpl
def driftd_adapters() -> Mapping[str, type[Adapter]]:
    """Register the ``webhook`` adapter."""
    return {"webhook": Webhook}
