"""The hidden cost of a long run, counted (bytes, encodings, store calls), never timed.

* Checkpointed (our SDK, the checkpoint stream): a run of 400 steps takes one call whose request
  is no bigger than a 40-step run's, sends the same bytes per step, and costs the store exactly
  one more write per step and nothing else that grows with the run.
* One call per step (an SDK that cannot checkpoint): every call carries every memo so far (the
  protocol asks for it), but the engine's own work stays linear: each memo is canonicalized
  once, not once per call.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

import stepline.protocol.call_encoding as call_encoding
from stepline import Client, Context, serve_wsgi
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.clock import ManualClock
from stepline.engine.ports import Backend
from stepline.settings import Settings
from tests.e2e.call_log import CallLog
from tests.engine.scripted_app import ScriptedApp, pump, register
from tests.sdk.harness import AppServer, http, wait_for

# -- checkpointed ---------------------------------------------------------------------------------

APP_ID = "flat-cost"
client = Client(APP_ID, dev=True)


@client.function("chain", trigger="flat/chain", retries=0)
def chain(ctx: Context) -> int:
    return sum(ctx.step.run(f"s{i}", lambda i=i: i) for i in range(ctx.event.data["steps"]))


class CountingStore:
    """The backend's store, counting every call made to it by method."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()
        self.counting = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            if self.counting:
                self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def checkpointing_stack(backend, tmp_path, monkeypatch):
    store = CountingStore(backend.store)
    counted = Backend(store=store, queue=backend.queue, timers=backend.timers, dead_letters=backend.dead_letters)
    calls = CallLog()
    runtime = DevRuntime(
        DevOptions(port=0, db_path=str(tmp_path / "unused.db"), workers=1),
        Settings(mode="dev"),
        clock=ManualClock(),
        caller=calls,
        backend=counted,
    ).start()
    monkeypatch.setenv("INNGEST_DEV", runtime.url)
    app = AppServer(serve_wsgi(client))
    try:
        assert http("PUT", app.url)[0] == 200
        wait_for(lambda: backend.store.get_app(APP_ID), what="the app to sync")
        yield runtime, store, calls
    finally:
        app.stop()
        runtime.stop()


def run_chain(runtime: DevRuntime, store: CountingStore, calls: CallLog, steps: int) -> dict[str, Any]:
    store.calls.clear()
    store.counting = True
    status, body = http("POST", f"{runtime.url}/e/key", {"name": "flat/chain", "data": {"steps": steps}})
    assert status == 200, body
    [event_id] = body["ids"]

    def done() -> Any:
        # Straight from the store, past the counter: the test's own polling is no cost of the run.
        runs = store._inner.runs_for_event(event_id)
        return runs[0] if runs and runs[0].status.terminal else None

    run = wait_for(done, timeout_s=60, what=f"the {steps}-step run")
    store.counting = False
    assert run.output == sum(range(steps)), run
    made = calls.for_run(run.run_id)
    return {
        "calls": len(made),
        "request_bytes": sum(c.request_bytes for c in made),
        "streamed_bytes": calls.streamed_bytes[run.run_id],
        "store": Counter(store.calls),
    }


def test_a_checkpointed_run_costs_the_same_per_step_whatever_its_length(checkpointing_stack):
    runtime, store, calls = checkpointing_stack
    short, long = run_chain(runtime, store, calls, 40), run_chain(runtime, store, calls, 400)
    assert short["calls"] == long["calls"] == 1
    assert long["request_bytes"] <= short["request_bytes"] * 1.1  # the request carries no memos
    per_step = [r["streamed_bytes"] / n for r, n in ((short, 40), (long, 400))]
    assert per_step[1] <= per_step[0] * 1.1, per_step
    # One memo write per step; everything else the store is asked is per run, not per step (a
    # cached read may be made for one run and not the other).
    assert (long["store"]["commit_memo"], short["store"]["commit_memo"]) == (400, 40)
    for name, n in long["store"].items():
        if name != "commit_memo":
            assert n <= short["store"][name] + 1, (name, long["store"], short["store"])


# -- one call per step ------------------------------------------------------------------------------


def per_step_run(backend, clock, steps: int, monkeypatch) -> dict[str, int]:
    """A run of ``steps`` steps by an app that answers one step per call; what the engine
    canonicalized and what it sent."""
    fn_id = f"long-{uuid.uuid4().hex[:6]}"
    app = ScriptedApp({fn_id: [("run", f"s{i}") for i in range(steps)]})
    sent = {"bytes": 0, "calls": 0}
    post = app.post

    def counting_post(url: str, body: bytes, headers: dict[str, str], timeout_s: float):
        sent["bytes"] += len(body)
        sent["calls"] += 1
        return post(url, body, headers, timeout_s)

    app.post = counting_post  # type: ignore[method-assign]
    from stepline.engine.core import Engine

    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, [fn_id])
    encoded = {"bytes": 0}
    original = call_encoding.canonical_json

    def counting(value: Any) -> bytes:
        out = original(value)
        encoded["bytes"] += len(out)
        return out

    monkeypatch.setattr(call_encoding, "canonical_json", counting)
    engine.ingest.accept([{"name": f"app/{fn_id}", "data": {}}])
    pump(backend, engine, clock)
    monkeypatch.setattr(call_encoding, "canonical_json", original)
    assert sum(app.executed.values()) == steps
    return {"calls": sent["calls"], "sent": sent["bytes"], "canonicalized": encoded["bytes"]}


def test_per_step_calls_canonicalize_each_memo_once(backend, clock, monkeypatch):
    short = per_step_run(backend, clock, 60, monkeypatch)
    long = per_step_run(backend, clock, 120, monkeypatch)
    assert (short["calls"], long["calls"]) == (61, 121)
    # What goes on the wire grows with the square of the run (every call carries every memo)...
    assert long["sent"] > 3 * short["sent"]
    # ...but what the engine canonicalizes grows with the run: each memo once, and a small
    # fixed part per call.
    assert long["canonicalized"] < 2.2 * short["canonicalized"], (short, long)
