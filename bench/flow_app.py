"""The flow-control benchmark's app: the official Python SDK, one function per flow-control
rule, each running N sequential steps (``data.steps``). Served by Flask on the given port."""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Callable

import flask
import inngest
import inngest.flask

client = inngest.Inngest(app_id="bench-flow", logger=None)

LIMIT = [inngest.Concurrency(limit=10)]
RULES: dict[str, dict] = {
    "none": {},
    "concurrency": {"concurrency": LIMIT},
    "concurrency-2-keys": {
        "concurrency": [inngest.Concurrency(limit=5, key="event.data.user"), inngest.Concurrency(limit=10)]
    },
    "priority": {"concurrency": LIMIT, "priority": inngest.Priority(run="event.data.priority")},
    "throttle": {"throttle": inngest.Throttle(limit=1000, period=datetime.timedelta(seconds=1))},
    "rate-limit": {"rate_limit": inngest.RateLimit(limit=1000, period=datetime.timedelta(minutes=1))},
    "debounce": {"debounce": inngest.Debounce(period=datetime.timedelta(seconds=1))},
    "batch": {"batch_events": inngest.Batch(max_size=2, timeout=datetime.timedelta(seconds=5))},
    "idempotency": {"idempotency": "event.data.id"},
    "singleton": {"singleton": inngest.Singleton(mode="skip")},
}


def _constant(value: int) -> Callable[[], int]:
    """A step body that returns ``value`` (a lambda in a loop would need a typed default)."""
    return lambda: value


def make(rule: str, config: dict) -> inngest.Function:
    @client.create_function(fn_id=rule, trigger=inngest.TriggerEvent(event=f"bench/flow.{rule}"), retries=0, **config)
    def steps(ctx: inngest.ContextSync) -> int:
        total = 0
        steps = ctx.event.data.get("steps", 10)
        for i in range(int(steps) if isinstance(steps, int | float | str) else 10):
            total += ctx.step.run(f"step-{i}", _constant(i))
        return total

    return steps


FUNCTIONS = [make(rule, config) for rule, config in RULES.items()]
app = flask.Flask(__name__)
inngest.flask.serve(app, client, FUNCTIONS)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("INNGEST_DEV", "1")
    app.run(host="127.0.0.1", port=args.port, threaded=True)
