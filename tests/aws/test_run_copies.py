"""A container that holds a run keeps it (stepline.aws.run_cache) and, taking the run again, reads
only what writers without the lease may have changed. Two containers share one table here: the
holder handles the run's discovery calls and keeps its copy; every other message (wake-ups,
events, signals, timeouts, sweeps, a child run, parallel steps' jobs, checkpoints through the
API) is handled by a second container with a store of its own, so nothing it writes reaches the
holder's copy except through the table. Each run must complete with every step run once, and the
holder must have answered from its copy where the design says it can."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from bench.aws_requests import SLOW_CALL_MS, SlowSteps, drain
from bench.aws_requests import register as register_steps
from stepline.aws.run_cache import RunCache
from stepline.aws.table import DynamoStore
from stepline.engine import messages
from stepline.engine.checkpoint import Checkpoints
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ids import IdGenerator
from stepline.engine.ports import Memo, RunStatus
from stepline.protocol.calls import Opcode
from stepline.protocol.checkpoint_requests import CheckpointRequest
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.engine.scripted_app import APP_URL, ScriptedApp, drop_all, receive_all, register

SETTINGS = Settings(mode="dev")
GRACE_MS = int(SETTINGS.sweep_grace_s * 1000)
HOUR = 3_600_000


class ItemsRead:
    """Items returned by every DynamoDB read of one client (what a strongly consistent read is
    billed by), by operation."""

    def __init__(self, clients: dict) -> None:
        self.items: Counter[str] = Counter()
        clients["dynamodb"].meta.events.register("after-call.dynamodb.*", self._count)

    def _count(self, model, parsed, **_kwargs) -> None:
        if model.name in ("Query", "GetItem"):
            self.items[model.name] += len(parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else []))
        elif model.name == "BatchGetItem":
            self.items[model.name] += sum(len(v) for v in parsed.get("Responses", {}).values())

    def during(self, fn, *args) -> int:
        self.items.clear()
        fn(*args)
        return sum(self.items.values())


class Reads:
    """How the holder's store answered ``load_run`` right after a take: from its copy, or whole."""

    def __init__(self, store: DynamoStore) -> None:
        self.from_copy = 0
        self.whole = 0
        original_copy, original_load = store._from_copy, store.load_run

        def from_copy(*args, **kwargs):
            self.from_copy += 1
            return original_copy(*args, **kwargs)

        def load_run(run_id, *, lease_owner=None, **kwargs):
            before = self.from_copy
            state = original_load(run_id, lease_owner=lease_owner, **kwargs)
            if lease_owner is not None and self.from_copy == before:
                self.whole += 1
            return state

        store._from_copy = from_copy  # type: ignore[method-assign]
        store.load_run = load_run  # type: ignore[method-assign]


class Containers:
    """The holder (``aws.store``) and another container on the same table and queue."""

    def __init__(self, aws, clock, app, main_fn: str, settings: Settings = SETTINGS) -> None:
        self.aws, self.clock, self.main_fn = aws, clock, main_fn
        self.holder = Engine(aws, settings, clock=clock, caller=app)
        other_store = DynamoStore(aws.clients["dynamodb"], aws.names.table_name, aws.store._t.payloads)
        self.other_backend = dataclasses.replace(aws, store=other_store)
        self.other = Engine(self.other_backend, settings, clock=clock, caller=app)
        self.reads = Reads(aws.store)

    def start(self) -> str:
        [event_id] = self.other.ingest.accept([{"name": f"app/{self.main_fn}", "data": {}}])
        [run] = self.other_backend.store.runs_for_event(event_id)
        return run.run_id

    def _holds(self, body: dict[str, Any]) -> bool:
        """The holder takes the main function's discovery calls; the other container the rest."""
        if body.get("kind") != "call" or body.get("step", DISCOVERY_STEP_ID) != DISCOVERY_STEP_ID:
            return False
        run = self.other_backend.store.get_run(body["run_id"])
        return run is not None and run.fn_id == self.main_fn

    def pump(self, most: int = 200) -> int:
        handled = 0
        while handled < most:
            self.aws.timers.fire_due(self.clock.now_ms())
            received = receive_all(self.aws)
            if not received:
                return handled
            for message in received:
                engine = self.holder if self._holds(message.body) else self.other
                engine.executor.handle(message.body)
                self.aws.queue.ack(message.handle)
                handled += 1
        raise AssertionError(f"still busy after {most} messages")

    def status(self, run_id: str) -> RunStatus:
        return self.other_backend.store.get_run(run_id).status


def containers(aws, clock, scripts: dict) -> tuple[Containers, ScriptedApp]:
    app = ScriptedApp(scripts)
    main_fn = next(iter(scripts))
    both = Containers(aws, clock, app, main_fn)
    register(both.holder, list(scripts))
    return both, app


def test_a_sleep_woken_by_another_container(aws, clock):
    both, app = containers(aws, clock, {"t-app-nap": [("run", "a"), ("sleep", "nap", "1h"), ("run", "b")]})
    run_id = both.start()
    both.pump()
    clock.advance(HOUR)
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}
    assert both.reads.from_copy >= 1  # the take after the wake-up read the sleep's item only


@pytest.mark.parametrize("timed_out", [False, True], ids=["event", "timeout"])
def test_a_wait_resumed_by_another_container(aws, clock, timed_out):
    both, app = containers(aws, clock, {"t-app-wait": [("run", "a"), ("wait", "w", "app/go", "1h"), ("run", "b")]})
    run_id = both.start()
    both.pump()
    if timed_out:
        clock.advance(HOUR + 1)
    else:
        both.other.ingest.accept([{"name": "app/go", "data": {"n": 1}}])
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}
    memo = aws.store.load_run(run_id).memo_map()["w"]
    assert (memo["data"] is None) is timed_out
    assert both.reads.from_copy >= 1


def test_a_signal_sent_through_another_container(aws, clock):
    both, app = containers(aws, clock, {"t-app-sig": [("run", "a"), ("signal", "s", "go/42", "1h"), ("run", "b")]})
    run_id = both.start()
    both.pump()
    assert both.other.signals.send("go/42", {"ok": True}) == run_id
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}
    assert both.reads.from_copy >= 1


def test_an_invoked_run_that_another_container_ran(aws, clock):
    scripts = {
        "t-app-parent": [("run", "a"), ("invoke", "call", "t-app-child", None), ("run", "b")],
        "t-app-child": [("run", "c")],
    }
    both, app = containers(aws, clock, scripts)
    run_id = both.start()
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1, "c": 1}
    assert "call" in aws.store.load_run(run_id).memo_map()  # the child's result
    assert both.reads.from_copy >= 1


@pytest.mark.parametrize("sweeping", ["other", "holder"])
def test_a_sweeper_finishes_a_resume_that_died(aws, clock, sweeping):
    """A resume wrote the sleep's memo and died before queueing discovery and removing the op:
    a sweeper finds the run overdue, queues discovery and removes the op. In the holder's
    container, its copy lacks the memo, so it keeps the op and reads its item again."""
    both, app = containers(aws, clock, {"t-app-swept": [("run", "a"), ("sleep", "nap", "1h"), ("run", "b")]})
    run_id = both.start()
    both.pump()
    clock.advance(HOUR)
    aws.timers.fire_due(clock.now_ms())
    assert [b["kind"] for b in drop_all(aws)] == ["wake"]  # lost with the resume that died
    [op] = both.other_backend.store.load_run(run_id).pending.values()
    memo = Memo(step_id="nap", value={"data": None}, seq=IdGenerator(clock).new(), name="1h")
    assert both.other_backend.store.commit_memo(run_id, memo)
    assert both.pump() == 0 and both.status(run_id) is RunStatus.RUNNING  # stuck
    clock.advance(GRACE_MS + 1)
    report = (both.holder if sweeping == "holder" else both.other).sweeper.sweep()
    assert (report.rearmed, dict(report.sent)) == (1, {"discovery": 1}) and op.step_id == "nap"
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}
    assert both.reads.from_copy >= 1


def test_a_run_cancelled_by_another_container_while_the_holder_kept_it(aws, clock):
    both, app = containers(aws, clock, {"t-app-cancel": [("run", "a"), ("sleep", "nap", "1h"), ("run", "b")]})
    run_id = both.start()
    both.pump()
    assert both.other.cancellation.cancel(run_id) is not None
    clock.advance(HOUR)
    both.pump()
    assert both.status(run_id) is RunStatus.CANCELLED
    assert app.executed == {"a": 1}


def test_a_run_erased_by_another_container_while_the_holder_kept_it(aws, clock):
    """Nothing wakes the run any more; a stray call for it finds no run to take, and the holder
    drops its copy and does nothing more."""
    both, app = containers(aws, clock, {"t-app-erase": [("run", "a"), ("sleep", "nap", "1h"), ("run", "b")]})
    run_id = both.start()
    both.pump()
    assert len(aws.store._kept) == 1
    both.other.erasure.erase_run(run_id)
    clock.advance(HOUR)
    both.pump()  # the erasure's own messages (it cancels a live run, then erases again), the wake-up
    both.holder.executor.handle(messages.call(run_id))  # a copy of a call, delivered late
    assert both.other_backend.store.get_run(run_id) is None and aws.store.load_run(run_id) is None
    assert app.executed == {"a": 1} and len(aws.store._kept) == 0


def test_parallel_steps_run_by_another_container(aws, clock):
    """Their jobs hold the steps' claims, not the run's lease, and write only their own items:
    what each job and each join reads is the run item and the group's items
    (tests/aws/test_parallel_copies.py)."""
    scripts = {"t-app-par": [("run", "a"), ("parallel", ["p1", "p2", "p3"]), ("run", "b")]}
    both, app = containers(aws, clock, scripts)
    run_id = both.start()
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "p1": 1, "p2": 1, "p3": 1, "b": 1}


class CheckpointingApp:
    """A TypeScript-like app (``js:`` SDK) that checkpoints each ``step.run`` through the API of
    another container while the call goes on, then reports a sleep, and completes after it."""

    def __init__(self, checkpoints: Checkpoints, clock) -> None:
        self.checkpoints = checkpoints
        self.clock = clock
        self.executed: Counter[str] = Counter()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        request = json.loads(body)
        memos, ctx = request["steps"], request["ctx"]
        for step in ("a", "nap", "b"):
            if step in memos:
                continue
            if step == "nap":
                return _reply([{"op": "Sleep", "id": "nap", "name": "1h"}])
            self.executed[step] += 1
            op = Opcode.model_validate({"op": "StepRun", "id": step, "name": step, "data": f"{step} done"})
            # The SDK knows its function's id even when the request does not say it.
            fn_id = ctx.get("fn_id") or "js-app-ckpt"
            self.checkpoints.record(ctx["run_id"], CheckpointRequest(ctx["run_id"], fn_id, ctx["qi_id"], [op]))
            memos[step] = {"data": f"{step} done"}
        return _reply([{"op": "RunComplete", "id": "complete", "data": "done"}])


def _reply(ops: list[dict[str, Any]]) -> HttpResponse:
    return HttpResponse(206, json.dumps(ops).encode(), {"x-inngest-req-version": "2"})


@pytest.mark.parametrize("checkpointing", [True, False], ids=["asked", "the-sdk's-own-option"])
def test_steps_checkpointed_through_the_api_of_another_container(aws, clock, checkpointing):
    """Whether or not the call asked for it: the TypeScript SDK checkpoints by its own option,
    and the API takes any checkpoint from the call holding the run."""
    other_store = DynamoStore(aws.clients["dynamodb"], aws.names.table_name, aws.store._t.payloads)
    app = CheckpointingApp(Checkpoints(other_store, clock, IdGenerator(clock)), clock)
    both = Containers(aws, clock, app, "js-app-ckpt", Settings(mode="dev", checkpointing=checkpointing))
    fn = {
        "id": "js-app-ckpt",
        "name": "ckpt",
        "triggers": [{"event": "app/js-app-ckpt"}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": f"{APP_URL}?fnId=x"}}},
    }
    body = {"appname": "js-app", "url": APP_URL, "framework": "express", "sdk": "js:v4.0.0", "v": "0.1"}
    both.holder.registry.register(parse_register(json.dumps({**body, "functions": [fn]}).encode()))
    run_id = both.start()
    both.pump()
    clock.advance(HOUR)
    both.pump()
    assert both.status(run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}


# -- what reading costs ------------------------------------------------------------------------------


def test_one_step_per_invocation_reads_no_more_at_the_end_of_a_run_than_at_the_start(aws, clock):
    steps = 64
    settings = Settings(mode="dev", invocation_budget_s=SLOW_CALL_MS / 2000)
    engine = Engine(aws, settings, clock=clock, caller=SlowSteps(steps, clock, SLOW_CALL_MS))
    register_steps(engine, "long-run", "bench/long")
    reads = ItemsRead(aws.clients)
    per_invocation: list[int] = []
    original = engine.executor.handle
    engine.executor.handle = lambda body: per_invocation.append(reads.during(original, body))  # type: ignore[method-assign]
    engine.ingest.accept([{"name": "bench/long", "data": {}}])
    drain(engine, aws)
    (run,) = aws.store.list_runs("long-run", limit=5)[0]
    state = aws.store.load_run(run.run_id)
    assert run.status == RunStatus.COMPLETED and len(state.memos) == steps
    assert state.stack() == [f"step-{i:04d}" for i in range(steps)]
    assert len(per_invocation) == steps + 1
    # A whole read would return one more item per step each time (65 items at the end): the
    # take's own answer stands in for the run item and the copy for the steps.
    early, late = per_invocation[2:12], per_invocation[-10:]
    assert max(late) <= max(early) <= 3, per_invocation
    assert sum(per_invocation) < 3 * steps


class CountedSlowSteps(SlowSteps):
    """``SlowSteps`` counting each step it runs: a step run again means its memo was missed."""

    def __init__(self, n: int, clock, call_ms: int) -> None:
        super().__init__(n, clock, call_ms)
        self.executed: Counter[str] = Counter()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        resp = super().post(url, body, headers, timeout_s)
        if resp.status == 206:
            self.executed.update(op["id"] for op in json.loads(resp.body))
        return resp


def test_a_container_that_has_not_held_the_run_reads_it_whole(aws, clock):
    """Lambda may route an invocation to any container: one without a copy reads the run whole,
    and the same holds once another container took the run since."""
    settings = Settings(mode="dev", invocation_budget_s=SLOW_CALL_MS / 2000)
    app = CountedSlowSteps(6, clock, SLOW_CALL_MS)
    first = Engine(aws, settings, clock=clock, caller=app)
    other_store = DynamoStore(aws.clients["dynamodb"], aws.names.table_name, aws.store._t.payloads)
    second = Engine(dataclasses.replace(aws, store=other_store), settings, clock=clock, caller=app)
    register_steps(first, "hop", "bench/hop")
    reads = ItemsRead(aws.clients)
    first.ingest.accept([{"name": "bench/hop", "data": {}}])
    items: list[int] = []
    for turn in range(7):  # two invocations in one container, then two in the other, ...
        engine = first if turn // 2 % 2 == 0 else second
        [message] = receive_all(aws)
        items.append(reads.during(engine.executor.handle, message.body))
        aws.queue.ack(message.handle)
    (run,) = aws.store.list_runs("hop", limit=5)[0]
    assert run.status == RunStatus.COMPLETED and len(aws.store.load_run(run.run_id).memos) == 6
    assert app.executed == {f"step-{i:04d}": 1 for i in range(6)}
    # The first take in a container (turns 0, 2, 4, 6) reads the run whole: one item more each
    # time a step was added; the second (1, 3, 5) only what the take returned.
    assert all(items[t] > items[t - 1] for t in (2, 4, 6)), items
    assert all(items[t] < items[t - 1] for t in (1, 3, 5)), items


def test_a_container_keeps_a_bounded_number_of_runs(aws, clock):
    """Least recently taken out first, past the byte or the run bound."""
    cache = RunCache(max_bytes=10_000, max_runs=3)
    head = {"pk": {"S": "RUN#r"}, "sk": {"S": "RUN"}, "pad": {"S": "x" * 1000}}
    for n in range(5):
        cache.taken(f"r{n}", "w", 1, head)
    assert len(cache) == 3 and cache.head("r0", "w") is None and cache.head("r4", "w") is not None
    big = RunCache(max_bytes=2_500)
    for n in range(5):
        big.taken(f"r{n}", "w", 1, head)
    assert len(big) == 2
