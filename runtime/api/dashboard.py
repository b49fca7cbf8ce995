"""The dashboard: one page (plain HTML, ES modules, CSS from ``runtime/api/static/``, no build
step) that reads everything through the REST API, polling it for live status.

The files hold no data, so they are served without auth, deployed too: a browser cannot send a
bearer token when it navigates. Deployed, the page asks for the signing key and sends its hash
as the bearer on every API call, like the SDKs do.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.errors import ApiError

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Revalidate every load: a new version of the runtime must never run an old script. The page
# builds its DOM from API data, which users control (event data, outputs): the policy allows
# only this origin's scripts, so an injected tag could not run anything.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
}


@lru_cache(maxsize=64)
def static_file(name: str) -> tuple[str, str] | None:
    """(content type, text) of a file in runtime/api/static, or None. Names are flat: the route
    parameter cannot hold a slash, and anything that is not a known file type is refused."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in CONTENT_TYPES or name.startswith("."):
        return None
    path = resources.files("stepline.api").joinpath("static", name)
    if not path.is_file():
        return None
    return CONTENT_TYPES[suffix], path.read_text(encoding="utf-8")


def add_routes(app: APIGatewayHttpResolver) -> None:
    def serve(name: str) -> Response:
        found = static_file(name)
        if found is None:
            raise ApiError(404, f"no dashboard file {name!r}")
        content_type, text = found
        return Response(status_code=200, content_type=content_type, body=text, headers=dict(HEADERS))

    @app.get("/")
    def index() -> Response:
        return serve("index.html")

    @app.get("/static/<name>")
    def static(name: str) -> Response:
        return serve(name)
