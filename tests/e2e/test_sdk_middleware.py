"""The official Python SDK's middleware hooks, in the order its own integration suite expects, on
an app served in this process the way that suite serves its apps (Flask on a threaded server).

A function whose one step sends an event takes two calls: the step runs inside the first (with
the send's hooks around the Event API request), the second returns. Every run's hooks must come
in exactly that order: a slow Event API answer, a duplicate or early call, or a step run
twice would each change it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import flask
import inngest
import inngest.flask
import pytest
from werkzeug.serving import make_server

from tests.e2e.conftest import free_port, http, start_runtime, wait_for

APP_ID = "mw-app"
RUNS = 5
# The hooks of inngest 0.5.19 (no memoization hooks yet; "after" hooks run in reverse order).
FIRST_CALL = [
    "1.transform_input", "2.transform_input", "1.before_execution", "2.before_execution",
    "1.before_send_events", "2.before_send_events", "2.after_send_events", "1.after_send_events",
    "2.after_execution", "1.after_execution", "2.transform_output", "1.transform_output",
    "1.before_response", "2.before_response",
]
LAST_CALL = [
    "1.transform_input", "2.transform_input", "1.before_execution", "2.before_execution",
    "2.after_execution", "1.after_execution", "2.transform_output", "1.transform_output",
    "1.before_response", "2.before_response",
]


@dataclass
class Hooks:
    """What the middleware saw, in order, and the run ids the function body saw."""

    calls: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            self.calls.append(name)


def recording(number: int, hooks: Hooks) -> type[inngest.MiddlewareSync]:
    def note(name: str):
        def hook(self, *args: object) -> None:
            hooks.add(f"{number}.{name}")

        return hook

    names = ("transform_input", "before_execution", "before_send_events", "after_send_events", "after_execution",
             "transform_output", "before_response")
    return type(f"Recording{number}", (inngest.MiddlewareSync,), {name: note(name) for name in names})


@dataclass
class MiddlewareStack:
    client: inngest.Inngest
    hooks: Hooks
    url: str


@pytest.fixture(scope="module")
def mw_stack(tmp_path_factory) -> Iterator[MiddlewareStack]:
    app_port = free_port()
    runtime = start_runtime("sqlite", tmp_path_factory.mktemp("middleware"),
                            [f"http://127.0.0.1:{app_port}/api/inngest"])
    hooks = Hooks()
    client = inngest.Inngest(app_id=APP_ID, is_production=False, api_base_url=runtime.url,
                             event_api_base_url=runtime.url, logger=None)

    @client.create_function(fn_id="ordered", middleware=[recording(1, hooks), recording(2, hooks)], retries=0,
                            trigger=inngest.TriggerEvent(event="mw/ordered"))
    def ordered(ctx: inngest.ContextSync) -> None:
        hooks.run_ids.append(ctx.run_id)
        ctx.step.send_event("a", inngest.Event(name="mw/never"))

    app = flask.Flask(__name__)
    inngest.flask.serve(app, client, [ordered])
    server = make_server("127.0.0.1", app_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
        yield MiddlewareStack(client, hooks, runtime.url)
    finally:
        server.shutdown()
        runtime.stop()


def test_middleware_hooks_come_in_the_sdks_order_on_every_run(mw_stack):
    hooks = mw_stack.hooks
    for _ in range(RUNS):
        hooks.calls.clear()
        hooks.run_ids.clear()
        mw_stack.client.send_sync(inngest.Event(name="mw/ordered"))
        wait_for(lambda: hooks.run_ids, what="the function to run")
        run_id = hooks.run_ids[0]

        def ended() -> bool:
            status, body = http("GET", f"{mw_stack.url}/v1/runs/{run_id}")
            return status == 200 and body["data"]["status"] in ("Completed", "Failed", "Cancelled")

        wait_for(ended, what=f"run {run_id} to end")
        assert http("GET", f"{mw_stack.url}/v1/runs/{run_id}")[1]["data"]["status"] == "Completed"
        # The last hook runs before the response that ends the run leaves the app: all are in.
        assert hooks.calls == FIRST_CALL + LAST_CALL
