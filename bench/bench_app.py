"""The benchmark's app: the official Python SDK, one function of N sequential steps, each
returning a small value. Served by Flask's threaded server on the given port."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="bench-app", logger=None)


def _constant(value: int) -> Callable[[], int]:
    """A step body that returns ``value`` (a lambda in a loop would need a typed default). Defined
    before the function that uses it: run as a script, the module stops at app.run()."""
    return lambda: value


@client.create_function(fn_id="sequential", trigger=inngest.TriggerEvent(event="bench/sequential"), retries=0)
def sequential(ctx: inngest.ContextSync) -> int:
    total = 0
    steps = ctx.event.data.get("steps", 100)
    for i in range(int(steps) if isinstance(steps, int | float | str) else 100):
        total += ctx.step.run(f"step-{i}", _constant(i))
    return total


app = flask.Flask(__name__)
inngest.flask.serve(app, client, [sequential])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("INNGEST_DEV", "1")
    app.run(host="127.0.0.1", port=args.port, threaded=True)
