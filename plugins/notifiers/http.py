"""HTTP notifiers: a generic JSON webhook (HMAC-signed like the ``webhook`` adapter) and a
Slack-compatible incoming-webhook message.

Every request carries the event's stable id as ``Idempotency-Key`` and ``X-Driftd-Event-Id``, and
its kind as ``X-Driftd-Event``; header values come from environment variables named in
``headers_env``, the HMAC key from the one ``hmac_secret_env`` names. Secrets (those values, and
a URL's query or credentials) never appear in an error or a log line.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    Notifier,
    NotifierError,
    event_changes,
    event_summary,
    hookimpl,
    parse_notifier_options,
)
from plugins.connectors.http import http_url
from plugins.webhooks import SIGNATURE_HEADER, encode_body, excerpt, redact, safe_location, secret_headers, signature

#: Characters of a failing answer quoted in an error.
EXCERPT_CHARS = 200


class HttpNotifierOptions(BaseModel):
    """Options every HTTP notifier takes."""

    model_config = ConfigDict(extra="forbid", strict=False)

    url: str = Field(min_length=1, description="http:// or https:// URL (put a secret URL in ${VAR})")
    timeout: float = Field(default=10.0, gt=0, description="seconds to wait for the answer")
    headers_env: dict[str, str] = Field(default_factory=dict, description="header name → environment variable")
    hmac_secret_env: str | None = Field(default=None, min_length=1, description="environment variable of the HMAC key")
    verify_tls: bool = True

    _url = field_validator("url")(http_url)


class HttpNotifier(Notifier):
    """POSTs a JSON body per event; a 2xx answer is a delivery, anything else a NotifierError (retried)."""

    options_model: type[HttpNotifierOptions] = HttpNotifierOptions

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_notifier_options(self.options_model, self.options, self.type_name)
        self.where = safe_location(self.config.url)
        self._client = httpx.Client(timeout=self.config.timeout, verify=self.config.verify_tls)

    def body(self, event: Mapping[str, Any]) -> Any:
        """The JSON document sent for ``event``."""
        raise NotImplementedError

    def endpoint(self) -> str:
        """The URL POSTed to."""
        return self.config.url

    def notify(self, event: Mapping[str, Any]) -> None:
        """POST the event's body with its id, kind and signature headers."""
        try:
            headers, secrets = secret_headers(self.config.headers_env)
        except KeyError as error:
            raise NotifierError(f"{self.type_name} notifier: {error.args[0]}") from None
        body = encode_body(self.body(event))
        if self.config.hmac_secret_env is not None:
            key = os.environ.get(self.config.hmac_secret_env)
            if not key:
                raise NotifierError(f"{self.type_name} notifier: option 'hmac_secret_env': environment variable "
                                    f"{self.config.hmac_secret_env} is not set")
            secrets.append(key)
            headers[SIGNATURE_HEADER] = signature(key, body)
        headers.update({"Content-Type": "application/json", "Idempotency-Key": str(event["id"]),
                        "X-Driftd-Event-Id": str(event["id"]), "X-Driftd-Event": str(event["type"])})
        secrets.append(self.config.url)
        try:
            response = self._client.post(self.endpoint(), content=body, headers=headers)
        except httpx.TimeoutException:
            raise NotifierError(f"{self.type_name} {self.where}: no answer within {self.config.timeout:g}s") from None
        except httpx.HTTPError as error:
            raise NotifierError(redact(f"{self.type_name} {self.where}: {type(error).__name__}: {error}",
                                       secrets)) from None
        if not response.is_success:
            raise NotifierError(redact(f"{self.type_name} {self.where}: HTTP {response.status_code} "
                                       f"{response.reason_phrase}: {excerpt(response.text, EXCERPT_CHARS)}", secrets))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class WebhookNotifier(HttpNotifier):
    """The event as JSON: ``id``, ``type``, ``monitor``, ``created_at``, ``attempt``, ``data``."""

    type_name = "webhook"

    def body(self, event: Mapping[str, Any]) -> Any:
        return dict(event)


class SlackOptions(HttpNotifierOptions):
    """Options of the ``slack`` notifier."""

    channel: str | None = Field(default=None, description="override the webhook's channel (where allowed)")
    username: str | None = None
    icon_emoji: str | None = None


class SlackNotifier(HttpNotifier):
    """A Slack-compatible incoming-webhook message (also Mattermost, Rocket.Chat, …): text plus a block."""

    type_name = "slack"
    options_model = SlackOptions

    def body(self, event: Mapping[str, Any]) -> Any:
        text = "\n".join([event_summary(event), *(f"• {line}" for line in event_changes(event))])
        message: dict[str, Any] = {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                       {"type": "context", "elements": [{"type": "mrkdwn",
                                                         "text": f"event `{event['id']}` · {event['created_at']}"}]}],
        }
        config: SlackOptions = self.config  # type: ignore[assignment]
        for key in ("channel", "username", "icon_emoji"):
            if getattr(config, key):
                message[key] = getattr(config, key)
        return message


@hookimpl
def driftd_notifiers() -> Mapping[str, type[Notifier]]:
    """Register the ``webhook`` and ``slack`` notifiers."""
    return {"webhook": WebhookNotifier, "slack": SlackNotifier}
