"""Queue messages are typed: each kind reads the body it writes, with the field names bodies have
always had (so messages already on a queue or in a timer read the same after an upgrade), and a
call retried after finding its run busy is a fresh call."""

from __future__ import annotations

import json

import pytest

from stepline.engine import messages
from stepline.engine.messages import Call, InvokeTimeout, Kind, RunTimeout, Wake, WaitTimeout
from stepline.protocol.opcodes import DISCOVERY_STEP_ID

FAILURE = {"attempt": 0, "started_at": 1, "ended_at": 2, "error": {"name": "E", "message": "m"}}


@pytest.mark.parametrize(
    "message, body",
    [
        (Call(run_id="R"), {"kind": "call", "run_id": "R", "step": DISCOVERY_STEP_ID, "attempt": 0}),
        (
            Call(run_id="R", step="s", attempt=2, busy=1, failures=[FAILURE], claim="c"),
            {"kind": "call", "run_id": "R", "step": "s", "attempt": 2, "busy": 1, "failures": [FAILURE], "claim": "c"},
        ),
        (Wake(run_id="R", step="s"), {"kind": "wake", "run_id": "R", "step": "s"}),
        (InvokeTimeout(run_id="R", step="s"), {"kind": "invoke_timeout", "run_id": "R", "step": "s"}),
        (
            WaitTimeout(run_id="R", step="s", event="e"),
            {"kind": "wait_timeout", "run_id": "R", "step": "s", "event": "e"},
        ),
        (
            WaitTimeout(run_id="R", step="s", event="e", match_key="k"),
            {"kind": "wait_timeout", "run_id": "R", "step": "s", "event": "e", "match_key": "k"},
        ),
        (RunTimeout(run_id="R"), {"kind": "run_timeout", "run_id": "R"}),
    ],
)
def test_each_message_writes_the_body_it_reads(message, body):
    assert message.to_body() == body
    # Through JSON, as the queue carries it: plain strings, read back to the same message.
    carried = json.loads(json.dumps(message.to_body()))
    assert carried == body and type(carried["kind"]) is str
    assert type(message).from_body(carried) == message
    assert messages.problem(carried) is None


def test_the_body_helpers_write_the_typed_messages():
    assert messages.call("R", "s", 1) == Call(run_id="R", step="s", attempt=1).to_body()
    assert messages.wake("R", "s") == Wake(run_id="R", step="s").to_body()
    assert messages.wait_timeout("R", "s", "e", None) == WaitTimeout(run_id="R", step="s", event="e").to_body()
    assert messages.invoke_timeout("R", "s")["kind"] == Kind.INVOKE_TIMEOUT
    assert messages.cron("f", "* * * * *") == {"kind": "cron", "fn_id": "f", "cron": "* * * * *"}


def test_a_call_reads_malformed_optional_fields_as_absent():
    body = {"kind": "call", "run_id": "R", "step": "", "attempt": None, "failures": "x", "claim": 7}
    assert Call.from_body(body) == Call(run_id="R")
    assert Call.from_body({**body, "failures": [FAILURE, "junk"]}).failures == [FAILURE]


def test_a_busy_call_is_retried_fresh_out_of_its_line():
    # A call that waited in a concurrency line, fired early by a timer, carrying a claim.
    body = {
        **Call(run_id="R", step="s", attempt=1, failures=[FAILURE], claim="c").to_body(),
        "line": {"key": "k", "pos": "p", "limit": 1},
        "waits": 2,
        "woken": True,
        "ahead": ["p0"],
        "not_before": 5,
    }
    retry = Call.from_body(body).when_busy().to_body()
    assert retry == {
        "kind": "call",
        "run_id": "R",
        "step": "s",
        "attempt": 1,
        "busy": 1,
        "failures": [FAILURE],
        "claim": "c",
    }
    assert Call.from_body(retry).when_busy().busy == 2
