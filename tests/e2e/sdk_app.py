"""An app built on the official `inngest` Python SDK (Flask), used unmodified by the end-to-end
tests. It learns where Stepline is from INNGEST_DEV, like any user app.

Every step body bumps a counter keyed by (function, step, event.data.key), and GET /counters
returns them, so a test can prove how many times each step really ran.

Run: INNGEST_DEV=http://127.0.0.1:8288 python tests/e2e/sdk_app.py --port 8289
"""

from __future__ import annotations

import argparse
import datetime
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
_failures: dict[str, object] = {}  # event.data.key -> data.error as the on_failure handler saw it
_active: Counter[str] = Counter()
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


@client.create_function(fn_id="approval", trigger=inngest.TriggerEvent(event="test/approval.requested"))
def approval(ctx: inngest.ContextSync) -> dict:
    ctx.step.run("ask", lambda: bump("approval", "ask", ctx) and "asked")
    decision = ctx.step.wait_for_event(
        "wait-decision",
        event="test/approval.decided",
        if_exp="event.data.key == async.data.key",
        timeout=datetime.timedelta(seconds=ctx.event.data.get("timeout_s", 30)),
    )
    return {"decision": decision.data.get("decision") if decision else None}


@client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="test/child.direct"))
def child(ctx: inngest.ContextSync) -> dict:
    if ctx.event.data.get("explode"):
        raise inngest.NonRetriableError("child exploded")
    if ctx.event.data.get("linger_s"):
        ctx.step.sleep("linger", datetime.timedelta(seconds=ctx.event.data["linger_s"]))
    return {"child_got": ctx.event.data.get("value"), "double": ctx.event.data.get("value", 0) * 2}


@client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="test/parent"))
def parent(ctx: inngest.ContextSync) -> dict:
    try:
        result = ctx.step.invoke(
            "call-child",
            function=child,
            data={"key": ctx.event.data.get("key"), "value": ctx.event.data.get("value", 1),
                  "explode": ctx.event.data.get("explode", False), "linger_s": ctx.event.data.get("linger_s", 0)},
            timeout=datetime.timedelta(seconds=ctx.event.data.get("timeout_s", 60)),
        )
    except inngest.StepError as err:
        return {"child_error": str(err), "child_error_name": err.name}
    except inngest.NonRetriableError as err:
        return {"child_error": str(err)}
    return {"child": result}


@client.create_function(fn_id="cross-app", trigger=inngest.TriggerEvent(event="test/cross-app"))
def cross_app(ctx: inngest.ContextSync) -> dict:
    result = ctx.step.invoke_by_id(
        "call-remote", app_id="other-app", function_id="remote-double", data={"value": ctx.event.data.get("value", 1)}
    )
    return {"remote_result": result}


@client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="test/sender"))
def sender(ctx: inngest.ContextSync) -> dict:
    ids = ctx.step.send_event(
        "send-followups",
        [inngest.Event(name="test/multi", data={"key": ctx.event.data["key"] + "-sent", "x": 5})],
    )
    return {"ids": ids}


@client.create_function(fn_id="parallel", trigger=inngest.TriggerEvent(event="test/parallel"))
def parallel(ctx: inngest.ContextSync) -> dict:
    k = ctx.event.data.get("key", "")

    def branch(name: str, seconds: float):
        def body() -> str:
            bump("parallel", name, ctx)
            # Record how many branches overlap: proof that they run side by side.
            with _lock:
                _active[k] += 1
                peak = f"parallel/max-active/{k}"
                _counts[peak] = max(_counts[peak], _active[k])
            time.sleep(seconds)
            with _lock:
                _active[k] -= 1
            return name
        return lambda: ctx.step.run(name, body)

    started = time.time()
    results = ctx.group.parallel((branch("p1", 1.0), branch("p2", 1.0), branch("p3", 1.0)))
    joined = ctx.step.run("join", lambda: bump("parallel", "join", ctx) and list(results))
    return {"joined": joined, "started": started}


@client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="test/napper.direct"), retries=0)
def napper(ctx: inngest.ContextSync) -> str:
    ctx.step.sleep("nap", datetime.timedelta(seconds=1))
    return "done"


@client.create_function(fn_id="mixed-group", trigger=inngest.TriggerEvent(event="test/mixed-group"), retries=0)
def mixed_group(ctx: inngest.ContextSync) -> dict:
    # The Python SDK's own parallel case: an invoke, two steps and a send in one group, then a
    # step. Every entry into the function is one call from Stepline.
    bump("mixed-group", "calls", ctx)
    out = ctx.group.parallel((
        lambda: ctx.step.invoke("invoke", function=napper),
        lambda: ctx.step.run("1a", lambda: bump("mixed-group", "1a", ctx) and 1),
        lambda: ctx.step.run("1b", lambda: bump("mixed-group", "1b", ctx) and 2),
        lambda: ctx.step.send_event("send", events=inngest.Event(name="test/noop")),
    ))
    ctx.step.run("after", lambda: bump("mixed-group", "after", ctx))
    return {"group": [out[0], out[1], out[2], len(out[3])]}


_order: dict[str, list[str]] = {}  # event.data.key -> step names in the order their bodies ran


@client.create_function(fn_id="chains", trigger=inngest.TriggerEvent(event="test/chains"), retries=0)
def chains(ctx: inngest.ContextSync) -> list:
    def step(name: str) -> str:
        def body() -> str:
            with _lock:
                _order.setdefault(ctx.event.data.get("key", ""), []).append(name)
            return name
        return ctx.step.run(name, body)

    return list(ctx.group.parallel((lambda: [step("a.1"), step("a.2")], lambda: [step("b.1"), step("b.2")])))


@client.create_function(
    fn_id="cancellable",
    trigger=inngest.TriggerEvent(event="test/cancellable"),
    cancel=[inngest.Cancel(event="test/cancel", if_exp="event.data.key == async.data.key")],
)
def cancellable(ctx: inngest.ContextSync) -> str:
    ctx.step.run("before", lambda: bump("cancellable", "before", ctx) and "ok")
    ctx.step.sleep("long-nap", datetime.timedelta(hours=1))
    return ctx.step.run("after", lambda: bump("cancellable", "after", ctx) and "never")


@client.create_function(
    fn_id="deadline",
    trigger=inngest.TriggerEvent(event="test/deadline"),
    timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=2)),
)
def deadline(ctx: inngest.ContextSync) -> str:
    ctx.step.run("before", lambda: bump("deadline", "before", ctx) and "ok")
    ctx.step.sleep("too-long", datetime.timedelta(seconds=30))
    return "finished"


def on_careful_failure(ctx: inngest.ContextSync) -> None:
    # The handler's event is inngest/function.failed: the failed run's event is inside it.
    original = ctx.event.data.get("event", {}).get("data", {})
    with _lock:
        _counts[f"careful-failure/handler/{original.get('key', '')}"] += 1
        _failures[original.get("key", "")] = ctx.event.data.get("error")


@client.create_function(
    fn_id="careful",
    trigger=inngest.TriggerEvent(event="test/careful"),
    retries=1,
    on_failure=on_careful_failure,
)
def careful(ctx: inngest.ContextSync) -> dict:
    def breaks() -> str:
        bump("careful", "breaks", ctx)
        raise ValueError("step went boom")

    try:
        ctx.step.run("breaks", breaks)
    except inngest.StepError as err:
        caught = str(err)
        if ctx.event.data.get("rethrow"):
            raise
        return {"caught": caught}
    return {"caught": None}


@client.create_function(fn_id="patient", trigger=inngest.TriggerEvent(event="test/patient"), retries=2)
def patient(ctx: inngest.ContextSync) -> str:
    n = bump("patient", "body", ctx)
    if n == 1:
        raise inngest.RetryAfterError("later please", datetime.timedelta(seconds=2))
    return f"attempt {n}"


@client.create_function(
    fn_id="nightly",
    trigger=[inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"), inngest.TriggerCron(cron="0 8 * * *")],
)
def nightly(ctx: inngest.ContextSync) -> dict:
    ctx.step.run("report", lambda: bump("nightly", "report", ctx) and "reported")
    return {"event": ctx.event.name, "cron": ctx.event.data.get("cron")}


@client.create_function(fn_id="hibernate", trigger=inngest.TriggerEvent(event="test/hibernate"))
def hibernate(ctx: inngest.ContextSync) -> str:
    ctx.step.run("before", lambda: bump("hibernate", "before", ctx) and "ok")
    ctx.step.sleep("a-year", datetime.timedelta(days=365))
    return ctx.step.run("after", lambda: bump("hibernate", "after", ctx) and "awake")


# -- large payloads (tests/e2e/test_large_payloads.py) --------------------------------------------
MIB = 1024 * 1024


def big_part(i: int) -> str:
    return f"part-{i}:" + "x" * MIB


@client.create_function(fn_id="big-steps", trigger=inngest.TriggerEvent(event="test/big-steps"))
def big_steps(ctx: inngest.ContextSync) -> dict:
    # Each step returns about 1 MiB, so after the first one the run's state is past the use_api
    # threshold and every later call has the SDK fetch its memos from /v0/runs/{id}/actions.
    parts = [
        ctx.step.run(f"part-{i}", lambda i=i: bump("big-steps", f"part-{i}", ctx) and big_part(i))
        for i in range(ctx.event.data.get("parts", 3))
    ]
    return {
        "sizes": [len(p) for p in parts],
        "intact": all(p == big_part(i) for i, p in enumerate(parts)),
        "events": len(ctx.events),
    }


@client.create_function(fn_id="big-output", trigger=inngest.TriggerEvent(event="test/big-output"))
def big_output(ctx: inngest.ContextSync) -> dict:
    try:
        ctx.step.run("too-big", lambda: bump("big-output", "too-big", ctx) and "x" * (5 * MIB))
        caught = None
    except inngest.StepError as err:
        caught = {"name": err.name, "message": err.message}
    after = ctx.step.run("after", lambda: bump("big-output", "after", ctx) and "still running")
    return {"caught": caught, "after": after}


@client.create_function(fn_id="big-event", trigger=inngest.TriggerEvent(event="test/big-event"))
def big_event(ctx: inngest.ContextSync) -> dict:
    blob = ctx.event.data.get("blob", "")
    return ctx.step.run(
        "measure",
        lambda: bump("big-event", "measure", ctx) and {
            "blob_len": len(blob),
            "events": len(ctx.events),
            "batch_matches": [e.data.get("blob") == blob for e in ctx.events],
        },
    )


@client.create_function(
    fn_id="big-batch",
    trigger=inngest.TriggerEvent(event="test/big-batch"),
    # The timeout only ends the last, partial batch: long enough that the full ones are always
    # sealed by size, however slowly a loaded machine sends their events.
    batch_events=inngest.Batch(max_size=100, timeout=datetime.timedelta(seconds=15), key="event.data.key"),
)
def big_batch(ctx: inngest.ContextSync) -> dict:
    # About 1 MiB per event: the batch reaches the SDK through /v0/runs/{id}/batch (use_api).
    return {
        "indices": [e.data.get("i") for e in ctx.events],
        "intact": all(e.data.get("blob") == big_part(e.data.get("i")) for e in ctx.events),
    }


LARGE_PAYLOAD_FUNCTIONS = [big_steps, big_output, big_event, big_batch]
# -- end of large payloads ------------------------------------------------------------------------


# -- flow control (tests/e2e/test_flow_control.py, tests/e2e/test_flow_control_time.py) ----------
# Each run records what it did under its event's data.group, so one test reads back only its own
# runs: the order step bodies ran in, when they started, and how many overlapped.
_fc_log: dict[str, list] = {}
_fc_active: Counter[str] = Counter()
_fc_gates: dict[str, threading.Event] = {}


def fc_gate(group: str) -> threading.Event:
    with _lock:
        return _fc_gates.setdefault(group, threading.Event())


def fc_record(group: str, entry: object) -> None:
    with _lock:
        _fc_log.setdefault(group, []).append(entry)


def fc_busy(names: list[str], seconds: float) -> None:
    """Hold a "slot" in each named counter for ``seconds``; the peak overlap is recorded."""
    with _lock:
        for name in names:
            _fc_active[name] += 1
            _counts[f"fc-peak/{name}"] = max(_counts[f"fc-peak/{name}"], _fc_active[name])
    time.sleep(seconds)
    with _lock:
        for name in names:
            _fc_active[name] -= 1


@client.create_function(
    fn_id="fc-limited",
    trigger=inngest.TriggerEvent(event="fc/limited"),
    concurrency=[inngest.Concurrency(limit=1, key="event.data.user"), inngest.Concurrency(limit=2)],
)
def fc_limited(ctx: inngest.ContextSync) -> str:
    group, user = ctx.event.data["group"], ctx.event.data["user"]
    names = [group, f"{group}/{user}"]
    for step in ("first", "second"):
        ctx.step.run(step, lambda step=step: bump("fc-limited", step, ctx) and fc_busy(names, 0.2) or step)
    return "done"


@client.create_function(
    fn_id="fc-napper",
    trigger=inngest.TriggerEvent(event="fc/napper"),
    concurrency=[inngest.Concurrency(limit=1)],
)
def fc_napper(ctx: inngest.ContextSync) -> str:
    group, key = ctx.event.data["group"], ctx.event.data["key"]
    ctx.step.run("before", lambda: fc_record(group, f"{key}:before") or "ok")
    ctx.step.sleep("nap", datetime.timedelta(seconds=2))
    ctx.step.run("after", lambda: fc_record(group, f"{key}:after") or "ok")
    return "rested"


@client.create_function(
    fn_id="fc-prioritized",
    trigger=inngest.TriggerEvent(event="fc/prioritized"),
    concurrency=[inngest.Concurrency(limit=1)],
    priority=inngest.Priority(run="event.data.priority"),
)
def fc_prioritized(ctx: inngest.ContextSync) -> str:
    group, key = ctx.event.data["group"], ctx.event.data["key"]

    def work() -> str:
        fc_record(group, key)
        if ctx.event.data.get("hold"):
            fc_gate(group).wait(10)  # until the test opens it (POST /fc/open/<group>)
        return key

    return ctx.step.run("work", work)


@client.create_function(
    fn_id="fc-throttled",
    trigger=inngest.TriggerEvent(event="fc/throttled"),
    throttle=inngest.Throttle(limit=2, period=datetime.timedelta(seconds=1)),
)
def fc_throttled(ctx: inngest.ContextSync) -> str:
    group = ctx.event.data["group"]
    return ctx.step.run("start", lambda: fc_record(group, time.time()) or "started")


@client.create_function(
    fn_id="fc-rate-limited",
    trigger=inngest.TriggerEvent(event="fc/rate-limited"),
    rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(hours=1), key="event.data.user"),
)
def fc_rate_limited(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("work", lambda: bump("fc-rate-limited", "work", ctx) and ctx.event.data["user"])


@client.create_function(
    fn_id="fc-idempotent",
    trigger=inngest.TriggerEvent(event="fc/idempotent"),
    idempotency="event.data.order",
)
def fc_idempotent(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("charge", lambda: bump("fc-idempotent", "charge", ctx) and ctx.event.data["order"])


@client.create_function(
    fn_id="fc-single-skip",
    trigger=inngest.TriggerEvent(event="fc/single-skip"),
    singleton=inngest.Singleton(key="event.data.user", mode="skip"),
)
def fc_single_skip(ctx: inngest.ContextSync) -> str:
    ctx.step.run("start", lambda: bump("fc-single-skip", "start", ctx) and "started")
    ctx.step.sleep("hold", datetime.timedelta(seconds=ctx.event.data.get("hold_s", 0) or 1))
    return "done"


@client.create_function(
    fn_id="fc-single-cancel",
    trigger=inngest.TriggerEvent(event="fc/single-cancel"),
    singleton=inngest.Singleton(key="event.data.user", mode="cancel"),
)
def fc_single_cancel(ctx: inngest.ContextSync) -> str:
    ctx.step.run("start", lambda: bump("fc-single-cancel", "start", ctx) and "started")
    if ctx.event.data.get("hold_s"):
        ctx.step.sleep("hold", datetime.timedelta(seconds=ctx.event.data["hold_s"]))
    return "done"


@client.create_function(
    fn_id="fc-debounced",
    trigger=inngest.TriggerEvent(event="fc/debounced"),
    debounce=inngest.Debounce(key="event.data.user", period=datetime.timedelta(hours=1),
                              timeout=datetime.timedelta(minutes=100)),
)
def fc_debounced(ctx: inngest.ContextSync) -> dict:
    n = ctx.step.run("take", lambda: bump("fc-debounced", "take", ctx) and ctx.event.data["n"])
    return {"n": n, "events": len(ctx.events)}


@client.create_function(
    fn_id="fc-batched",
    trigger=inngest.TriggerEvent(event="fc/batched"),
    batch_events=inngest.Batch(max_size=3, timeout=datetime.timedelta(minutes=20), key="event.data.user",
                               if_exp="event.data.batch == true"),
)
def fc_batched(ctx: inngest.ContextSync) -> dict:
    ns = [e.data["n"] for e in ctx.events]
    return ctx.step.run("sum", lambda: bump("fc-batched", "sum", ctx) and {"ns": ns, "size": len(ns)})


@app.post("/fc/open/<group>")
def fc_open(group: str) -> flask.Response:
    fc_gate(group).set()
    return flask.jsonify(True)


@app.get("/fc/log/<group>")
def fc_log(group: str) -> flask.Response:
    with _lock:
        return flask.jsonify(list(_fc_log.get(group, [])))


FLOW_CONTROL_FUNCTIONS = [
    fc_limited, fc_napper, fc_prioritized, fc_throttled, fc_rate_limited, fc_idempotent,
    fc_single_skip, fc_single_cancel, fc_debounced, fc_batched,
]
# -- end of flow control --------------------------------------------------------------------------


FUNCTIONS = [cross_app, nightly, hibernate, multi_step, sleeper, slow, approval, child, parent, sender, parallel,
             napper, mixed_group, chains, cancellable, deadline, careful, patient, flaky, doomed, refuser, fan_a, fan_b, filtered] + LARGE_PAYLOAD_FUNCTIONS + FLOW_CONTROL_FUNCTIONS
inngest.flask.serve(app, client, FUNCTIONS)


@app.get("/counters")
def counters() -> flask.Response:
    with _lock:
        return flask.jsonify(dict(_counts))


@app.get("/order/<key>")
def order(key: str) -> flask.Response:
    with _lock:
        return flask.jsonify(list(_order.get(key, [])))


@app.get("/failures")
def failures() -> flask.Response:
    with _lock:
        return flask.jsonify(dict(_failures))


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
