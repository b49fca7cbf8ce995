"""An app built on the official `inngest` Python SDK (Flask), used unmodified by the end-to-end
tests. It learns where Stepline is from INNGEST_DEV, like any user app.

Every step body bumps a counter keyed by (function, step, event.data.key), and GET /counters
returns them, so a test can prove how many times each step really ran.

Run: INNGEST_DEV=http://127.0.0.1:8288 python tests/e2e/sdk_app.py --port 8289
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter

import flask
import inngest
import inngest.flask

APP_ID = "e2e-app"

client = inngest.Inngest(app_id=APP_ID, logger=None)
app = flask.Flask(__name__)
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(fn: str, step: str, ctx: inngest.ContextSync) -> int:
    key = f"{fn}/{step}/{ctx.event.data.get('key', '')}"
    with _lock:
        _counts[key] += 1
        return _counts[key]


@client.create_function(fn_id="multi-step", trigger=inngest.TriggerEvent(event="test/multi"))
def multi_step(ctx: inngest.ContextSync) -> dict:
    a = ctx.step.run("a", lambda: bump("multi-step", "a", ctx) and ctx.event.data.get("x", 1))
    b = ctx.step.run("b", lambda: bump("multi-step", "b", ctx) and a * 10)
    c = ctx.step.run("c", lambda: bump("multi-step", "c", ctx) and {"sum": a + b})
    return {"a": a, "b": b, "c": c, "run_id": ctx.run_id}


@client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="test/sleep"))
def sleeper(ctx: inngest.ContextSync) -> dict:
    before = ctx.step.run("before", lambda: bump("sleeper", "before", ctx) and time.time())
    ctx.step.sleep("nap", ctx.event.data.get("seconds", 3) * 1000)
    after = ctx.step.run("after", lambda: bump("sleeper", "after", ctx) and time.time())
    return {"slept": after - before}


@client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="test/flaky"), retries=4)
def flaky(ctx: inngest.ContextSync) -> dict:
    def unreliable() -> str:
        n = bump("flaky", "unreliable", ctx)
        if n <= ctx.event.data.get("failures", 2):
            raise RuntimeError(f"transient failure {n}")
        return f"ok after {n}"

    first = ctx.step.run("steady", lambda: bump("flaky", "steady", ctx) and "steady")
    result = ctx.step.run("unreliable", unreliable)
    return {"first": first, "result": result}


@client.create_function(fn_id="doomed", trigger=inngest.TriggerEvent(event="test/doomed"), retries=2)
def doomed(ctx: inngest.ContextSync) -> None:
    bump("doomed", "body", ctx)
    raise RuntimeError("always broken")


@client.create_function(fn_id="refuser", trigger=inngest.TriggerEvent(event="test/refuse"), retries=5)
def refuser(ctx: inngest.ContextSync) -> None:
    bump("refuser", "body", ctx)
    raise inngest.NonRetriableError("do not retry me")


@client.create_function(fn_id="fan-a", trigger=inngest.TriggerEvent(event="test/fanout"))
def fan_a(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("work", lambda: bump("fan-a", "work", ctx) and "a")


@client.create_function(fn_id="fan-b", trigger=inngest.TriggerEvent(event="test/fanout"))
def fan_b(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("work", lambda: bump("fan-b", "work", ctx) and "b")


@client.create_function(
    fn_id="filtered",
    trigger=inngest.TriggerEvent(event="test/filtered", expression="event.data.ok == true"),
)
def filtered(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("work", lambda: bump("filtered", "work", ctx) and "matched")


@client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="test/slow"))
def slow(ctx: inngest.ContextSync) -> str:
    def take_time() -> str:
        bump("slow", "take-time", ctx)
        time.sleep(ctx.event.data.get("seconds", 2))
        return "took time"

    first = ctx.step.run("take-time", take_time)
    return ctx.step.run("finish", lambda: bump("slow", "finish", ctx) and first + ", finished")


FUNCTIONS = [multi_step, sleeper, slow, flaky, doomed, refuser, fan_a, fan_b, filtered]
inngest.flask.serve(app, client, FUNCTIONS)


@app.get("/counters")
def counters() -> flask.Response:
    with _lock:
        return flask.jsonify(dict(_counts))


@app.post("/send")
def send() -> flask.Response:
    """Send events with the SDK's own client (tests the SDK -> Event API path)."""
    payload = flask.request.get_json()
    ids = client.send_sync([inngest.Event(**e) for e in payload])
    return flask.jsonify(ids)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app.run(host="127.0.0.1", port=args.port, threaded=True)
