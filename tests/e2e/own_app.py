"""An app on Stepline's own SDK in its own process, for the checkpointing end-to-end tests.

    python tests/e2e/own_app.py --port 8290 --server wsgi      # Werkzeug, answers may stream
    python tests/e2e/own_app.py --port 8290 --server asgi      # uvicorn, answers may stream
    python tests/e2e/own_app.py --port 8290 --server buffered  # WSGI that cannot stream (as on
                                                               # AWS Lambda): checkpoints go
                                                               # through /v1/checkpoint

Every step body appends ``<function>/<step>/<key>`` to COUNTER_FILE, so counts survive the
process being killed. A step asked to crash (``crash_at``) kills the process once per key
(CRASH_DIR keeps a marker), so the restarted process runs on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from stepline import AsyncContext, Client, Context, StepError, serve_asgi, serve_wsgi
from stepline.sdk.serve.handler import Handler
from stepline.sdk.serve.wsgi import request_from_environ

APP_ID = os.environ.get("OWN_APP_ID", "own-e2e")
COUNTER_FILE = Path(os.environ["COUNTER_FILE"])
CRASH_DIR = Path(os.environ["CRASH_DIR"])

client = Client(APP_ID)


def bump(fn: str, step: str, data: dict[str, Any]) -> None:
    with COUNTER_FILE.open("a") as out:
        out.write(f"{fn}/{step}/{data.get('key', '')}\n")


def crash_once(data: dict[str, Any], i: int) -> None:
    if data.get("crash_at") != i:
        return
    marker = CRASH_DIR / str(data.get("key"))
    if marker.exists():
        return
    marker.write_text(str(i))
    os._exit(1)  # the process dies here, mid-step, as a crash would


def chain_step(fn: str, data: dict[str, Any], i: int) -> int:
    bump(fn, f"s{i}", data)
    crash_once(data, i)
    if data.get("step_ms"):
        time.sleep(data["step_ms"] / 1000)
    return i


@client.function("chain", trigger="own/chain", retries=10)
def chain(ctx: Context) -> dict:
    data = ctx.event.data
    total = sum(ctx.step.run(f"s{i}", chain_step, "chain", data, i) for i in range(1, data.get("steps", 40) + 1))
    return {"total": total}


@client.function("chain-async", trigger="own/chain.async", retries=10)
async def chain_async(ctx: AsyncContext) -> dict:
    data = ctx.event.data

    async def one(i: int) -> int:
        await asyncio.sleep(0)
        return chain_step("chain-async", data, i)

    total = 0
    for i in range(1, data.get("steps", 40) + 1):
        total += await ctx.step.run(f"s{i}", one, i)
    return {"total": total}


@client.function("chain-plain", trigger="own/chain.plain", retries=2, checkpointing=False)
def chain_plain(ctx: Context) -> dict:
    data = ctx.event.data
    total = sum(ctx.step.run(f"s{i}", chain_step, "chain-plain", data, i) for i in range(1, data.get("steps", 5) + 1))
    return {"total": total}


@client.function("mixed", trigger="own/mixed", retries=4)
def mixed(ctx: Context) -> dict:
    """Checkpointed steps around a parallel group, a sleep and a step that fails twice."""
    data = ctx.event.data

    def one(name: str) -> str:
        bump("mixed", name, data)
        return name

    def flaky() -> str:
        bump("mixed", "flaky", data)
        if sum(1 for line in COUNTER_FILE.read_text().splitlines() if line == f"mixed/flaky/{data['key']}") <= 2:
            raise RuntimeError("not yet")
        return "flaky"

    out = [ctx.step.run("a", one, "a"), ctx.step.run("b", one, "b")]
    out += ctx.step.parallel(lambda: ctx.step.run("p1", one, "p1"), lambda: ctx.step.run("p2", one, "p2"))
    out += [ctx.step.run("c", one, "c")]
    ctx.step.sleep("nap", "1s")
    out += [ctx.step.run("d", one, "d"), ctx.step.run("flaky", flaky), ctx.step.run("e", one, "e")]
    return {"steps": out}


@client.function("big", trigger="own/big", retries=2)
def big(ctx: Context) -> dict:
    """A step whose output is over the 4 MiB limit between two small ones: it fails, as it would
    without checkpointing, and the function goes on."""
    data = ctx.event.data
    first = ctx.step.run("small", lambda: (bump("big", "small", data), "small")[1])
    try:
        ctx.step.run("huge", lambda: (bump("big", "huge", data), "x" * (4 * 1024 * 1024 + 10))[1])
        failed = None
    except StepError as err:
        failed = err.name
    last = ctx.step.run("after", lambda: (bump("big", "after", data), "after")[1])
    return {"first": first, "huge_failed_with": failed, "last": last}


class BufferedWsgi:
    """A WSGI app whose answers are always whole bodies, like a Lambda behind a function URL."""

    def __init__(self) -> None:
        self.handler = Handler(client, framework="wsgi")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        response = self.handler.handle(request_from_environ(environ))
        start_response(f"{response.status} X", list(response.headers.items()))
        return [response.body]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["wsgi", "asgi", "buffered"], default="wsgi")
    args = parser.parse_args()
    if args.server == "asgi":
        import uvicorn

        uvicorn.run(serve_asgi(client), host="127.0.0.1", port=args.port, log_level="warning")
        return
    from werkzeug.serving import run_simple

    app = serve_wsgi(client) if args.server == "wsgi" else BufferedWsgi()
    run_simple("127.0.0.1", args.port, app, threaded=True)


if __name__ == "__main__":
    main()
