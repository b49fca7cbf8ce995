"""`make bench`: what the deployed path asks of AWS, counted on the AWS adapters (moto), with
the meter ``bench.ingest`` uses for a full Event API request too.

* A run of sequential steps in two shapes: 1,000 inline (one invocation goes from step to
  step, reading the run once) and 10, 100 and 1,000 one step per invocation (each step's call
  outlasts the invocation budget, as steps between sleeps, retries or parallel groups do: every
  invocation takes the run's lease first; the container that held it last answers from the
  copy it kept, stepline.aws.run_cache, so reads per step do not grow with the run). Read units
  per step (DynamoDB bills a strongly consistent read by the 4 KB of items it returns, not per
  request) and write units, and what a million steps cost at list prices with reads and index
  writes included. The same run, every invocation in a container that has not held it (the
  worst case: each reads the whole run), at 10 and 100 steps for the shape.
* Parallel groups after a run of steps: 10 groups of 10 branches after 100 sequential steps
  (the Python SDKs' wait mode: each group planned in one reply, each branch a job of its own
  under its step's claim, the group joined in one discovery). Read and write units per branch:
  its job's read, the join's take after it, the discovery after the last branch and the
  planning of the next group; in the container that held the run, and with every job in a
  container that never held it.

Read units are computed from the items each response returns, by DynamoDB's item-size rule
(attribute names plus values), since moto reports no consumed capacity.

    python -m bench.aws_requests [--steps 1000] [--slow-steps 10,100,1000] [--cold-steps 10,100]
                                 [--parallel 100,10,10]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.steps import (
    DDB_READS,
    DDB_WRITES,
    DYNAMODB_READ_REQUEST_UNIT,
    DYNAMODB_WRITE_REQUEST_UNIT,
    PRICES_AS_OF,
    SQS_OPS,
    SQS_REQUEST,
)
from stepline.aws.moto_env import moto_backend
from stepline.aws.run_cache import RunCache
from stepline.aws.table import DynamoStore
from stepline.engine import messages
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.protocol.register import parse_register
from stepline.settings import Settings

APP_URL = "http://127.0.0.1:9/api/inngest"
# A strongly consistent read unit covers 4 KB of items; a write unit 1 KB.
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: each attribute's name plus its value's bytes."""

    def value_bytes(value: dict[str, Any]) -> int:
        (kind, v), *_ = value.items()
        if kind in ("S", "B"):
            return len(v.encode() if isinstance(v, str) else v)
        if kind == "N":
            return math.ceil(len(v.lstrip("-").replace(".", "")) / 2) + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value_bytes(x) for k, x in v.items())
        if kind == "L":
            return 3 + sum(value_bytes(x) for x in v)
        return sum(len(str(x)) for x in v)  # sets

    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


class Meter:
    """AWS requests by operation, and DynamoDB read and write units, while ``active``."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.requests: Counter[str] = Counter()
        self.read_units = 0.0
        self.write_units = 0.0
        self.active = False
        for client in clients.values():
            client.meta.events.register("before-call.*.*", self._count)
            client.meta.events.register("before-parameter-build.dynamodb.*", self._write_units)
            client.meta.events.register("after-call.dynamodb.*", self._units)

    def reset(self) -> None:
        self.requests.clear()
        self.read_units = self.write_units = 0.0

    def _count(self, model: Any, **_: Any) -> None:
        if self.active:
            self.requests[model.name] += 1

    def _write_units(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self.active and model.name in DDB_WRITES:
            # A write is billed on the item written (its new image, at least 1 KB per item).
            for item in _written_items(model.name, params):
                self.write_units += max(1, math.ceil(item_bytes(item) / WRITE_UNIT_BYTES))

    def _units(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.active or model.name not in DDB_READS:
            return
        if model.name == "BatchGetItem":
            items = [i for table in parsed.get("Responses", {}).values() for i in table]
            # Each item of a batch get is its own read, rounded up to 4 KB.
            self.read_units += sum(max(1, math.ceil(item_bytes(i) / READ_UNIT_BYTES)) for i in items)
            return
        items = parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else [])
        # A Query or GetItem is rounded up once over everything it read.
        self.read_units += max(1, math.ceil(sum(item_bytes(i) for i in items) / READ_UNIT_BYTES))


def _written_items(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if operation == "PutItem":
        return [params["Item"]]
    if operation == "BatchWriteItem":
        return [r["PutRequest"]["Item"] for reqs in params["RequestItems"].values() for r in reqs if "PutRequest" in r]
    if operation == "TransactWriteItems":
        return [next(iter(op.values())).get("Item", {"k": {"S": ""}}) for op in params["TransactItems"]]
    return [{"k": {"S": ""}}]  # an update or delete: at least one unit


def register(engine: Engine, fn_id: str, event: str) -> None:
    fn = {
        "id": fn_id,
        "name": fn_id,
        "triggers": [{"event": event}],
        "steps": {
            "step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": APP_URL + "?fnId=" + fn_id}}
        },
    }
    body: dict[str, Any] = {"appname": "bench", "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1"}
    body["functions"] = [fn]
    engine.registry.register(parse_register(json.dumps(body).encode()))


class Steps:
    """An app whose function runs ``n`` sequential steps, one per call, each returning a small
    value (as a step.run would), then completes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        done = len(json.loads(body).get("steps") or {})
        if done >= self.n:
            return HttpResponse(200, b'{"ok":true}', {"x-inngest-req-version": "2"})
        op = {"op": "StepRun", "id": f"step-{done:04d}", "name": f"step {done}", "data": {"n": done, "pad": "x" * 64}}
        return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})


def drain(engine: Engine, backend: Any, *, only_kind: str | None = None, most: int | None = None) -> int:
    """Handle messages until none is visible (or ``most`` are handled); with ``only_kind``,
    others are left on the queue. How many were handled."""
    handled = 0
    while most is None or handled < most:
        received = backend.queue.receive(10, 600) or backend.queue.receive(10, 600)  # short polling
        wanted = [m for m in received if only_kind is None or m.body.get("kind") == only_kind]
        if not wanted:
            return handled
        for message in wanted[: None if most is None else most - handled]:
            engine.executor.handle(message.body)
            backend.queue.ack(message.handle)
            handled += 1
    return handled


class SlowSteps(Steps):
    """The same steps, each call taking ``call_ms`` of the (manual) clock: with an invocation
    budget below it, every step is an invocation of its own, which reads the run first."""

    def __init__(self, n: int, clock: ManualClock, call_ms: int) -> None:
        super().__init__(n)
        self.clock = clock
        self.call_ms = call_ms

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.clock.advance(self.call_ms)
        return super().post(url, body, headers, timeout_s)


# One step per invocation: each call takes 2 s, the budget is 1 s.
SLOW_CALL_MS = 2_000


def measure_steps(steps: int, *, one_per_invocation: bool = False, cold: bool = False) -> dict[str, Any]:
    """``cold``: every invocation in a container that has not held the run (nothing kept)."""
    clock = ManualClock()
    with moto_backend(clock) as backend:
        if one_per_invocation:
            settings = Settings(mode="dev", invocation_budget_s=SLOW_CALL_MS / 2000)
            caller: Steps = SlowSteps(steps, clock, SLOW_CALL_MS)
        else:
            settings, caller = Settings(mode="dev"), Steps(steps)
        engine = Engine(backend, settings, clock=clock, caller=caller)
        register(engine, "bench-steps", "bench/steps")
        meter = Meter(backend.clients)
        meter.active = True
        engine.ingest.accept([{"name": "bench/steps", "data": {}}])
        if cold:
            handle, store = engine.executor.handle, backend.store
            assert isinstance(store, DynamoStore)

            def in_a_new_container(body: messages.Message | dict[str, Any], *, budget_ms: int | None = None) -> None:
                store._kept = RunCache()  # nothing kept from the invocations before
                handle(body, budget_ms=budget_ms)

            # A stand-in for the bound method (mypy types the attribute with its self).
            engine.executor.handle = in_a_new_container  # type: ignore[method-assign, assignment]
        drain(engine, backend)
        meter.active = False
        return {"requests": meter.requests, "read_units": meter.read_units, "write_units": meter.write_units}


class ParallelSteps(Steps):
    """``before`` sequential steps (as ``Steps``), then ``groups`` parallel groups of ``width``
    steps, answered as the Python SDKs do in wait mode: a discovery plans every branch without a
    result, a call for a branch runs it. Then the function completes."""

    def __init__(self, before: int, groups: int, width: int) -> None:
        super().__init__(before)
        self.groups = [[f"g{g:03d}-b{b:03d}" for b in range(width)] for g in range(groups)]

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        memos = json.loads(body).get("steps") or {}
        if len(memos) < self.n:
            return super().post(url, body, headers, timeout_s)
        target = parse_qs(urlsplit(url).query).get("stepId", [DISCOVERY_STEP_ID])[0]
        for group in self.groups:
            todo = [s for s in group if s not in memos]
            if target in todo:
                op = {"op": "StepRun", "id": target, "name": target, "data": {"pad": "x" * 64}}
                return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})
            if todo:
                ops = [{"op": "StepPlanned", "id": s, "name": s} for s in todo]
                return HttpResponse(206, json.dumps(ops).encode(), {"x-inngest-req-version": "2"})
        return HttpResponse(200, b'{"ok":true}', {"x-inngest-req-version": "2"})


def measure_parallel(before: int, groups: int, width: int, *, cold: bool = False) -> dict[str, Any]:
    """What the parallel steps' messages (each branch's job, with the join's take and the
    discovery it may make) cost; the first invocation (the steps before, the first planning)
    is not counted. ``cold``: every job in a container that has not held the run."""
    clock = ManualClock()
    with moto_backend(clock) as backend:
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=ParallelSteps(before, groups, width))
        register(engine, "bench-par", "bench/par")
        meter = Meter(backend.clients)
        handle, store = engine.executor.handle, backend.store
        assert isinstance(store, DynamoStore)

        def metered(body: messages.Message | dict[str, Any], *, budget_ms: int | None = None) -> None:
            step = body.get("step", DISCOVERY_STEP_ID) if isinstance(body, dict) else DISCOVERY_STEP_ID
            meter.active = step != DISCOVERY_STEP_ID
            if cold and meter.active:
                store._kept = RunCache()  # nothing kept from the invocations before
            handle(body, budget_ms=budget_ms)
            meter.active = False

        engine.executor.handle = metered  # type: ignore[method-assign, assignment]
        engine.ingest.accept([{"name": "bench/par", "data": {}}])
        drain(engine, backend)
        return {"requests": meter.requests, "read_units": meter.read_units, "write_units": meter.write_units}


def report_parallel(before: int, groups: int, width: int) -> None:
    branches = groups * width
    print(f"\n{groups} parallel groups of {width} steps after {before} sequential steps, per parallel step:")
    for title, cold in (("in the container that held the run", False), ("each job in a new container", True)):
        run = measure_parallel(before, groups, width, cold=cold)
        print(
            f"  {title:<36} read units {run['read_units'] / branches:>7.3f}   "
            f"write units {run['write_units'] / branches:.3f}"
        )


def dynamodb_usd(run: dict[str, Any], steps: int) -> float:
    """DynamoDB's cost of a million such steps, reads and writes (index writes included)."""
    per_step = run["read_units"] / steps * DYNAMODB_READ_REQUEST_UNIT + run["write_units"] / steps * (
        DYNAMODB_WRITE_REQUEST_UNIT
    )
    return per_step * 1_000_000


def report_shape(title: str, runs: dict[int, dict[str, Any]]) -> None:
    """One line per run length: how reads per step go with the length of the run."""
    print(f"\n{title}:")
    header = ("steps", 6), ("read units/step", 16), ("write units/step", 17), ("UpdateItem/step", 16)
    print("  " + " ".join(f"{name:>{width}}" for name, width in header) + f" {'USD/M steps':>12}")
    for steps, run in runs.items():
        updates = run["requests"].get("UpdateItem", 0) / steps
        print(
            f"  {steps:>6} {run['read_units'] / steps:>16.3f} {run['write_units'] / steps:>17.3f} "
            f"{updates:>16.3f} {dynamodb_usd(run, steps):>12.2f}"
        )


def report(steps: int, run: dict[str, Any], shape: str = "inline") -> None:
    per_step = {op: n / steps for op, n in run["requests"].items()}
    reads = run["read_units"] / steps
    writes = run["write_units"] / steps
    sqs = sum(v for op, v in per_step.items() if op in SQS_OPS)
    print(f"\nA run of {steps} sequential steps, {shape}, per step:")
    for op, v in sorted(per_step.items()):
        print(f"  {op:<22} {v:>8.3f} requests")
    print(f"  DynamoDB read units   {reads:>8.3f}   write units {writes:.3f} (index writes included)")
    dynamodb = dynamodb_usd(run, steps)
    print(
        f"  USD per million steps (list prices as of {PRICES_AS_OF}): DynamoDB {dynamodb:.2f}, "
        f"SQS {sqs * SQS_REQUEST * 1_000_000:.2f} (Lambda time: bench.steps)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--slow-steps", type=_sizes, default=[10, 100, 1_000])
    # Shorter: there each invocation reads the whole run, so moto's work grows with its square.
    parser.add_argument("--cold-steps", type=_sizes, default=[10, 100])
    # Steps before, groups, branches per group.
    parser.add_argument("--parallel", type=_sizes, default=[100, 10, 10])
    args = parser.parse_args(argv)
    report(args.steps, measure_steps(args.steps), "inline (one invocation)")
    shape = f"one step per invocation ({SLOW_CALL_MS // 1000} s calls)"
    slow = {n: measure_steps(n, one_per_invocation=True) for n in args.slow_steps}
    longest = max(slow)
    report(longest, slow[longest], f"{shape}, in the container that held it last")
    report_shape(f"{shape}, in the container that held it last", slow)
    cold = {n: measure_steps(n, one_per_invocation=True, cold=True) for n in args.cold_steps}
    report_shape(f"{shape}, each invocation in a container that never held it", cold)
    report_parallel(*args.parallel)
    return 0


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
