"""The executor Lambda never outruns itself, on both backends: driven through its handler with a
fake Lambda context whose remaining time runs out mid-loop (calls take 40 s of a manual clock),
every call it starts ends, step timeout and all, with the margin for its writes still left; the
rest of the run goes on in later invocations, each step run once. A record that comes too late
for even that is handed back at once."""

from __future__ import annotations

import json

import pytest

from stepline.engine.core import Engine
from stepline.engine.ports import RunStatus
from stepline.handlers.executor import make_handler
from stepline.settings import DEADLINE_MARGIN_S, Settings
from tests.engine.scripted_app import ScriptedApp, register

CALL_MS = 40_000  # every call to the app takes this long
STEPS = ["a", "b", "c", "d", "e", "f"]
SETTINGS = Settings(mode="dev", step_timeout_s=60, invocation_budget_s=600)


class CountdownContext:
    """A Lambda context on the engine's clock: ``timeout_ms`` from when the invocation began."""

    def __init__(self, clock, timeout_ms: int) -> None:
        self.clock = clock
        self.ends_at = clock.now_ms() + timeout_ms
        self.function_name = "stepline-executor"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stepline-executor"
        self.aws_request_id = "r"

    def get_remaining_time_in_millis(self) -> int:
        return max(self.ends_at - self.clock.now_ms(), 0)


def lambda_record(message) -> dict:
    return {
        "messageId": message.handle,
        "receiptHandle": message.handle,
        "body": json.dumps(message.body),
        "attributes": {"ApproximateReceiveCount": str(message.receive_count), "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stepline",
        "awsRegion": "us-east-1",
    }


@pytest.fixture
def deployed(backend, clock):
    app = ScriptedApp({"go": [("run", s) for s in STEPS]})
    calls: list[tuple[int, int]] = []  # (started, ended) of each call

    def slow_call(_fn: str, _step: str) -> None:
        started = clock.now_ms()
        clock.advance(CALL_MS)
        calls.append((started, clock.now_ms()))

    app.before_call = slow_call
    engine = Engine(backend, SETTINGS, clock=clock, caller=app)
    register(engine, ["go"])
    return engine, app, calls


def invoke(engine: Engine, backend, clock, timeout_ms: int, batch_size: int = 1) -> tuple[dict, CountdownContext]:
    """One executor invocation: receive a batch as the event source would, hand it to the
    handler, delete what succeeded."""
    batch = backend.queue.receive(batch_size, 60)
    assert batch, "nothing to deliver"
    context = CountdownContext(clock, timeout_ms)
    result = make_handler(engine)({"Records": [lambda_record(m) for m in batch]}, context)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for message in batch:
        if message.handle not in failed:
            backend.queue.ack(message.handle)
    return result, context


def test_a_run_longer_than_one_invocation_never_outruns_its_lambda(deployed, backend, clock):
    engine, app, calls = deployed
    [event_id] = engine.ingest.accept([{"name": "app/go", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    # 200 s left: the remaining time, not the 600 s invocation budget, is what binds.
    invocations = 0
    while not backend.store.get_run(run.run_id).status.terminal:
        before = len(calls)
        _, context = invoke(engine, backend, clock, 200_000)
        invocations += 1
        for started, ended in calls[before:]:
            # Started with a full call's time and the margin still left: ended before both ran out.
            assert ended <= context.ends_at - DEADLINE_MARGIN_S * 1000, (started, ended, context.ends_at)
        assert invocations < 20
    assert backend.store.get_run(run.run_id).status is RunStatus.COMPLETED
    assert [app.executed[s] for s in STEPS] == [1] * len(STEPS)
    assert invocations >= 2  # the loop ran out of time mid-run and handed the rest on


def test_each_record_of_a_batch_gets_the_time_left_when_it_starts(deployed, backend, clock):
    engine, app, calls = deployed
    runs = []
    for _ in range(2):
        [event_id] = engine.ingest.accept([{"name": "app/go", "data": {}}])
        runs += backend.store.runs_for_event(event_id)
    _, context = invoke(engine, backend, clock, 200_000, batch_size=2)
    # The first record used the time up to its deadline; the second got what was left, not a
    # fresh budget, and started no call it could not finish.
    assert calls and all(ended <= context.ends_at - DEADLINE_MARGIN_S * 1000 for _, ended in calls)
    while not all(backend.store.get_run(r.run_id).status.terminal for r in runs):
        invoke(engine, backend, clock, 200_000)
    assert [app.executed[s] for s in STEPS] == [2] * len(STEPS)


def test_a_record_too_late_to_start_is_handed_back_at_once(deployed, backend, clock):
    engine, app, _calls = deployed
    engine.ingest.accept([{"name": "app/go", "data": {}}])
    result, _ = invoke(engine, backend, clock, DEADLINE_MARGIN_S * 1000 - 1)
    assert len(result["batchItemFailures"]) == 1 and not app.executed
    # Visible again now (not after the visibility timeout): the next invocation runs it.
    again, _ = invoke(engine, backend, clock, 200_000)
    assert again["batchItemFailures"] == [] and app.executed["a"] == 1
