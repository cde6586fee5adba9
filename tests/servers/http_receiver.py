"""A local HTTP server that records every POST, for the notifier tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A local HTTP server that records every request; ``fail`` answers the next N with 503."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                failing = receiver.fail > 0
                receiver.fail -= failing
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "answered": 503 if failing else 200})
                self.send_response(503 if failing else 200)
                self.end_headers()
                self.wfile.write(b"busy" if failing else b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str, answered: int = 200) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and r["answered"] == answered]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
