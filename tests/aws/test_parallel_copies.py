"""Parallel groups on two containers sharing one table: what a planned step's job and the join after
each branch read (stepline.aws.run_cache), and that every branch still runs once and every group
joins in one discovery, whatever order its branches finish in and whichever container runs them.

The app answers as the Python SDKs do in wait mode (docs/protocol.md §7.5): a run of sequential
steps (each run inside the discovery call that finds it), then groups whose branches are chains of
steps, advancing in waves, then a last step."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.aws_requests import Meter
from stepline.aws.table import DynamoStore
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.settings import Settings
from tests.aws.test_run_copies import ItemsRead
from tests.engine.scripted_app import receive_all, register

# Retries go out at once: SQS delays run on real time, not the test's clock.
SETTINGS = Settings(mode="dev", retry_base_ms=0, retry_cap_ms=0)
MINUTE = 60_000

Group = list[list[str]]  # branches, each a chain of step ids


def prefix(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


def groups(count: int, width: int, depth: int = 1) -> list[Group]:
    return [[[f"g{g}b{b}s{d}" for d in range(depth)] for b in range(width)] for g in range(count)]


class ParallelApp:
    """One function: ``before`` steps, then ``groups``, then ``after`` steps. Counts each step's
    executions and every discovery call; fails a step's first attempt (``fail_first``, an error
    status) or every attempt (``fail_always``, a ``StepFailed``, which the code catches)."""

    def __init__(self, before: list[str], groups: list[Group], after: list[str]) -> None:
        self.before, self.groups, self.after = before, groups, after
        self.executed: Counter[str] = Counter()
        self.fail_first: set[str] = set()
        self.fail_always: set[str] = set()
        self.planned: set[str] = set()  # what the last reply planned
        self.discoveries: Counter[frozenset[str]] = Counter()  # discovery calls, by the memos they carried
        self.early_joins = 0  # discovery calls made while a planned step had no result

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        target = parse_qs(urlsplit(url).query)["stepId"][0]
        request = json.loads(body)
        memos: dict[str, Any] = request["steps"]
        immediate = not request["ctx"]["disable_immediate_execution"]
        if target == DISCOVERY_STEP_ID:
            self.discoveries[frozenset(memos)] += 1
            self.early_joins += bool(self.planned - memos.keys())
        for step in self.before:
            if step not in memos:
                return self._sequential(step, target, immediate)
        for group in self.groups:
            wave = [next(s for s in chain if s not in memos) for chain in group if not set(chain) <= memos.keys()]
            if not wave:
                continue
            if target in wave:
                return self._execute(target)
            self.planned = set(wave)
            return _ops([{"op": "StepPlanned", "id": s, "name": s} for s in wave])
        for step in self.after:
            if step not in memos:
                return self._sequential(step, target, immediate)
        return HttpResponse(200, json.dumps("done").encode(), {"x-inngest-req-version": "2"})

    def _sequential(self, step: str, target: str, immediate: bool) -> HttpResponse:
        if target == step or (target == DISCOVERY_STEP_ID and immediate):
            return self._execute(step)
        self.planned = {step}
        return _ops([{"op": "StepPlanned", "id": step, "name": step}])

    def _execute(self, step: str) -> HttpResponse:
        self.executed[step] += 1
        if step in self.fail_always:
            return _ops([{"op": "StepFailed", "id": step, "name": step, "error": {"name": "E", "message": "no"}}])
        if step in self.fail_first and self.executed[step] == 1:
            return HttpResponse(500, json.dumps({"name": "E", "message": "once"}).encode(), {})
        return _ops([{"op": "StepRun", "id": step, "name": step, "data": f"{step} done"}])

    def steps(self) -> list[str]:
        return [*self.before, *(s for g in self.groups for chain in g for s in chain), *self.after]


def _ops(ops: list[dict[str, Any]]) -> HttpResponse:
    return HttpResponse(206, json.dumps(ops).encode(), {"x-inngest-req-version": "2"})


@dataclasses.dataclass
class Handled:
    step: str  # the call's step (DISCOVERY_STEP_ID for discovery)
    container: int
    items: int  # DynamoDB items read while handling it
    units: float  # and the read units they cost


# Which container (0: the first, 1: the other) handles a call message, given its step and how
# many job messages were handled before it.
Route = Callable[[str, int], int]


class TwoContainers:
    def __init__(self, aws, clock, app: ParallelApp, route: Route) -> None:
        self.aws, self.clock, self.app, self.route = aws, clock, app, route
        first = Engine(aws, SETTINGS, clock=clock, caller=app)
        other_store = DynamoStore(aws.clients["dynamodb"], aws.names.table_name, aws.store._t.payloads)
        self.other_backend = dataclasses.replace(aws, store=other_store)
        self.engines = (first, Engine(self.other_backend, SETTINGS, clock=clock, caller=app))
        register(first, ["t-app-par"])
        self.reads = ItemsRead(aws.clients)
        self.meter = Meter(aws.clients)
        self.handled: list[Handled] = []
        # Job messages waiting to be handled, in the order chosen (see ``run``).
        self.order: Callable[[list[Any]], list[Any]] = lambda messages: messages

    def run(self) -> str:
        [event_id] = self.engines[1].ingest.accept([{"name": "app/t-app-par", "data": {}}])
        [run] = self.other_backend.store.runs_for_event(event_id)
        for _ in range(50):
            self._pump()
            if self.other_backend.store.get_run(run.run_id).status.terminal:
                return run.run_id
            self.clock.advance(MINUTE)
        raise AssertionError("the run did not end")

    def _pump(self) -> None:
        while True:
            self.aws.timers.fire_due(self.clock.now_ms())
            received = receive_all(self.aws)
            if not received:
                return
            jobs = [m for m in received if m.body.get("step", DISCOVERY_STEP_ID) != DISCOVERY_STEP_ID]
            others = [m for m in received if m not in jobs]
            for message in [*others, *self.order(jobs)]:
                step = message.body.get("step", DISCOVERY_STEP_ID)
                done = sum(h.step != DISCOVERY_STEP_ID for h in self.handled)
                container = self.route(step, done)
                self.meter.reset()
                self.meter.active = True
                items = self.reads.during(self.engines[container].executor.handle, message.body)
                self.meter.active = False
                self.handled.append(Handled(step, container, items, self.meter.read_units))
                self.aws.queue.ack(message.handle)

    def job_reads(self, steps: set[str]) -> list[int]:
        return [h.items for h in self.handled if h.step in steps]

    def job_read_units(self, steps: set[str]) -> list[float]:
        return [h.units for h in self.handled if h.step in steps]


def in_one_container(step: str, done: int) -> int:
    return 0


def jobs_in_the_other(step: str, done: int) -> int:
    return 0 if step == DISCOVERY_STEP_ID else 1


def alternating(step: str, done: int) -> int:
    return done % 2


def finished_once(both: TwoContainers, run_id: str) -> None:
    app = both.app
    assert both.other_backend.store.get_run(run_id).status is RunStatus.COMPLETED
    assert app.executed == {s: 1 + (s in app.fail_first) for s in app.steps()}
    # Each wave of each group joined in one discovery, made once everything planned had a result.
    assert app.early_joins == 0
    assert max(app.discoveries.values()) == 1, app.discoveries
    for g, group in enumerate(app.groups):
        done = {s for chain in group for s in chain}
        later = {s for gr in app.groups[g + 1 :] for chain in gr for s in chain} | set(app.after)
        joins = sum(n for memos, n in app.discoveries.items() if done <= memos and not memos & later)
        assert joins == 1, (g, app.discoveries)


# -- what a branch reads ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", [in_one_container, jobs_in_the_other], ids=["one-container", "jobs-elsewhere"])
@pytest.mark.parametrize("width", [2, 5])
def test_what_a_branch_reads_does_not_grow_with_the_steps_before_it(aws, clock, route, width):
    """Each branch's job reads the run item and its own item, and the join's take after it the
    items of the group's ops it has not seen settle, one read unit each: whatever came before.
    Where the whole run costs fewer read units (a short run), it is read whole instead. Only a
    container's first read of the run is whole in any case."""
    # The middle group's branches (its join plans the last group): 2 for the job, and the
    # group's ops still out when it finished.
    point_reads = [2 + width - 1 - n for n in range(width)]
    units: dict[int, list[float]] = {}
    for before in (5, 45, 90):
        app = ParallelApp(prefix(before), groups(3, width), ["last"])
        both = TwoContainers(aws, clock, app, route)
        finished_once(both, both.run())
        later = {s for chain in app.groups[1] for s in chain}
        units[before] = both.job_read_units(later)
        assert all(u <= p for u, p in zip(units[before], point_reads, strict=True)), units
        if before == 90:  # the run outweighs the group: point reads, item by item
            assert both.job_reads(later) == point_reads
    assert units[90] == point_reads, units
    assert all(a <= b <= c for a, b, c in zip(units[5], units[45], units[90], strict=True)), units


def test_a_branch_that_runs_in_a_container_another_took_the_run_from_reads_it_whole(aws, clock):
    """Branches alternate between the containers: each take by one makes the other's copy
    stale, so its next read is whole; every step still runs once."""
    app = ParallelApp(prefix(30), groups(2, 4), ["last"])
    both = TwoContainers(aws, clock, app, alternating)
    finished_once(both, both.run())
    reads = both.job_reads({s for g in app.groups for chain in g for s in chain})
    assert max(reads) > 30, reads


# -- each step once, each group joined once ----------------------------------------------------------


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
@pytest.mark.parametrize("containers", [(0, 1, 0), (1, 0, 1), (0, 0, 1), (1, 1, 0)], ids=str)
def test_branches_finishing_in_any_order_in_either_container(aws, clock, order, containers):
    app = ParallelApp(prefix(6), groups(2, 3), ["last"])
    both = TwoContainers(aws, clock, app, lambda step, done: 0 if step == DISCOVERY_STEP_ID else containers[done % 3])
    both.order = lambda jobs: [jobs[i] for i in order] if len(jobs) == 3 else jobs
    finished_once(both, both.run())


@pytest.mark.parametrize("route", [in_one_container, jobs_in_the_other, alternating], ids=str)
def test_a_branch_retried_and_a_branch_that_failed(aws, clock, route):
    app = ParallelApp(prefix(8), groups(2, 3), ["last"])
    app.fail_first = {"g0b1s0", "g1b0s0"}
    app.fail_always = {"g1b2s0"}
    both = TwoContainers(aws, clock, app, route)
    run_id = both.run()
    finished_once(both, run_id)
    memos = both.other_backend.store.load_run(run_id).memo_map()
    assert memos["g1b2s0"]["error"]["name"] == "E" and memos["g0b1s0"] == {"data": "g0b1s0 done"}


@pytest.mark.parametrize("route", [in_one_container, jobs_in_the_other, alternating], ids=str)
def test_branches_that_are_chains_of_steps(aws, clock, route):
    """A branch that runs a step and then more: its chain goes on in waves, each joined once."""
    app = ParallelApp(prefix(8), [[["a0", "a1", "a2"], ["b0"], ["c0", "c1"]], *groups(1, 2)], ["last"])
    both = TwoContainers(aws, clock, app, route)
    finished_once(both, both.run())
