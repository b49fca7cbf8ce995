"""ASGI: a raw ASGI app (any server: uvicorn, hypercorn), and Starlette / FastAPI routes.

    app.mount("/api/inngest", serve_asgi(client))      # any ASGI framework
    serve_starlette(fastapi_app, client)                # or a route on Starlette / FastAPI

Async functions run on the server's event loop; sync ones in worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from stepline.sdk.client import Client
from stepline.sdk.function import Function
from stepline.sdk.serve.handler import Handler, Request, Response

DEFAULT_PATH = "/api/inngest"


def request_from_scope(scope: dict[str, Any], body: bytes) -> Request:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    scheme = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    path = (scope.get("root_path") or "") + (scope.get("path") or "")
    query = (scope.get("query_string") or b"").decode("latin-1")
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    return Request(scope.get("method", "GET"), url, headers, body)


class AsgiApp:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        response = await self.handler.handle_async(request_from_scope(scope, b"".join(chunks)), streaming=True)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()],
            }
        )
        if response.achunks is not None:  # a checkpoint stream: each line as it comes
            await _stream(response.achunks, receive, send)
            return
        await send({"type": "http.response.body", "body": response.body})


async def _stream(chunks: AsyncIterator[bytes], receive: Any, send: Any) -> None:
    """Send the lines until the stream ends or the server goes away. Servers may drop what is
    sent after a disconnect without a word, so the disconnect is watched for: it stops the
    stream, and the function stops at its next step."""

    async def pump() -> None:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping, watching = asyncio.create_task(pump()), asyncio.create_task(disconnected())
    done, _ = await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    for task in (pumping, watching):
        if task not in done:
            task.cancel()
    await asyncio.gather(pumping, watching, return_exceptions=True)


def serve_asgi(client: Client, functions: list[Function] | None = None) -> AsgiApp:
    return AsgiApp(Handler(client, functions, framework="asgi"))


def serve_starlette(
    app: Any,
    client: Client,
    functions: list[Function] | None = None,
    *,
    path: str = DEFAULT_PATH,
    framework: str = "starlette",
) -> Handler:
    """Add the SDK endpoint to a Starlette or FastAPI app at ``path``."""
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import Response as StarletteResponse
    from starlette.responses import StreamingResponse

    handler = Handler(client, functions, framework=framework)

    async def endpoint(req: StarletteRequest) -> StarletteResponse:
        response: Response = await handler.handle_async(
            Request(req.method, str(req.url), dict(req.headers), await req.body()), streaming=True
        )
        if response.achunks is not None:  # a checkpoint stream
            return StreamingResponse(response.achunks, status_code=response.status, headers=response.headers)
        return StarletteResponse(response.body, status_code=response.status, headers=response.headers)

    app.add_route(path, endpoint, methods=["GET", "PUT", "POST"], include_in_schema=False)
    return handler


def serve_fastapi(
    app: Any, client: Client, functions: list[Function] | None = None, *, path: str = DEFAULT_PATH
) -> Handler:
    return serve_starlette(app, client, functions, path=path, framework="fastapi")
