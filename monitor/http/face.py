"""The daemon's HTTP port as one of its faces, built by the composition root (the command line)."""

from __future__ import annotations

import logging

from monitor.daemon import Daemon
from monitor.http.api import build_api
from monitor.http.server import HttpServer, create_app

log = logging.getLogger("driftd.server")


class HttpFace:
    """The daemon's HTTP port as one of its faces: the drift page, ``/api/v1``, ``/metrics``, health."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.server: HttpServer | None = None

    @classmethod
    def attach(cls, daemon: Daemon) -> HttpFace:
        """A face for ``daemon``, started and stopped with it."""
        face = cls(daemon)
        daemon.faces.append(face)
        return face

    @property
    def port(self) -> int:
        """The bound port; RuntimeError before it is served."""
        if self.server is None:
            raise RuntimeError("the HTTP port is not served yet")
        return self.server.port

    def start(self) -> None:
        """Serve the port (if the configuration enables it and it is not served yet)."""
        server = self.daemon.config.server
        if self.server is not None or not server.enabled:
            return
        serving = HttpServer(create_app(self.daemon.metrics, self.daemon.readiness, api=build_api(self.daemon)),
                             server.host, server.port)
        serving.start()
        self.server = serving  # only once it serves: ``port`` is readable from then on
        log.info("serving the drift page /, /api/v1, /metrics, /healthz, /readyz on http://%s:%d",
                 server.host, self.server.port)

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.stop()
