"""Queue messages are typed and read by one parse: every kind reads the body it writes, with the
field names and shapes bodies have always had (so messages already on a queue, in a timer or in
the dead-letter store read the same after an upgrade), a body that can never be handled is
refused with the reason, and a call retried after finding its run busy is a fresh call."""

from __future__ import annotations

import json

import pytest

from stepline.engine import messages
from stepline.engine.messages import (
    INVALID_BODY,
    AiCall,
    BatchTimeout,
    Call,
    CronFire,
    Debounce,
    Erase,
    Expire,
    InvokeTimeout,
    Kind,
    LinePlace,
    Malformed,
    MatchWaiters,
    Other,
    RunTimeout,
    Start,
    Sweep,
    WaitTimeout,
    Wake,
)
from stepline.protocol.opcodes import DISCOVERY_STEP_ID

FAILURE = {"attempt": 0, "started_at": 1, "ended_at": 2, "error": {"name": "E", "message": "m"}}
# A call's place in a concurrency line, as the line's join writes it: its entry, all its limits.
LINE = {
    "key": "conc:fn-a:3f2c",
    "pos": "001765000000000.01JCALL",
    "limit": 2,
    "limits": [["conc:fn-a:3f2c", 2], ["conc:account:9e1d", 10]],
}
PLACE = LinePlace(
    key="conc:fn-a:3f2c",
    position="001765000000000.01JCALL",
    limit=2,
    limits=(("conc:fn-a:3f2c", 2), ("conc:account:9e1d", 10)),
)
LATER = 1_800_000_000_000  # a not_before: a timer fired the message ahead of its time

# One body of every kind, literally as the engine has written it, and the message it holds.
BODIES = [
    ({"kind": "call", "run_id": "R", "step": DISCOVERY_STEP_ID, "attempt": 0}, Call(run_id="R")),
    (
        {"kind": "call", "run_id": "R", "step": "s", "attempt": 2, "busy": 1, "failures": [FAILURE], "claim": "c"},
        Call(run_id="R", step="s", attempt=2, busy=1, failures=[FAILURE], claim="c"),
    ),
    (
        {"kind": "call", "run_id": "R", "step": DISCOVERY_STEP_ID, "attempt": 0, "join": True},
        Call(run_id="R", join=True),
    ),
    # A retry due past the queue's delay cap, fired early by its timer, still claiming its step.
    (
        {"kind": "call", "run_id": "R", "step": "s", "attempt": 1, "claim": "c", "not_before": LATER},
        Call(run_id="R", step="s", attempt=1, claim="c", not_before=LATER),
    ),
    # Waiting in a concurrency line: as it joined, as its safety net brought it back, as a wake.
    (
        {"kind": "call", "run_id": "R", "step": "s", "attempt": 0, "line": LINE, "waits": 0},
        Call(run_id="R", step="s", place=PLACE),
    ),
    (
        {
            "kind": "call",
            "run_id": "R",
            "step": "s",
            "attempt": 0,
            "failures": [FAILURE],
            "line": LINE,
            "waits": 3,
            "ahead": ["001764999999999.01JA", "001764999999999.01JB"],
        },
        Call(
            run_id="R",
            step="s",
            failures=[FAILURE],
            place=LinePlace(
                key=PLACE.key,
                position=PLACE.position,
                limit=2,
                limits=PLACE.limits,
                waits=3,
                ahead=("001764999999999.01JA", "001764999999999.01JB"),
            ),
        ),
    ),
    (
        {"kind": "call", "run_id": "R", "step": "s", "attempt": 0, "line": LINE, "waits": 0, "woken": True},
        Call(run_id="R", step="s", place=LinePlace(PLACE.key, PLACE.position, 2, PLACE.limits, woken=True)),
    ),
    ({"kind": "wake", "run_id": "R", "step": "s"}, Wake(run_id="R", step="s")),
    (
        {"kind": "wake", "run_id": "R", "step": "s", "not_before": LATER},
        Wake(run_id="R", step="s", not_before=LATER),
    ),
    ({"kind": "invoke_timeout", "run_id": "R", "step": "s"}, InvokeTimeout(run_id="R", step="s")),
    (
        {"kind": "wait_timeout", "run_id": "R", "step": "s", "event": "app/paid"},
        WaitTimeout(run_id="R", step="s", event="app/paid"),
    ),
    (
        {"kind": "wait_timeout", "run_id": "R", "step": "s", "event": "app/paid", "match_key": "k", "not_before": 9},
        WaitTimeout(run_id="R", step="s", event="app/paid", match_key="k", not_before=9),
    ),
    ({"kind": "ai_call", "run_id": "R", "step": "s", "attempt": 0}, AiCall(run_id="R", step="s")),
    (
        {"kind": "ai_call", "run_id": "R", "step": "s", "attempt": 2, "claim": "c"},
        AiCall(run_id="R", step="s", attempt=2, claim="c"),
    ),
    ({"kind": "run_timeout", "run_id": "R"}, RunTimeout(run_id="R")),
    ({"kind": "run_timeout", "run_id": "R", "not_before": LATER}, RunTimeout(run_id="R", not_before=LATER)),
    # A cron fire as scheduled, as the local timers fire it, as Scheduler does, and jittered.
    ({"kind": "cron", "fn_id": "f", "cron": "0 8 * * *"}, CronFire(fn_id="f", cron="0 8 * * *")),
    (
        {"kind": "cron", "fn_id": "f", "cron": "0 8 * * *", "at": 60_000},
        CronFire(fn_id="f", cron="0 8 * * *", at=60_000),
    ),
    (
        {"kind": "cron", "fn_id": "f", "cron": "0 8 * * *", "scheduled_time": "2026-12-07T08:00:00Z"},
        CronFire(fn_id="f", cron="0 8 * * *", scheduled_time="2026-12-07T08:00:00Z"),
    ),
    (
        {
            "kind": "cron",
            "fn_id": "f",
            "cron": "0 8 * * *",
            "scheduled_time": "2026-12-07T08:00:00Z",
            "at": 60_000,
            "jittered": True,
            "not_before": LATER,
        },
        CronFire(
            fn_id="f",
            cron="0 8 * * *",
            scheduled_time="2026-12-07T08:00:00Z",
            at=60_000,
            jittered=True,
            not_before=LATER,
        ),
    ),
    (
        {"kind": "debounce", "fn_id": "f", "key": "debounce:f:1a", "at": 5, "step": "0123456789abcdef"},
        Debounce(fn_id="f", key="debounce:f:1a", at=5, step="0123456789abcdef"),
    ),
    (
        {"kind": "debounce", "fn_id": "f", "key": "debounce:f:1a", "at": 5, "step": "0123", "not_before": 5},
        Debounce(fn_id="f", key="debounce:f:1a", at=5, step="0123", not_before=5),
    ),
    (
        {"kind": "batch", "fn_id": "f", "key": "batch:f:1a", "batch_id": "01JB", "at": 5, "step": "fedcba9876543210"},
        BatchTimeout(fn_id="f", key="batch:f:1a", batch_id="01JB", at=5, step="fedcba9876543210"),
    ),
    ({"kind": "start", "event_ids": ["01JA", "01JB"]}, Start(event_ids=["01JA", "01JB"])),
    (
        {"kind": "start", "event_ids": ["01JA", "01JB"], "duplicates": ["01JB"]},
        Start(event_ids=["01JA", "01JB"], duplicates=["01JB"]),
    ),
    ({"kind": "sweep"}, Sweep()),
    ({"kind": "expire"}, Expire()),
    ({"kind": "erase", "run_id": "R"}, Erase(run_id="R")),
    (
        {"kind": "match_waiters", "event": "01JE", "buckets": ["k1", None], "after": None, "now": 7},
        MatchWaiters(event="01JE", buckets=["k1", None], now=7),
    ),
    (
        {"kind": "match_waiters", "event": "01JE", "buckets": [None], "after": "w-9", "now": 7},
        MatchWaiters(event="01JE", buckets=[None], after="w-9", now=7),
    ),
]


@pytest.mark.parametrize("body, message", BODIES)
def test_every_body_the_engine_writes_parses_to_its_message_and_back(body, message):
    # Through JSON, as the queue, the timers and the dead-letter store carry it.
    carried = json.loads(json.dumps(body))
    parsed = messages.parse(carried)
    assert parsed == message
    assert parsed.to_body() == body
    assert type(parsed).from_body(carried) == message


def test_the_table_has_a_body_of_every_kind():
    assert {message.kind for _, message in BODIES} == set(Kind)


# Bodies that can never be handled, and the reason each is refused (dead-lettered at once).
MALFORMED = [
    ({INVALID_BODY: "{not json"}, "the body is not a JSON object: '{not json'"),
    ({INVALID_BODY: "[1, 2]"}, "the body is not a JSON object: '[1, 2]'"),
    ({}, "unknown message kind None"),
    ({"kind": "launch"}, "unknown message kind 'launch'"),
    ({"kind": 7, "run_id": "R"}, "unknown message kind 7"),
    ({"kind": "call"}, "run_id: missing"),
    ({"kind": "wake", "run_id": "R"}, "step: missing"),
    ({"kind": "wait_timeout", "step": "s"}, "run_id: missing"),
    ({"kind": "debounce", "at": 5}, "key: missing"),
    ({"kind": "batch", "key": "k"}, "at: missing"),
    ({"kind": "cron", "fn_id": "f"}, "cron: missing"),
    ({"kind": "start"}, "event_ids: missing"),
    ({"kind": "match_waiters", "event": "E"}, "buckets: missing"),
    ({"kind": "erase"}, "run_id: missing"),
    ({"kind": "call", "run_id": 5}, "run_id: expected a non-empty str, got 5"),
    ({"kind": "run_timeout", "run_id": None}, "run_id: expected a non-empty str, got None"),
    ({"kind": "call", "run_id": "R", "attempt": "1"}, "attempt: expected a non-empty int, got '1'"),
    ({"kind": "ai_call", "run_id": "R", "step": "s", "attempt": 1.5}, "attempt: expected a non-empty int, got 1.5"),
    ({"kind": "call", "run_id": "R", "failures": "x"}, "failures: expected a non-empty list, got 'x'"),
    ({"kind": "start", "event_ids": "01JA"}, "event_ids: expected a non-empty list, got '01JA'"),
    ({"kind": "match_waiters", "event": 1, "buckets": []}, "event: expected a non-empty str, got 1"),
    (
        {"kind": "cron", "fn_id": "f", "cron": "* * * * *", "scheduled_time": 5},
        "scheduled_time: expected a non-empty str, got 5",
    ),
    ({"kind": "batch", "key": "k", "at": "5"}, "at: expected a non-empty int, got '5'"),
    (
        {"kind": "wake", "run_id": "R", "step": "s", "not_before": "soon"},
        "not_before: expected a non-empty int, got 'soon'",
    ),
    # A bool is an int to Python, never to a message.
    ({"kind": "call", "run_id": "R", "attempt": True}, "attempt: expected a non-empty int, got True"),
    ({"kind": "call", "run_id": "R", "busy": False}, "busy: expected a non-empty int, got False"),
    ({"kind": "debounce", "key": "k", "at": True}, "at: expected a non-empty int, got True"),
    ({"kind": "sweep", "not_before": True}, "not_before: expected a non-empty int, got True"),
    # An empty string names nothing.
    ({"kind": "call", "run_id": ""}, "run_id: expected a non-empty str, got ''"),
    ({"kind": "call", "run_id": "R", "step": ""}, "step: expected a non-empty str, got ''"),
    ({"kind": "wake", "run_id": "R", "step": ""}, "step: expected a non-empty str, got ''"),
    ({"kind": "cron", "fn_id": "", "cron": "* * * * *"}, "fn_id: expected a non-empty str, got ''"),
    ({"kind": "debounce", "key": "", "at": 5}, "key: expected a non-empty str, got ''"),
]


@pytest.mark.parametrize("body, reason", MALFORMED)
def test_a_body_that_can_never_be_handled_is_refused_with_the_reason(body, reason):
    with pytest.raises(Malformed) as refused:
        messages.parse(body)
    assert refused.value.reason == reason


def test_a_refusal_names_the_run_its_body_names():
    with pytest.raises(Malformed) as refused:
        messages.parse({"kind": "call", "run_id": "R", "attempt": "x"})
    assert refused.value.run_id == "R"
    with pytest.raises(Malformed) as refused:
        messages.parse({"kind": "launch", "run_id": ""})
    assert refused.value.run_id is None


def test_a_kind_of_the_executors_own_extra_handlers_is_handed_over_as_received():
    body = {"kind": "custom", "anything": [1], "not_before": 5}
    with pytest.raises(Malformed, match="unknown message kind 'custom'"):
        messages.parse(body)
    parsed = messages.parse(body, handled={"custom"})
    assert parsed == Other(kind="custom", body=body, not_before=5)
    assert parsed.to_body() == body
    assert messages.with_not_before(parsed, None).to_body() == {"kind": "custom", "anything": [1]}


def test_fields_no_body_was_refused_for_are_read_as_absent_when_malformed():
    body = {"kind": "call", "run_id": "R", "claim": 7, "join": "yes", "line": {"key": "k"}, "waits": "2"}
    assert messages.parse(body) == Call(run_id="R")
    assert messages.parse({**body, "failures": [FAILURE, "junk"]}).failures == [FAILURE]
    for line in ({"key": "k", "pos": "p", "limit": "two"}, {"key": "k", "pos": "p", "limits": [["k"]]}):
        assert messages.parse({**body, "line": line}).place is None
    timeout = messages.parse({"kind": "wait_timeout", "run_id": "R", "step": "s", "event": 3, "match_key": 4})
    assert timeout == WaitTimeout(run_id="R", step="s")


def test_the_body_helpers_write_the_typed_messages():
    assert messages.call("R", "s", 1) == Call(run_id="R", step="s", attempt=1).to_body()
    assert messages.wake("R", "s") == Wake(run_id="R", step="s").to_body()
    assert messages.wait_timeout("R", "s", "e", None) == WaitTimeout(run_id="R", step="s", event="e").to_body()
    assert messages.invoke_timeout("R", "s")["kind"] == Kind.INVOKE_TIMEOUT
    assert messages.ai_call("R", "s", 1, claim="c") == AiCall(run_id="R", step="s", attempt=1, claim="c").to_body()
    assert messages.cron("f", "* * * * *") == {"kind": "cron", "fn_id": "f", "cron": "* * * * *"}
    assert messages.sweep() == {"kind": "sweep"} and messages.expire() == {"kind": "expire"}


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
    call = messages.parse(body)
    assert call.place == LinePlace(key="k", position="p", limit=1, waits=2, woken=True, ahead=("p0",))
    retry = call.when_busy().to_body()
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


def test_a_dead_lettered_call_keeps_its_due_time_but_not_its_place():
    body = {"kind": "call", "run_id": "R", "step": "s", "attempt": 0, "line": LINE, "waits": 4, "not_before": 9}
    kept = messages.out_of_line(messages.parse(body)).to_body()
    assert kept == {"kind": "call", "run_id": "R", "step": "s", "attempt": 0, "not_before": 9}


def test_two_copies_of_the_same_work_compare_equal():
    waiting = messages.parse({"kind": "call", "run_id": "R", "step": "s", "attempt": 0, "line": LINE, "waits": 3})
    busy = messages.parse({"kind": "call", "run_id": "R", "step": "s", "attempt": 0, "busy": 2, "not_before": 1})
    assert waiting.work() == busy.work() == Call(run_id="R", step="s")
    assert waiting.work() != Call(run_id="R", step="s", attempt=1)


@pytest.mark.parametrize(
    "message, name",
    [
        (Call(run_id="R", step="s", attempt=2), "call-R-s-2"),
        (AiCall(run_id="R", step="a-very-long-step-identifier"), "aicall-R-a-very-long-step-0"),
        (Debounce(key="k", at=1, step="0123456789abcdef"), "debounce--0123456789abcdef-0"),
        (Wake(run_id="R", step="s", not_before=5), "wake-R-s-0"),
    ],
)
def test_a_timer_is_named_by_kind_run_step_and_attempt(message, name):
    assert messages.timer_name(message) == name
