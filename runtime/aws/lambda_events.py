"""A call as the function-URL event a Lambda receives, and the function's answer as an HTTP reply.

The invoke caller (``stepline.aws.lambda_invoke``) sends the same request the HTTP path sends,
shaped as a Lambda function URL delivers it (payload format 2.0, which API Gateway HTTP APIs
share), so an app's one ``lambda_handler`` serves both. The answer is read as a function URL
reads it: a JSON object with ``statusCode`` is a response (headers, body, base64 flag);
anything else is a 200 whose body is the payload itself.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class LambdaReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


def request_event(method: str, url: str, body: bytes, headers: dict[str, str], *, now_ms: int | None = None) -> dict:
    """The function-URL event for ``method url`` with ``body`` and ``headers``. The body travels
    base64-encoded (as a function URL sends any body it does not know to be text), so bytes reach
    the app exactly as signed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered.setdefault("host", host)
    lowered.setdefault("x-forwarded-proto", parts.scheme or "https")
    lowered["content-length"] = str(len(body))
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    request_id = str(uuid.uuid4())
    path = parts.path or "/"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": lowered,
        **({"queryStringParameters": query} if query else {}),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split(".", 1)[0],
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", "stepline"),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now / 1000)),
            "timeEpoch": now,
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def reply_from_payload(payload: bytes) -> LambdaReply:
    """What a function URL would answer for a function that returned ``payload``."""
    try:
        data: Any = json.loads(payload) if payload.strip() else None
    except ValueError:
        return LambdaReply(200, payload)
    if not isinstance(data, dict) or "statusCode" not in data:
        return LambdaReply(200, payload)
    try:
        status = int(data["statusCode"])
    except (TypeError, ValueError):
        return LambdaReply(502, b'{"name":"LambdaBadResponse","message":"statusCode is not a number"}')
    headers = {str(k).lower(): str(v) for k, v in (data.get("headers") or {}).items()}
    raw = data.get("body")
    if raw is None:
        body = b""
    elif data.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    elif isinstance(raw, str):
        body = raw.encode("utf-8")
    else:
        body = json.dumps(raw).encode("utf-8")
    return LambdaReply(status, body, headers)
