"""A reply from an app whose wait `if` is refused (the panicking 70 KB expression, a costly one)
fails the run with an error naming the limit, on both backends: it never reaches the CEL
library, and the run does not hang. (Engine tests with their own backend: not in
tests/security, whose package-wide moto runtime would take these messages too.)"""

from __future__ import annotations

import json
import time

import pytest

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.engine.scripted_app import pump
from tests.security.test_expressions import PANICKING, TOO_COSTLY, register_body


class WaitReplyApp:
    """An app whose every reply parks the run on a wait with the given `if`."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.calls = 0

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.calls += 1
        op = {"op": "WaitForEvent", "id": "wait", "name": "t/approved",
              "opts": {"event": "t/approved", "timeout": "1h", "if": self.expression}}
        return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})


@pytest.mark.parametrize("source, fragment", [
    (PANICKING, "73502 bytes; the limit is 4096"),
    TOO_COSTLY["nested-comprehension"],
], ids=["panicking", "costly"])
def test_a_reply_whose_wait_if_is_refused_fails_the_run_naming_it(backend, clock, source, fragment):
    app = WaitReplyApp(source)
    engine = Engine(backend, Settings(mode="dev", retry_base_ms=0, retry_cap_ms=0), clock=clock, caller=app)
    engine.registry.register(parse_register(json.dumps(register_body("t-app")).encode()))
    [event_id] = engine.ingest.accept([{"name": "t-app/never", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    # Each retry is due after its backoff: move the clock on. SQS delays (moto) run in real time.
    deadline = time.monotonic() + 30
    while not backend.store.get_run(run.run_id).status.terminal and time.monotonic() < deadline:
        pump(backend, engine, clock)
        clock.advance(60_000)
        time.sleep(0.05)

    run = backend.store.get_run(run.run_id)
    assert run.status == RunStatus.FAILED, run
    assert "opts.if: " in run.error["message"] and fragment in run.error["message"], run.error
    assert app.calls == 4  # the default three retries, then the run fails
    assert backend.store.waiters_for_event("t/approved", clock.now_ms()).waiters == []
