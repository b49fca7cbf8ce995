"""A stand-in for an SDK app in engine tests: functions written as scripts of steps, answered
the way the SDKs answer call requests (docs/protocol.md §6), with a counter of every step it executes.

It is the executor's HTTP caller, so tests run the whole engine on a manual clock without a
server: ``pump`` plays the queue's consumer and the timers' driver.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.messages import timer_name
from stepline.protocol.register import parse_register

APP_URL = "http://127.0.0.1:9/api/inngest"
DISCOVERY = "step"

# Stages of a script: ("run", id) · ("sleep", id, duration) · ("wait", id, event, timeout)
# · ("signal", id, signal, timeout) · ("invoke", id, function id, timeout or None)
# · ("parallel", [id, ...]).
Stage = tuple


class Crash(BaseException):  # not Exception: no handler in the engine may run after it
    """The process died here: nothing after this point happens, nothing is cleaned up."""


class ScriptedApp:
    def __init__(self, scripts: dict[str, list[Stage]]) -> None:
        self.scripts = scripts
        self.executed: Counter[str] = Counter()  # step id -> times its body ran
        # Step id -> a reply for its first execution instead of success (an error status).
        self.fail_first: dict[str, HttpResponse] = {}
        self.before_call: Callable[[str, str], None] | None = None  # (fn id, target step)

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        query = parse_qs(urlsplit(url).query)
        fn_id, target = query["fnId"][0], query["stepId"][0]
        if self.before_call is not None:
            self.before_call(fn_id, target)
        request = json.loads(body)
        memos = request["steps"]
        immediate = not request["ctx"]["disable_immediate_execution"]
        for stage in self.scripts[fn_id]:
            kind = stage[0]
            if kind == "parallel":
                todo = [s for s in stage[1] if s not in memos]
                if not todo:
                    continue
                if target in todo:
                    return self._execute(target)
                return _ops([{"op": "StepPlanned", "id": s, "name": s} for s in todo])
            step = stage[1]
            if step in memos:
                continue
            if kind == "run":
                if target == step or (target == DISCOVERY and immediate):
                    return self._execute(step)
                return _ops([{"op": "StepPlanned", "id": step, "name": step}])
            if kind == "sleep":
                return _ops([{"op": "Sleep", "id": step, "name": stage[2]}])
            if kind == "wait":
                opts = {"event": stage[2], "timeout": stage[3]}
                return _ops([{"op": "WaitForEvent", "id": step, "name": stage[2], "opts": opts}])
            if kind == "signal":
                opts = {"signal": stage[2], "timeout": stage[3]}
                return _ops([{"op": "WaitForSignal", "id": step, "name": stage[2], "opts": opts}])
            if kind == "invoke":
                opts: dict[str, Any] = {"function_id": stage[2], "payload": {"data": {}}}
                if stage[3]:
                    opts["timeout"] = stage[3]
                return _ops([{"op": "InvokeFunction", "id": step, "name": step, "opts": opts}])
            raise ValueError(f"unknown stage {stage!r}")
        return HttpResponse(200, json.dumps({"steps": memos}).encode(), {"x-inngest-req-version": "2"})

    def _execute(self, step: str) -> HttpResponse:
        self.executed[step] += 1
        if self.executed[step] == 1 and step in self.fail_first:
            return self.fail_first[step]
        return _ops([{"op": "StepRun", "id": step, "name": step, "data": f"{step} done"}])


def _ops(ops: list[dict[str, Any]]) -> HttpResponse:
    return HttpResponse(206, json.dumps(ops).encode(), {"x-inngest-req-version": "2"})


def register(engine: Engine, fn_ids: list[str], configs: dict[str, dict] | None = None,
             app_id: str = "t-app") -> None:
    """Sync one app whose functions are triggered by ``app/<fn id>``, each with its extra
    configuration from ``configs`` (flow control, ...)."""
    functions = [
        {
            "id": fn_id, "name": fn_id, "triggers": [{"event": f"app/{fn_id}"}],
            **(configs or {}).get(fn_id, {}),
            "steps": {"step": {"id": "step", "name": "step",
                               "runtime": {"type": "http", "url": f"{APP_URL}?fnId={fn_id}&stepId=step"}}},
        }
        for fn_id in fn_ids
    ]
    body = {"appname": app_id, "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1",
            "functions": functions}
    engine.registry.register(parse_register(json.dumps(body).encode()))


def receive_all(backend) -> list[Any]:
    """Every message visible now (SQS short polling may miss one: twice empty means empty)."""
    out: list[Any] = []
    empty = 0
    while empty < 2:
        got = backend.queue.receive(10, 60)
        out += got
        empty = 0 if got else empty + 1
    return out


def pump(backend, engine: Engine, clock, *, most: int = 200) -> int:
    """Fire due timers and handle every visible message until there are none; how many."""
    handled = 0
    while handled < most:
        backend.timers.fire_due(clock.now_ms())
        received = receive_all(backend)
        if not received:
            return handled
        for message in received:
            engine.executor.handle(message.body)
            backend.queue.ack(message.handle)
            handled += 1
    raise AssertionError(f"still busy after {most} messages")


def drop_all(backend) -> list[dict[str, Any]]:
    """Lose every visible message (acknowledged unhandled); their bodies."""
    received = receive_all(backend)
    for message in received:
        backend.queue.ack(message.handle)
    return [m.body for m in received]


def lose_wake_up(backend, body: dict[str, Any]) -> None:
    """Delete the delayed message or timer that would deliver ``body`` (asserting it was
    there): a schedule deleted by hand, a message lost."""
    name = timer_name(messages.parse(body))
    if backend.name == "sqlite":
        # SQLite's queue holds delays of any length: the wake-up is a queue row.
        with backend.store._db.write() as conn:
            lost = conn.execute(
                "DELETE FROM queue WHERE json_extract(body, '$.kind') = ? "
                "AND json_extract(body, '$.run_id') = ? AND json_extract(body, '$.step') = ?",
                (body["kind"], body["run_id"], body["step"]),
            ).rowcount
        assert lost == 1, f"no queued {body}"
        return
    # On AWS a wait past SQS's 15-minute cap is an EventBridge Scheduler schedule.
    names = backend.names
    scheduler = backend.clients["scheduler"]
    scheduler.get_schedule(Name=name, GroupName=names.schedule_group)  # raises when missing
    backend.timers.cancel(name)
