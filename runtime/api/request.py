"""Reading the current request the same way whichever front door it came through."""

from __future__ import annotations

import base64

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver


def raw_body(app: APIGatewayHttpResolver) -> bytes:
    event = app.current_event
    body = event.body
    if body is None:
        return b""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode("utf-8")


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    # API Gateway (payload v2) lower-cases header names, and so does the dev server.
    return (app.current_event.headers or {}).get(name.lower())


def headers(app: APIGatewayHttpResolver) -> dict[str, str]:
    return dict(app.current_event.headers or {})


def query(app: APIGatewayHttpResolver, name: str) -> str | None:
    return app.current_event.get_query_string_value(name)
