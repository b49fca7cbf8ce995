"""One scenario, every serve adapter: WSGI, Flask, raw ASGI, Starlette, FastAPI, and AWS Lambda
(function URL / HTTP API payload 2.0, REST API payload 1.0, Powertools event classes).

The scenario syncs (PUT), introspects (GET), and runs a sync and an async function (POST),
checking what the server would see: status, headers, body, and the app URL it registers.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from stepline import AsyncContext, Context, lambda_handler, serve_asgi, serve_fastapi, serve_flask, serve_starlette, serve_wsgi
from stepline.protocol.calls import memo_data
from tests.sdk.conftest import FakeTransport, call_body, h, make_client

# (method, path with query, body, headers) -> (status, headers, body)
Send = Callable[[str, str, bytes, dict[str, str]], tuple[int, dict[str, str], bytes]]


def build_client():
    transport = FakeTransport()
    client = make_client("adapter-app", transport=transport, base_url="http://127.0.0.1:8288")

    @client.function("sync-fn", trigger="t/sync")
    def sync_fn(ctx: Context) -> dict:
        value = ctx.step.run("double", lambda: ctx.event.data["n"] * 2)
        return {"double": value}

    @client.function("async-fn", trigger="t/async")
    async def async_fn(ctx: AsyncContext) -> dict:
        async def triple() -> int:
            await asyncio.sleep(0)
            return ctx.event.data["n"] * 3

        value = await ctx.step.run("triple", triple)
        return {"triple": value}

    return client, transport


# -- adapters ------------------------------------------------------------------------------------


def wsgi_sender(client) -> tuple[Send, str]:
    from werkzeug.test import Client as WerkzeugClient

    app = serve_wsgi(client)
    http = WerkzeugClient(app)

    def send(method, path, body, headers):
        resp = http.open(path, method=method, data=body, headers=headers, base_url="http://app.test")
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.get_data()

    return send, "http://app.test/api/inngest"


def flask_sender(client) -> tuple[Send, str]:
    import flask

    app = flask.Flask("adapter-test")
    serve_flask(app, client, path="/api/inngest")
    http = app.test_client()

    def send(method, path, body, headers):
        resp = http.open(path, method=method, data=body, headers=headers, base_url="http://app.test")
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.get_data()

    return send, "http://app.test/api/inngest"


def _httpx_sender(asgi_app, base: str) -> Send:
    import httpx

    def send(method, path, body, headers):
        async def go():
            transport = httpx.ASGITransport(app=asgi_app)
            async with httpx.AsyncClient(transport=transport, base_url=base) as http:
                return await http.request(method, path, content=body, headers=headers)

        resp = asyncio.run(go())
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content

    return send


def asgi_sender(client) -> tuple[Send, str]:
    return _httpx_sender(serve_asgi(client), "http://app.test"), "http://app.test/api/inngest"


def starlette_sender(client) -> tuple[Send, str]:
    from starlette.applications import Starlette

    app = Starlette()
    serve_starlette(app, client)
    return _httpx_sender(app, "http://app.test"), "http://app.test/api/inngest"


def fastapi_sender(client) -> tuple[Send, str]:
    from fastapi import FastAPI

    app = FastAPI()
    serve_fastapi(app, client)
    return _httpx_sender(app, "http://app.test"), "http://app.test/api/inngest"


def _lambda_response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    assert result["isBase64Encoded"] is False
    return result["statusCode"], {k.lower(): v for k, v in result["headers"].items()}, result["body"].encode()


def function_url_sender(client) -> tuple[Send, str]:
    handler = lambda_handler(client)
    domain = "abc123.lambda-url.eu-west-1.on.aws"

    def send(method, path, body, headers):
        raw_path, _, query = path.partition("?")
        event = {
            "version": "2.0", "rawPath": raw_path, "rawQueryString": query,
            "headers": {k.lower(): v for k, v in headers.items()} | {"host": domain, "x-forwarded-proto": "https"},
            "requestContext": {"domainName": domain, "http": {"method": method, "path": raw_path}},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
        }
        return _lambda_response(handler(event, None))

    return send, f"https://{domain}/api/inngest"


def rest_api_sender(client) -> tuple[Send, str]:
    handler = lambda_handler(client)
    domain = "xyz.execute-api.eu-west-1.amazonaws.com"

    def send(method, path, body, headers):
        raw_path, _, query = path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if p) or None
        event = {
            "httpMethod": method, "path": raw_path, "headers": {**headers, "Host": domain},
            "queryStringParameters": params,
            "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
            "requestContext": {"domainName": domain, "path": f"/prod{raw_path}", "stage": "prod"},
            "body": body.decode() if body else None, "isBase64Encoded": False,
        }
        return _lambda_response(handler(event, None))

    return send, f"https://{domain}/prod/api/inngest"


def powertools_sender(client) -> tuple[Send, str]:
    from aws_lambda_powertools.utilities.data_classes import LambdaFunctionUrlEvent

    handler = lambda_handler(client)
    domain = "pt.lambda-url.eu-west-1.on.aws"

    def send(method, path, body, headers):
        raw_path, _, query = path.partition("?")
        event = LambdaFunctionUrlEvent({
            "version": "2.0", "rawPath": raw_path, "rawQueryString": query, "headers": {**headers, "host": domain},
            "requestContext": {"domainName": domain, "http": {"method": method, "path": raw_path}},
            "body": body.decode(), "isBase64Encoded": False,
        })
        return _lambda_response(handler(event, None))

    return send, f"https://{domain}/api/inngest"


ADAPTERS = {
    "wsgi": wsgi_sender,
    "flask": flask_sender,
    "asgi": asgi_sender,
    "starlette": starlette_sender,
    "fastapi": fastapi_sender,
    "lambda-function-url": function_url_sender,
    "lambda-rest-api": rest_api_sender,
    "lambda-powertools": powertools_sender,
}
FRAMEWORKS = {"wsgi": "wsgi", "flask": "flask", "asgi": "asgi", "starlette": "starlette", "fastapi": "fastapi",
              "lambda-function-url": "aws-lambda", "lambda-rest-api": "aws-lambda", "lambda-powertools": "aws-lambda"}


@pytest.fixture(params=list(ADAPTERS))
def adapter(request):
    client, transport = build_client()
    send, app_url = ADAPTERS[request.param](client)
    return send, app_url, transport, FRAMEWORKS[request.param]


def test_sync_registers_the_url_the_server_can_call(adapter):
    send, app_url, transport, framework = adapter
    transport.replies.append((200, {"ok": True, "modified": True}))
    status, headers, body = send("PUT", "/api/inngest", b"", {})
    assert status == 200, body
    [register] = transport.requests
    assert register["url"] == "http://127.0.0.1:8288/fn/register"
    assert register["body"]["url"] == app_url
    assert register["body"]["framework"] == framework
    urls = sorted(f["steps"]["step"]["runtime"]["url"] for f in register["body"]["functions"])
    assert urls == [f"{app_url}?fnId=adapter-app-async-fn&stepId=step", f"{app_url}?fnId=adapter-app-sync-fn&stepId=step"]


def test_introspection(adapter):
    send, _, _, _ = adapter
    status, headers, body = send("GET", "/api/inngest", b"", {})
    assert status == 200 and json.loads(body)["function_count"] == 2


@pytest.mark.parametrize("fn_id, step, result", [("sync-fn", "double", 14), ("async-fn", "triple", 21)])
def test_calls_run_sync_and_async_functions(adapter, fn_id, step, result):
    send, _, _, framework = adapter
    event = {"name": "t/x", "data": {"n": 7}, "id": "e1", "ts": 1, "user": {}}
    path = f"/api/inngest?fnId=adapter-app-{fn_id}&stepId=step"
    headers = {"Content-Type": "application/json"}
    status, resp_headers, body = send("POST", path, call_body(event=event), headers)
    assert status == 206, body
    assert json.loads(body)[0]["data"] == result
    assert resp_headers["x-inngest-framework"] == framework
    assert resp_headers["x-inngest-req-version"] == "2"
    assert resp_headers["content-type"].startswith("application/json")
    status, _, body = send("POST", path, call_body(event=event, steps={h(step): memo_data(result)}), headers)
    assert status == 200 and json.loads(body) == {step: result}
