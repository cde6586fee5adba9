"""The one HTTP port: ``/metrics``, ``/healthz``, ``/readyz`` and the API, served by uvicorn in a thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from monitor.http.params import API_PREFIX
from monitor.http.page import page_routes
from monitor.metrics import Metrics

log = logging.getLogger("driftd.server")

#: Returns the reasons the daemon is not ready (empty when it is).
ReadinessCheck = Callable[[], list[str]]




def create_app(metrics: Metrics, readiness: ReadinessCheck, api: Starlette | None = None) -> Starlette:
    """The Starlette application behind the port.

    ``api`` is mounted at ``/api/v1`` when given, together with the drift page at ``/`` that reads it.
    """

    async def scrape(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        reasons = readiness()
        return JSONResponse({"ready": not reasons, "reasons": reasons}, status_code=503 if reasons else 200)

    routes: list[BaseRoute] = [
        Route("/metrics", scrape),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if api is not None:
        routes.append(Mount(API_PREFIX, app=api))
        routes.extend(page_routes())
    return Starlette(routes=routes)


class HttpServer:
    """uvicorn on a background thread, started and stopped by the daemon."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        # log_config=None: uvicorn's own messages (its errors included) go through driftd's handler and
        # formatter (plain text or JSON lines), not through a handler of uvicorn's own
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off", log_config=None)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="driftd-http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raises RuntimeError when the port cannot be bound."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the HTTP server could not start (is the port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start in time")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        return self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

