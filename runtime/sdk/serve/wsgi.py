"""WSGI: a plain WSGI app (any server: gunicorn, waitress, wsgiref), and Flask.

app = serve_wsgi(client)                      # mount at /api/inngest
serve_flask(flask_app, client)                # or add the route to a Flask app
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from stepline.sdk.client import Client
from stepline.sdk.function import Function
from stepline.sdk.serve.handler import Handler, Request, Response
from stepline.sdk.serve.streaming import no_delay

DEFAULT_PATH = "/api/inngest"


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def request_from_environ(environ: dict[str, Any]) -> Request:
    scheme = environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    path = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "")
    query = environ.get("QUERY_STRING") or ""
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return Request(environ.get("REQUEST_METHOD", "GET"), url, headers, body)


class WsgiApp:
    """A WSGI application that answers every path it is mounted on with the SDK handler."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.handler.handle(request_from_environ(environ), streaming=True)
        start_response(_reason(response.status), list(response.headers.items()))
        if response.chunks is not None:  # a checkpoint stream: the server writes each line as it comes
            _send_promptly(environ)
            return response.chunks
        return [response.body]


def _send_promptly(environ: dict[str, Any]) -> None:
    # Servers that expose the connection (Werkzeug, gunicorn): each line leaves at once.
    for name in ("werkzeug.socket", "gunicorn.socket"):
        if name in environ:
            no_delay(environ[name])


def serve_wsgi(client: Client, functions: list[Function] | None = None) -> WsgiApp:
    return WsgiApp(Handler(client, functions, framework="wsgi"))


def serve_flask(
    app: Any, client: Client, functions: list[Function] | None = None, *, path: str = DEFAULT_PATH
) -> Handler:
    """Add the SDK endpoint to a Flask app at ``path`` (GET, PUT and POST)."""
    import flask

    handler = Handler(client, functions, framework="flask")

    def endpoint() -> Any:
        req = flask.request
        request = Request(req.method, req.url, dict(req.headers), req.get_data(cache=False))
        response: Response = handler.handle(request, streaming=True)
        if response.chunks is not None:  # a checkpoint stream
            _send_promptly(req.environ)
            return flask.Response(response.chunks, status=response.status, headers=response.headers)
        return flask.Response(response.body, status=response.status, headers=response.headers)

    app.add_url_rule(path, endpoint="stepline_sdk", view_func=endpoint, methods=["GET", "PUT", "POST"])
    return handler
