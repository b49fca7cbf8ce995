"""What reading a run costs the executor: a call that leaves the run's state to the SDK
(``use_api``) fetches no offloaded memo value from S3 (stepline.aws.step_items)."""

from __future__ import annotations

import json

import pytest

from bench.aws_requests import SLOW_CALL_MS, SlowSteps, drain, register
from stepline.aws.payloads import ObjectCache
from stepline.aws.run_cache import RunCache
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.settings import Settings


class BigThenSmall(SlowSteps):
    """Each call outlasts the invocation budget, so every step is an invocation of its own,
    which reads the run first. The first step returns a value S3 holds (over the inline limit),
    the others small ones; records whether each call carried the memos or left them to the SDK
    (use_api)."""

    def __init__(self, n: int, clock) -> None:
        super().__init__(n, clock, SLOW_CALL_MS)
        self.use_api: list[bool] = []
        self.steps_sent: list[list[str]] = []

    def post(self, url, body, headers, timeout_s):
        self.clock.advance(self.call_ms)
        request = json.loads(body)
        self.use_api.append(bool(request.get("use_api")))
        self.steps_sent.append(sorted(request["steps"]))
        done = len(request["ctx"]["stack"]["stack"])  # with use_api the SDK would fetch the memos itself
        if done >= self.n:
            return HttpResponse(200, b'{"ok":true}', {"x-inngest-req-version": "2"})
        op = {"op": "StepRun", "id": f"s{done}", "name": f"s{done}", "data": "x" * 100_000 if done == 0 else done}
        return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})


@pytest.mark.parametrize("threshold, fetches", [(50_000, 0), (1024 * 1024, 3)])
def test_a_call_that_leaves_the_state_to_the_sdk_fetches_nothing_from_s3(aws, calls, clock, threshold, fetches):
    """Every invocation in a fresh container (no cached objects): with use_api the memo in S3 is
    never fetched; sending the memos fetches it once per invocation that sends them."""
    app = BigThenSmall(3, clock)
    settings = Settings(mode="dev", invocation_budget_s=SLOW_CALL_MS / 2000, use_api_threshold_bytes=threshold)
    engine = Engine(aws, settings, clock=clock, caller=app)
    register(engine, "big-run", "bench/big")
    original = engine.executor.handle
    gets: list[int] = []

    def fresh_container(body):
        aws.store._t.payloads.cache = ObjectCache()
        aws.store._kept = RunCache()  # nor a run kept from an invocation before
        _, counts = calls.during(original, body)
        gets.append(counts.get("GetObject", 0))

    engine.executor.handle = fresh_container  # type: ignore[method-assign]
    engine.ingest.accept([{"name": "bench/big", "data": {}}])
    drain(engine, aws)
    (run,) = aws.store.list_runs("big-run", limit=5)[0]
    assert run.status == "Completed"
    state = aws.store.load_run(run.run_id)
    assert state.stack() == ["s0", "s1", "s2"] and state.memo_map()["s0"] == {"data": "x" * 100_000}
    # The first call has no memo yet; the three after it hold the large one.
    assert app.use_api == [False] + [threshold < 100_000] * 3
    with_memos = [[], ["s0"], ["s0", "s1"], ["s0", "s1", "s2"]]
    assert app.steps_sent == ([[]] * 4 if threshold < 100_000 else with_memos)
    assert sum(gets) == fetches, gets
