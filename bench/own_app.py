"""The benchmark's app on Stepline's own SDK: one function of N sequential steps, each returning
a small value, checkpointed (the default) and with checkpointing off; and a two-branch parallel
group followed by a step, to time the discovery call between them. Served by Werkzeug's
threaded server (WSGI), whose answers may stream; with ``--no-stream``, by a WSGI wrapper that
answers whole bodies, as AWS Lambda does, so checkpoints go through the server's API instead
(app id ``bench-own-api``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from stepline import Client, Context, serve_wsgi
from stepline.sdk.serve.handler import Handler
from stepline.sdk.serve.wsgi import request_from_environ

NO_STREAM = "--no-stream" in sys.argv
APP_ID = "bench-own-api" if NO_STREAM else "bench-own"
client = Client(APP_ID, logger=None)


def _chain(ctx: Context) -> int:
    total = 0
    for i in range(int(ctx.event.data.get("steps", 100))):
        total += ctx.step.run(f"step-{i}", lambda i=i: i)
    return total


checkpointed = client.function("checkpointed", trigger=f"bench/{APP_ID}.checkpointed", retries=0)(_chain)
per_step = client.function("per-step", trigger=f"bench/{APP_ID}.per-step", retries=0, checkpointing=False)(_chain)


@client.function("parallel", trigger=f"bench/{APP_ID}.parallel", retries=0)
def parallel(ctx: Context) -> dict[str, float]:
    """Two branches of 100 ms, then a step: how soon after the last branch ends it starts."""

    def branch() -> float:
        time.sleep(0.1)
        return time.time()

    ends = ctx.step.parallel(lambda: ctx.step.run("b1", branch), lambda: ctx.step.run("b2", branch))
    after = ctx.step.run("after", time.time)
    return {"gap_ms": (after - max(ends)) * 1000}


class WholeBodies:
    """A WSGI app whose answers are never streamed (as behind a Lambda function URL)."""

    def __init__(self) -> None:
        self.handler = Handler(client, framework="wsgi")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        response = self.handler.handle(request_from_environ(environ))
        start_response(f"{response.status} -", list(response.headers.items()))
        return [response.body]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args()
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", args.port, WholeBodies() if args.no_stream else serve_wsgi(client), threaded=True)
