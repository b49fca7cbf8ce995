"""Requests as the deployed API Lambda receives them: API Gateway HTTP API events, payload format
2.0, in the shape AWS documents and sends (not the dev server's translation).

What API Gateway does before the Lambda sees a request, and what these events therefore carry:

* Routing. Only the stack's routes reach the Lambda (``ROUTE_KEYS``, checked against the
  synthesized template in tests/infra); anything else is API Gateway's own 404, and the Lambda
  is never invoked. The event names the matched route (``routeKey``, not ``$default``) and its
  path variables (``pathParameters``, URL-decoded).
* Headers lower-cased, repeated ones joined with commas; ``cookie`` moved to ``cookies``; the
  ones API Gateway adds (``host``, ``content-length``, ``x-amzn-trace-id``, ``x-forwarded-*``).
* The query string raw in ``rawQueryString`` and decoded in ``queryStringParameters``
  (repeats joined with commas), absent when empty.
* A body that is not text (by its content type) base64-encoded, with ``isBase64Encoded``.
* ``requestContext`` with the account, API id and domain, the method, path, source IP and user
  agent, the request id, the stage (``$default``) and the time in both forms.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ACCOUNT_ID = "123456789012"
API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
# infra/http_api.py's routes, as the template holds them (tests/infra/test_template.py checks).
ROUTE_KEYS = [
    "POST /e/{key}", "POST /e", "POST /webhooks/{source}", "POST /fn/register", "GET /v0/{proxy+}",
    "GET /v1/{proxy+}", "POST /v1/{proxy+}", "DELETE /v1/{proxy+}", "GET /v1/dead-letters", "GET /v1/webhooks",
    "GET /metrics", "GET /health", "GET /openapi.json", "GET /", "GET /static/{name}", "POST /v1/checkpoint/{run_id}/async",
    "POST /v1/signals",
]  # fmt: skip
NOT_FOUND = {"statusCode": 404, "headers": {"content-type": "application/json"}, "body": '{"message":"Not Found"}'}
_TEXT = re.compile(r"^(text/|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded))", re.I)


def match_route(method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
    """The route key a request matches and its path variables, or None (API Gateway's 404). Of
    several, API Gateway takes the most specific: a literal path over a {variable}, a {variable}
    over a greedy {proxy+}."""
    found: list[tuple[tuple[int, int], str, dict[str, str]]] = []
    for key in ROUTE_KEYS:
        route_method, _, route_path = key.partition(" ")
        if route_method != method:
            continue
        names = re.findall(r"{(\w+)\+?}", route_path)
        pattern = re.escape(route_path)
        pattern = re.sub(r"\\{\w+\\\+\\}", "(.+)", pattern)  # {proxy+}: the rest of the path
        pattern = re.sub(r"\\{\w+\\}", "([^/]+)", pattern)  # {key}: one segment
        matched = re.fullmatch(pattern, raw_path)
        if matched:
            variables = {name: unquote(value) for name, value in zip(names, matched.groups(), strict=True)}
            found.append(((route_path.count("+}"), route_path.count("{")), key, variables))
    if not found:
        return None
    _, key, variables = min(found, key=lambda f: f[0])
    return key, variables


def http_api_event(
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    source_ip: str = "203.0.113.9",
) -> dict[str, Any] | None:
    """The event API Gateway sends for this request, or None when no route takes it."""
    parts = urlsplit(target)
    route = match_route(method, parts.path)
    if route is None:
        return None
    route_key, path_parameters = route
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in (headers or {}).items():
        name = name.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    joined.setdefault("host", DOMAIN)
    joined.setdefault("user-agent", "curl/8.5.0")
    joined["x-amzn-trace-id"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    joined["x-forwarded-for"] = source_ip
    joined["x-forwarded-port"] = "443"
    joined["x-forwarded-proto"] = "https"
    if body:
        joined["content-length"] = str(len(body))
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    text = bool(_TEXT.match(joined.get("content-type", "")))
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined["user-agent"],
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes).decode()[:16].rstrip("="),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        try:
            event["body"] = body.decode("utf-8") if text else None
        except UnicodeDecodeError:
            event["body"] = None
        if event["body"] is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


# -- the deployed API, called as API Gateway calls it ---------------------------------------------


class DeployedApi:
    """The API Lambda's module-level handler, configured from the environment as the stack
    configures it (keys in Secrets Manager, AWS adapters), on moto; each request goes through
    API Gateway's routing and arrives as the event it would send."""

    def __init__(self, backend, session) -> None:
        self.backend = backend
        self.secrets = session.client("secretsmanager", region_name="us-east-1")

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             authorization: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        from stepline.handlers import api as api_module
        from tests.handlers.test_lambda_entrypoints import LambdaContext

        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        sent = {"content-type": "application/json", **(headers or {})}
        if authorization is not None:
            sent["authorization"] = authorization
        event = http_api_event(method, path, sent, data)
        context = LambdaContext(aws_request_id=str(uuid.uuid4()))
        result = NOT_FOUND if event is None else api_module.handler(event, context)
        text = result.get("body") or ""
        if result.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        try:
            return result["statusCode"], json.loads(text) if text else None
        except ValueError:
            return result["statusCode"], text

    def put_keys(self, signing_key: str, fallback: str | None, event_keys: list[str]) -> None:
        """Write the secrets as the rotation procedure does, then cold-start the handler."""
        from stepline.handlers import api as api_module
        from stepline.handlers import wiring

        self.secrets.put_secret_value(SecretId=SIGNING_SECRET, SecretString=json.dumps(
            {"signing_key": signing_key, "signing_key_fallback": fallback}))
        self.secrets.put_secret_value(SecretId=EVENT_KEYS_SECRET, SecretString=json.dumps(event_keys))
        wiring.reset()
        api_module._handler = None


SIGNING_SECRET = "stepline-signing-key"
EVENT_KEYS_SECRET = "stepline-event-keys"


@contextmanager
def deployed_api(
    signing_key: str, fallback: str | None, event_keys: list[str], *, api_class: type = DeployedApi, **settings: Any
) -> Iterator[Any]:
    """The API Lambda on a fresh moto account, keys in Secrets Manager, cloud mode."""
    import pytest

    from stepline.aws.moto_env import moto_backend
    from stepline.engine.clock import SystemClock
    from stepline.handlers import api as api_module
    from stepline.handlers import wiring
    from stepline.settings import Settings

    monkeypatch = pytest.MonkeyPatch()
    with moto_backend(SystemClock()) as backend:
        session = backend.session
        secrets = session.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name=SIGNING_SECRET, SecretString=json.dumps(
            {"signing_key": signing_key, "signing_key_fallback": fallback}))
        secrets.create_secret(Name=EVENT_KEYS_SECRET, SecretString=json.dumps(event_keys))
        config = Settings(mode="cloud", signing_key_secret_id=SIGNING_SECRET, event_keys_secret_id=EVENT_KEYS_SECRET,
                          **backend.names.settings_values(), **settings)
        for key, value in config.to_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setattr(wiring, "_engine", None)
        monkeypatch.setattr(api_module, "_handler", None)
        try:
            yield api_class(backend, session)
        finally:
            monkeypatch.undo()
