"""Faults at the engine's ports: every write of the store, queue and timers is an opportunity.

A write may be refused before it applies (``StoreError``: what a throttled or failing backend
becomes in the adapters), apply and then report an error (the response was lost), or stop the
executor right there, before or after the write applies (``InjectedCrash``). Crashes only
happen while the executor handles a message (see ``executing``): they model a Lambda dying
between two writes, which the queue answers by delivering the message again.

``InjectedCrash`` is a ``BaseException`` so that no ``except Exception`` in the engine can
swallow it and carry on as if nothing happened; the chaos harness turns it back into an ordinary
failed message at the top of the worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import defaultdict
from typing import Any, Iterator

from stepline.engine.ports import Backend, StoreError
from tests.faults.plan import FaultPlan

STORE_WRITES = frozenset({
    "save_events", "put_app", "create_run", "update_run", "acquire_lease", "release_lease",
    "commit_memo", "add_pending", "remove_pending", "claim_pending", "add_waiter", "remove_waiter",
    "put_flow_state", "delete_flow_state", "claim_key", "release_key", "take_slot", "release_slot",
    "join_line", "leave_line",
})
QUEUE_WRITES = frozenset({"send", "send_many", "ack", "retry_later"})
TIMER_WRITES = frozenset({"schedule", "cancel", "schedule_cron"})
_executing = threading.local()


_RUN_ID_FIRST = frozenset({"update_run", "acquire_lease", "release_lease", "commit_memo", "add_pending",
                           "remove_pending", "claim_pending"})


def _run_of(name: str, args: tuple) -> str | None:
    """The run a write is about, when it is about one."""
    if not args:
        return None
    first = args[0]
    if name in _RUN_ID_FIRST:
        return first
    if name == "create_run" or name == "add_waiter":
        return first.run_id
    if name == "remove_waiter":
        return args[1]
    if name == "send":
        return first.get("run_id")
    if name == "send_many":
        return first[0].get("run_id") if first else None
    if name == "schedule":
        return args[2].get("run_id")
    return None


def _brief(args: tuple) -> str:
    """Enough of a call's arguments to tell which run it was about."""
    return "(" + ", ".join(repr(a)[:120] for a in args) + ")"


class InjectedCrash(BaseException):
    """The executor stops here, as if its process died."""


@contextlib.contextmanager
def executing() -> Iterator[None]:
    """Mark the current thread as running the executor on one message: crashes happen only
    inside (a crash elsewhere would kill the worker loop, which no real failure does)."""
    _executing.active = True
    try:
        yield
    finally:
        _executing.active = False


def _in_executor() -> bool:
    return getattr(_executing, "active", False)


class _Faulty:
    """Wraps one port object; methods named in ``writes`` are faulted, the rest pass through."""

    def __init__(self, inner: Any, plan: FaultPlan, writes: frozenset[str], where: str) -> None:
        self._inner = inner
        self._plan = plan
        self._writes = writes
        self._where = where

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._writes or not callable(attr):
            return attr

        def faulted(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, attr, args, kwargs)

        return faulted

    def _call(self, name: str, method: Any, args: tuple, kwargs: dict) -> Any:
        plan, rates = self._plan, self._plan.rates
        label = f"{self._where}.{name}{_brief(args)}"
        fault, crash_after = self._crash_point(name, args)
        if fault is None:
            crash = rates.crash if _in_executor() else 0.0
            fault = plan.choose([("fails", rates.write_fails), ("lost", rates.write_lost), ("crash", crash)])
            crash_after = fault == "crash" and plan.roll(0.5)
        if fault == "fails":
            plan.note("write_fails", label)
            raise StoreError(f"injected: {label} refused (throttled)")
        if fault == "crash" and not crash_after:
            plan.note("crash_before_write", label)
            raise InjectedCrash(f"before {label}")
        result = self._apply(name, method, args, kwargs)
        if fault == "lost":
            plan.note("write_lost", label)
            raise StoreError(f"injected: {label} applied, response lost")
        if crash_after:
            plan.note("crash_after_write", label)
            raise InjectedCrash(f"after {label}")
        return result

    def _crash_point(self, name: str, args: tuple) -> tuple[str | None, bool]:
        """("crash", after?) when a deterministic crash point falls on this write."""
        points = self._plan.crash_points
        run_id = _run_of(name, args) if points is not None and _in_executor() else None
        when = points.at_write(run_id) if run_id is not None else None
        return ("crash", when == "after") if when else (None, False)

    def _apply(self, name: str, method: Any, args: tuple, kwargs: dict) -> Any:
        return method(*args, **kwargs)


class FaultyStore(_Faulty):
    """Also keeps the ledger of memo writes that applied, per (run id, step id)."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        super().__init__(inner, plan, STORE_WRITES, "store")
        self.memo_writes: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._ledger_lock = threading.Lock()

    def _apply(self, name: str, method: Any, args: tuple, kwargs: dict) -> Any:
        result = method(*args, **kwargs)
        if name == "commit_memo" and result:
            run_id, memo = args[0], args[1]
            with self._ledger_lock:
                self.memo_writes[(run_id, memo.step_id)].append(memo.value)
        return result


class FaultyQueue(_Faulty):
    """Sends may also be delivered twice, or later than asked."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        super().__init__(inner, plan, QUEUE_WRITES, "queue")

    def _apply(self, name: str, method: Any, args: tuple, kwargs: dict) -> Any:
        if name not in ("send", "send_many"):
            return method(*args, **kwargs)
        bodies = args[0]
        delay = int(kwargs.get("delay_seconds", args[1] if len(args) > 1 else 0))
        rates = self._plan.rates
        if self._plan.roll(rates.late):
            self._plan.note("late", repr(bodies)[:200])
            delay = min(delay + int(self._plan.uniform(1, 3.99)), self._inner.max_delay_seconds)
        result = method(bodies, delay)
        if self._plan.roll(rates.duplicate):
            self._plan.note("duplicate", repr(bodies)[:200])
            method(bodies, delay)
        return result


def faulty_backend(backend: Backend, plan: FaultPlan) -> Backend:
    """The same backend (of the same family, its typed fields kept) with every port write
    faulted by ``plan``."""
    return dataclasses.replace(
        backend,
        store=FaultyStore(backend.store, plan),
        queue=FaultyQueue(backend.queue, plan),
        timers=_Faulty(backend.timers, plan, TIMER_WRITES, "timers"),
    )
