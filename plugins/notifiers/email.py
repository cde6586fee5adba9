"""The ``email`` notifier: one message per event over SMTP (STARTTLS by default, or implicit TLS).

The password goes in ``password: ${SMTP_PASSWORD}`` (never the file itself); the certificate is
verified (``ca_file`` adds a private CA). Each message's ``Message-ID`` is built from the event's
stable id and it carries ``X-Driftd-Event-Id``, so a duplicate after a crash can be recognised.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    Notifier,
    NotifierError,
    event_changes,
    event_summary,
    hookimpl,
    parse_notifier_options,
)


class EmailOptions(BaseModel):
    """Options of the ``email`` notifier."""

    model_config = ConfigDict(extra="forbid", strict=False)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="default: 587 (starttls), 465 (ssl), 25")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: str | None = Field(default=None, description="put ${SMTP_PASSWORD} here, never the password")
    sender: str = Field(min_length=3, description="the From address")
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[driftd]"
    timeout: float = Field(default=10.0, gt=0)
    ca_file: str | None = Field(default=None, description="a CA bundle to verify the server with")
    verify_tls: bool = True

    @field_validator("to")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if "@" not in address:
                raise ValueError(f"not an email address: {address!r}")
        return addresses


class EmailNotifier(Notifier):
    """Sends each event as a plain-text email."""

    type_name = "email"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_notifier_options(EmailOptions, self.options, self.type_name)
        if (self.config.username is None) != (self.config.password is None):
            raise NotifierError("email notifier: options 'username' and 'password' go together")
        if self.config.password is not None and self.config.security == "none":
            raise NotifierError("email notifier: option 'security': 'none' would send the password in clear text")
        default_port = {"starttls": 587, "ssl": 465, "none": 25}[self.config.security]
        self.port = self.config.port or default_port
        self.where = f"smtp {self.config.host}:{self.port}"

    def message(self, event: Mapping[str, Any]) -> EmailMessage:
        """The email for ``event``."""
        summary = event_summary(event)
        message = EmailMessage()
        message["Subject"] = f"{self.config.subject_prefix} {summary}".strip()
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{event['id']}@driftd>"
        message["X-Driftd-Event-Id"] = str(event["id"])
        message["X-Driftd-Event"] = str(event["type"])
        changes = "".join(f"- {line}\n" for line in event_changes(event))
        message.set_content(f"{summary}\n\n" + (f"What changed:\n{changes}\n" if changes else "")
                            + f"event {event['id']} at {event['created_at']}\n\n"
                            + json.dumps(event.get("data"), indent=2, sort_keys=True) + "\n")
        return message

    def notify(self, event: Mapping[str, Any]) -> None:
        """Send the event's email; any SMTP or network failure is a NotifierError (retried)."""
        config, secrets = self.config, [self.config.password or ""]
        try:
            context = self._tls() if config.security != "none" else None
            if config.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, self.port, timeout=config.timeout, context=context)
            else:
                smtp = smtplib.SMTP(config.host, self.port, timeout=config.timeout)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=context)
                if config.username is not None and config.password is not None:
                    smtp.login(config.username, config.password)
                smtp.send_message(self.message(event))
        except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
            text = f"{self.where}: {type(error).__name__}: {error}"
            for secret in secrets:
                text = text.replace(secret, "***") if secret else text
            raise NotifierError(f"email notifier {text}") from None

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@hookimpl
def driftd_notifiers() -> Mapping[str, type[Notifier]]:
    """Register the ``email`` notifier."""
    return {"email": EmailNotifier}
