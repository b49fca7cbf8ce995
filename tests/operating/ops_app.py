"""An app on the official `inngest` Python SDK (Flask) for the operating tests (REST API, CLI,
dashboard): one function of each shape an operator looks at. It learns where Stepline is from
INNGEST_DEV, like any user app.

Every step body bumps a counter keyed by (function, step, event.data.key); GET /counters returns
them, so a test can tell which steps a replay or rerun really ran again.

Run: INNGEST_DEV=http://127.0.0.1:8288 python tests/operating/ops_app.py --port 8289
"""

from __future__ import annotations

import argparse
import datetime
import threading
from collections import Counter

import flask
import inngest
import inngest.flask

APP_ID = "ops-app"

client = inngest.Inngest(app_id=APP_ID, logger=None)
app = flask.Flask(__name__)
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(fn: str, step: str, ctx: inngest.ContextSync) -> int:
    with _lock:
        _counts[f"{fn}/{step}/{ctx.event.data.get('key', '')}"] += 1
        return _counts[f"{fn}/{step}/{ctx.event.data.get('key', '')}"]


@client.create_function(
    fn_id="pipeline",
    name="Order pipeline",
    trigger=inngest.TriggerEvent(event="ops/order.placed"),
    retries=3,
    concurrency=[inngest.Concurrency(limit=5, key="event.data.key")],
    throttle=inngest.Throttle(limit=100, period=datetime.timedelta(minutes=1)),
)
def pipeline(ctx: inngest.ContextSync) -> dict:
    """Every kind of step: a step, two parallel branches, a sleep, a step that fails once and is
    retried, and a wait for an event (with a short timeout)."""
    order = ctx.step.run("load-order", lambda: bump("pipeline", "load-order", ctx) and {"id": ctx.event.data.get("key")})
    checks = ctx.group.parallel((
        lambda: ctx.step.run("check-stock", lambda: bump("pipeline", "check-stock", ctx) and "in stock"),
        lambda: ctx.step.run("check-fraud", lambda: bump("pipeline", "check-fraud", ctx) and "clean"),
    ))
    ctx.step.sleep("cool-down", datetime.timedelta(seconds=ctx.event.data.get("sleep_s", 1)))

    def charge() -> dict:
        if bump("pipeline", "charge", ctx) <= ctx.event.data.get("charge_failures", 1):
            raise RuntimeError("card network timeout")
        return {"charged": 2400}

    charged = ctx.step.run("charge", charge)
    receipt = ctx.step.wait_for_event(
        "wait-receipt",
        event="ops/receipt.sent",
        if_exp="event.data.key == async.data.key",
        timeout=datetime.timedelta(seconds=ctx.event.data.get("wait_s", 1)),
    )
    return {"order": order, "checks": list(checks), "charged": charged, "receipt": receipt is not None}


@client.create_function(
    fn_id="slow",
    name="Slow",
    trigger=inngest.TriggerEvent(event="ops/slow"),
    cancel=[inngest.Cancel(event="ops/slow.cancel", if_exp="event.data.key == async.data.key")],
)
def slow(ctx: inngest.ContextSync) -> str:
    """Stays Running (asleep) for an hour: something to cancel."""
    ctx.step.run("begin", lambda: bump("slow", "begin", ctx) and "begun")
    ctx.step.sleep("long-nap", datetime.timedelta(hours=1))
    return ctx.step.run("finish", lambda: bump("slow", "finish", ctx) and "finished")


@client.create_function(
    fn_id="steps",
    name="Three steps",
    trigger=inngest.TriggerEvent(event="ops/steps"),
    retries=0,
)
def three_steps(ctx: inngest.ContextSync) -> dict:
    """Three steps feeding each other; `fail_at` makes one of them fail (for reruns)."""
    def step(name: str, value: int) -> int:
        bump("steps", name, ctx)
        if ctx.event.data.get("fail_at") == name:
            raise RuntimeError(f"{name} refused")
        return value

    one = ctx.step.run("one", lambda: step("one", 1))
    two = ctx.step.run("two", lambda: step("two", one + 1))
    three = ctx.step.run("three", lambda: step("three", two + 1))
    return {"sum": one + two + three}


inngest.flask.serve(app, client, [pipeline, slow, three_steps])


@app.get("/counters")
def counters() -> flask.Response:
    with _lock:
        return flask.jsonify(dict(_counts))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app.run(host="127.0.0.1", port=args.port, threaded=True)
