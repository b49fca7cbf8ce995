"""Record factories and small drivers shared by the contract tests."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from stepline.engine.ids import IdGenerator
from stepline.engine.ports import Clock, QueueMessage, WorkQueue
from stepline.engine.records import (
    AppRecord,
    FunctionRecord,
    Memo,
    PendingOp,
    Run,
    RunStatus,
    StoredEvent,
)

HOUR_MS = 60 * 60 * 1000
_counter = itertools.count(1)


_generators: dict[int, IdGenerator] = {}


def new_id(clock: Clock) -> str:
    """A ULID from the test's clock (one generator per clock keeps them monotonic)."""
    return _generators.setdefault(id(clock), IdGenerator(clock)).new()


def make_event(
    clock: Clock,
    *,
    event_id: str | None = None,
    name: str = "shop/order.created",
    data: dict[str, Any] | None = None,
    received_at: int | None = None,
) -> StoredEvent:
    internal_id = new_id(clock)
    now = clock.now_ms()
    return StoredEvent(
        internal_id=internal_id,
        id=event_id or internal_id,
        name=name,
        data=data if data is not None else {"n": next(_counter)},
        ts=now,
        received_at=now if received_at is None else received_at,
        user={"tenant": "t1"},
    )


def make_run(
    clock: Clock,
    *,
    run_id: str | None = None,
    status: RunStatus = RunStatus.QUEUED,
    event_ids: list[str] | None = None,
    created_at: int | None = None,
    fn_id: str = "shop-fulfil",
) -> Run:
    event_ids = event_ids if event_ids is not None else [new_id(clock)]
    return Run(
        run_id=run_id or new_id(clock),
        fn_id=fn_id,
        app_id="shop",
        status=status,
        events=[{"name": "shop/order.created", "id": i, "data": {}, "ts": 1, "user": {}} for i in event_ids],
        event_ids=event_ids,
        created_at=clock.now_ms() if created_at is None else created_at,
    )


def make_app(app_id: str = "shop", fn_ids: list[str] | None = None, synced_at: int = 1) -> AppRecord:
    return AppRecord(
        app_id=app_id,
        url=f"http://127.0.0.1:3000/api/{app_id}",
        synced_at=synced_at,
        sdk="py:v0.5.19",
        framework="flask",
        app_version="1.2.3",
        function_ids=list(fn_ids or []),
    )


def make_function(fn_id: str, triggers: list[str], app_id: str = "shop") -> FunctionRecord:
    return FunctionRecord(
        fn_id=fn_id,
        app_id=app_id,
        name=fn_id.replace("-", " ").title(),
        url=f"http://127.0.0.1:3000/api/{app_id}?fnId={fn_id}&stepId=step",
        config={
            "id": fn_id,
            "triggers": [{"event": t} for t in triggers],
            "steps": {"step": {"retries": {"attempts": 2}}},
        },
        event_triggers=list(triggers),
    )


def make_memo(step_id: str, value: Any, seq: str) -> Memo:
    return Memo(step_id=step_id, value={"data": value}, seq=seq, name=f"step {step_id}")


def make_pending(step_id: str, op: str = "Sleep", created_at: int = 1, **detail: Any) -> PendingOp:
    return PendingOp(step_id=step_id, op=op, created_at=created_at, name=step_id, detail=detail)


def drain(queue: WorkQueue, visibility_seconds: int = 60, rounds: int = 50) -> list[QueueMessage]:
    """Every message visible now, received in batches of at most 10 (the SQS cap)."""
    out: list[QueueMessage] = []
    empty = 0
    for _ in range(rounds):
        got = queue.receive(10, visibility_seconds)
        out.extend(got)
        empty = 0 if got else empty + 1
        if empty == 2:  # SQS short polling may miss a message once; twice empty means empty.
            break
    return out


def race(n: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run ``attempt(i)`` on ``n`` threads released at the same instant; return the results in
    thread order, re-raising the first failure."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = attempt(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def take(queue: WorkQueue) -> list[dict[str, Any]]:
    """Receive and acknowledge every visible message; return their bodies."""
    messages = drain(queue)
    for message in messages:
        queue.ack(message.handle)
    return [m.body for m in messages]
