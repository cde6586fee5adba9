"""The built-in drift page at ``/``: static HTML, JS and CSS that read the ``/api/v1`` endpoints.

No build step and nothing from outside: the three files ship inside the package and are served by
driftd itself, under a strict Content-Security-Policy (everything from this origin, no inline code).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

#: Sent with every page response: only this origin, no inline script or style, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

#: URL path → (file in this package, media type).
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


@lru_cache(maxsize=None)
def asset(name: str) -> bytes:
    """The bytes of one of the page's files."""
    return resources.files(__name__).joinpath(name).read_bytes()


def page_routes() -> list[BaseRoute]:
    """Routes serving the page at ``/`` and its script and stylesheet."""

    def serve(name: str, media_type: str):  # noqa: ANN202 - a Starlette endpoint
        async def endpoint(request: Request) -> Response:
            return Response(asset(name), media_type=media_type, headers=HEADERS)
        return endpoint

    return [Route(path, serve(name, media_type), methods=["GET", "HEAD"], name=f"page:{name}")
            for path, (name, media_type) in ASSETS.items()]
