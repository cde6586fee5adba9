"""A real SMTP server for the email notifier's tests (aiosmtpd), run as its own process.

    python -m tests.servers.smtp_server PORT MAILDIR CERT KEY USER PASSWORD

STARTTLS is required before anything else, and AUTH (PLAIN/LOGIN) with USER/PASSWORD before a
message is accepted; each accepted message is written to MAILDIR as ``<n>.eml``. It prints
``ready`` once it listens.
"""

from __future__ import annotations

import ssl
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    """Writes each accepted message to the mail folder."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.count = folder, 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        self.count += 1
        partial = self.folder / f".{self.count}.eml"
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.folder / f"{self.count}.eml")
        return "250 Message accepted for delivery"


def main() -> None:
    port, folder, cert, key, user, password = sys.argv[1:7]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, data):  # noqa: ANN001, ANN202
        ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    controller = Controller(Saver(Path(folder)), hostname="127.0.0.1", port=int(port), tls_context=context,
                            require_starttls=True, auth_required=True, auth_require_tls=True,
                            authenticator=authenticate, decode_data=False)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
