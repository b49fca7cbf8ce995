"""The chaos workload: an app on the official `inngest` Python SDK (Flask), unmodified.

Every successful step body returns a fresh nonce (``n-<32 hex>``) and records it, keyed by
(run id, step name), before returning. So after a chaos run the ledger says exactly how many
times each body ran to success and which result each execution produced; the runtime's stored
memo must be one of them, and every other one must have been lost to an injected fault.

Workflows (one per shape the issue asks for): sequential steps with a retried failure, a sleep,
a wait for an event, a parallel group, an invoke of a child function, a concurrency limit, and a
parallel group one of whose planned steps vanishes from the code under the run.

Run: INNGEST_DEV=http://127.0.0.1:8288 python -m tests.chaos.app --port 8290
"""

from __future__ import annotations

import argparse
import datetime
import threading
import uuid
from collections import defaultdict

import flask
import inngest
import inngest.flask

APP_ID = "chaos-app"

client = inngest.Inngest(app_id=APP_ID, logger=None)
app = flask.Flask(__name__)
# (run id, step name) -> nonces of the executions that finished successfully, in order.
_ledger: dict[str, list[str]] = defaultdict(list)
_attempts: dict[str, int] = defaultdict(int)
_lock = threading.Lock()


def effect(ctx: inngest.ContextSync, step: str):
    """A step body: one side effect (a ledger entry) per successful execution."""

    def body() -> str:
        nonce = f"n-{uuid.uuid4().hex}"
        with _lock:
            _ledger[f"{ctx.run_id}/{step}"].append(nonce)
        return nonce

    return body


def flaky_effect(ctx: inngest.ContextSync, step: str):
    """Fails its first execution, then behaves like ``effect``: retries under faults."""

    def body() -> str:
        key = f"{ctx.run_id}/{step}"
        with _lock:
            _attempts[key] += 1
            first = _attempts[key] == 1
        if first:
            raise RuntimeError("first attempt fails on purpose")
        return effect(ctx, step)()

    return body


@client.create_function(fn_id="chaos-steps", trigger=inngest.TriggerEvent(event="chaos/steps"), retries=5)
def steps(ctx: inngest.ContextSync) -> dict:
    a = ctx.step.run("a", effect(ctx, "a"))
    b_body = flaky_effect(ctx, "b") if ctx.event.data.get("flaky") else effect(ctx, "b")
    b = ctx.step.run("b", b_body)
    c = ctx.step.run("c", effect(ctx, "c"))
    return {"a": a, "b": b, "c": c}


@client.create_function(fn_id="chaos-sleep", trigger=inngest.TriggerEvent(event="chaos/sleep"), retries=5)
def sleeper(ctx: inngest.ContextSync) -> dict:
    a = ctx.step.run("a", effect(ctx, "a"))
    ctx.step.sleep("nap", datetime.timedelta(seconds=ctx.event.data.get("seconds", 1)))
    b = ctx.step.run("b", effect(ctx, "b"))
    return {"a": a, "b": b}


@client.create_function(fn_id="chaos-wait", trigger=inngest.TriggerEvent(event="chaos/wait"), retries=5)
def waiter(ctx: inngest.ContextSync) -> dict:
    a = ctx.step.run("a", effect(ctx, "a"))
    got = ctx.step.wait_for_event(
        "go",
        event="chaos/go",
        if_exp="event.data.key == async.data.key",
        timeout=datetime.timedelta(seconds=ctx.event.data.get("timeout_s", 2)),
    )
    b = ctx.step.run("b", effect(ctx, "b"))
    return {"a": a, "b": b, "go": got.data.get("key") if got else None}


@client.create_function(fn_id="chaos-parallel", trigger=inngest.TriggerEvent(event="chaos/parallel"), retries=5)
def parallel(ctx: inngest.ContextSync) -> dict:
    branches = tuple((lambda name=name: ctx.step.run(name, effect(ctx, name))) for name in ("p1", "p2", "p3"))
    results = ctx.group.parallel(branches)
    join = ctx.step.run("join", effect(ctx, "join"))
    return {"p1": results[0], "p2": results[1], "p3": results[2], "join": join}


@client.create_function(fn_id="chaos-child", trigger=inngest.TriggerEvent(event="chaos/child"), retries=5)
def child(ctx: inngest.ContextSync) -> dict:
    return {"c1": ctx.step.run("c1", effect(ctx, "c1"))}


@client.create_function(fn_id="chaos-invoke", trigger=inngest.TriggerEvent(event="chaos/invoke"), retries=5)
def invoker(ctx: inngest.ContextSync) -> dict:
    a = ctx.step.run("a", effect(ctx, "a"))
    got = ctx.step.invoke("call", function=child, data={"key": ctx.event.data.get("key")},
                          timeout=datetime.timedelta(seconds=60))
    b = ctx.step.run("b", effect(ctx, "b"))
    return {"a": a, "b": b, "child": got}


@client.create_function(
    fn_id="chaos-limited",
    trigger=inngest.TriggerEvent(event="chaos/limited"),
    retries=5,
    concurrency=[inngest.Concurrency(limit=2)],
)
def limited(ctx: inngest.ContextSync) -> dict:
    a = ctx.step.run("a", effect(ctx, "a"))
    b = ctx.step.run("b", effect(ctx, "b"))
    return {"a": a, "b": b}


@client.create_function(fn_id="chaos-vanishing", trigger=inngest.TriggerEvent(event="chaos/vanishing"), retries=5)
def vanishing(ctx: inngest.ContextSync) -> dict:
    # The group's third branch is in the code only until its first branch's body has run: a
    # planned step whose code went away under the run. Its targeted call then fails on every
    # attempt, so the run must end Failed, never Completed without that step's result (unless
    # the step ran before it went away).
    with _lock:
        gone = bool(_ledger.get(f"{ctx.run_id}/v1"))
    names = ("v1", "v2") if gone else ("v1", "v2", "v3")
    ctx.group.parallel(tuple((lambda name=name: ctx.step.run(name, effect(ctx, name))) for name in names))
    return {"after": ctx.step.run("after", effect(ctx, "after"))}


inngest.flask.serve(app, client, [steps, sleeper, waiter, parallel, child, invoker, limited, vanishing])


# Run id -> the step ids of the targeted calls that reached the app, whatever became of them.
_targets: dict[str, list[str]] = defaultdict(list)


@app.before_request
def record_target() -> None:
    target = flask.request.args.get("stepId")
    if flask.request.method == "POST" and target and target != "step":
        run_id = ((flask.request.get_json(silent=True) or {}).get("ctx") or {}).get("run_id")
        with _lock:
            _targets[str(run_id)].append(target)


@app.get("/targets")
def targets() -> flask.Response:
    with _lock:
        return flask.jsonify(dict(_targets))


@app.get("/ledger")
def ledger() -> flask.Response:
    with _lock:
        return flask.jsonify(dict(_ledger))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app.run(host="127.0.0.1", port=args.port, threaded=True)
