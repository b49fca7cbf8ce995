"""The benchmark's app on Stepline's own SDK: one function of N sequential steps, each returning
a small value, checkpointed (the default) and with checkpointing off. Served by Werkzeug's
threaded server (WSGI), whose answers may stream."""

from __future__ import annotations

import argparse

from stepline import Client, Context, serve_wsgi

client = Client("bench-own", logger=None)


def _chain(ctx: Context) -> int:
    total = 0
    for i in range(int(ctx.event.data.get("steps", 100))):
        total += ctx.step.run(f"step-{i}", lambda i=i: i)
    return total


checkpointed = client.function("checkpointed", trigger="bench/own.checkpointed", retries=0)(_chain)
per_step = client.function("per-step", trigger="bench/own.per-step", retries=0, checkpointing=False)(_chain)
app = serve_wsgi(client)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", args.port, app, threaded=True)
