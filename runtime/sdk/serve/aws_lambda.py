"""AWS Lambda: function URLs, API Gateway HTTP APIs (payload 2.0) and REST APIs (1.0).

    handler = lambda_handler(client)          # the Lambda's entry point: handler(event, context)

The event may be the raw dict or a Powertools event data class (anything with ``raw_event``),
so the handler composes with Powertools decorators (``@logger.inject_lambda_context``…).
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable
from typing import Any

from stepline.sdk.client import Client
from stepline.sdk.function import Function
from stepline.sdk.serve.handler import Handler, Request


def _raw(event: Any) -> dict[str, Any]:
    raw = getattr(event, "raw_event", event)
    if not isinstance(raw, dict):
        raise TypeError("expected an API Gateway / function URL event")
    return raw


def _headers(raw: dict[str, Any]) -> dict[str, str]:
    headers = {str(k).lower(): str(v) for k, v in (raw.get("headers") or {}).items()}
    for key, values in (raw.get("multiValueHeaders") or {}).items():
        if values and key.lower() not in headers:
            headers[key.lower()] = ",".join(values)
    return headers


def _body(raw: dict[str, Any]) -> bytes:
    body = raw.get("body") or ""
    if raw.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def request_from_event(event: Any) -> Request:
    raw = _raw(event)
    headers = _headers(raw)
    context = raw.get("requestContext") or {}
    scheme = headers.get("x-forwarded-proto", "https")
    host = context.get("domainName") or headers.get("host", "localhost")
    if raw.get("version") == "2.0":  # function URL, HTTP API
        method = (context.get("http") or {}).get("method", "GET")
        path = raw.get("rawPath") or "/"
        query = raw.get("rawQueryString") or ""
    else:  # REST API (payload 1.0); requestContext.path includes the stage
        method = raw.get("httpMethod", "GET")
        path = context.get("path") or raw.get("path") or "/"
        multi = raw.get("multiValueQueryStringParameters")
        if multi:
            query = urllib.parse.urlencode([(k, v) for k, vs in multi.items() for v in vs])
        else:
            query = urllib.parse.urlencode(raw.get("queryStringParameters") or {})
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    return Request(method, url, headers, _body(raw))


def lambda_handler(client: Client, functions: list[Function] | None = None) -> Callable[[Any, Any], dict[str, Any]]:
    handler = Handler(client, functions, framework="aws-lambda")

    def handle(event: Any, context: Any = None) -> dict[str, Any]:
        response = handler.handle(request_from_event(event))
        return {
            "statusCode": response.status,
            "headers": response.headers,
            "body": response.body.decode("utf-8"),
            "isBase64Encoded": False,
        }

    handle.handler = handler  # type: ignore[attr-defined]
    return handle
