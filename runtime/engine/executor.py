"""The executor: takes one queue message and drives a run forward by calling the user's app.

One invocation holds the run's lease, reads the run ONCE, then loops: call the SDK, commit what
it reports, and call again at once while there is something to run (inline continuation: a
sequential step costs one memo write and no queue hop). It stops when the run waits (sleep,
planned parallel work, a retry backoff), ends, or its time budget runs out, and then releases
the lease with a single write that also persists whatever run fields changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from runtime.engine import messages
from runtime.engine.http import CallFailed, HttpCaller
from runtime.engine.ids import IdGenerator
from runtime.engine.lifecycle import Lifecycle
from runtime.engine.ports import Backend, Clock, FunctionRecord, Memo, PendingOp, RunState, RunStatus
from runtime.engine.retry import backoff_ms
from runtime.engine.scheduling import Waker
from runtime.protocol.calls import (
    CallResult,
    Opcode,
    build_call_request,
    call_url,
    memo_data,
    memo_error,
    parse_call_response,
)
from runtime.protocol.durations import parse_sleep_until_ms
from runtime.protocol.jsoncanon import canonical_json
from runtime.protocol.signing import sign
from runtime.settings import Settings

log = logging.getLogger(__name__)

# How long a function config is trusted before it is read again. A sync takes effect for new
# invocations within this window.
FUNCTION_CACHE_MS = 5_000


_RESULT_OPS = frozenset({"StepRun", "StepError", "StepFailed"})


@dataclass
class _Invocation:
    """What one executor invocation knows about its run while it loops."""

    state: RunState
    fn: FunctionRecord | None
    owner: str
    deadline_ms: int
    dirty: dict[str, Any] = field(default_factory=dict)  # run fields to persist on release


@dataclass
class _Next:
    step: str
    attempt: int


class Executor:
    def __init__(
        self,
        backend: Backend,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        caller: HttpCaller,
        lifecycle: Lifecycle,
    ) -> None:
        self.store = backend.store
        self.queue = backend.queue
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.caller = caller
        self.lifecycle = lifecycle
        self.waker = Waker(backend.queue, backend.timers, clock)
        self._functions: dict[str, tuple[int, FunctionRecord]] = {}

    # -- entry point -------------------------------------------------------------------------
    def handle(self, body: dict[str, Any], *, budget_ms: int | None = None) -> None:
        """Process one message. Returning means the message is done (acknowledge it); an
        exception means an infrastructure failure (let the queue deliver it again)."""
        if self.waker.early(body):
            return
        kind = body.get("kind")
        run_id = body.get("run_id")
        if not isinstance(run_id, str):
            log.error("dropping malformed message %r", body)
            return
        if kind == messages.WAKE:
            step = body["step"]
            self.store.commit_memo(run_id, self._memo(step, memo_data(None)))
            self.store.remove_pending(run_id, step)
            self._drive(run_id, _Next(messages.DISCOVERY, 0), body, budget_ms)
        elif kind == messages.CALL:
            self._drive(run_id, _Next(body.get("step") or messages.DISCOVERY, int(body.get("attempt") or 0)), body, budget_ms)
        else:
            log.error("dropping message of unknown kind %r", body)

    # -- the loop ----------------------------------------------------------------------------
    def _drive(self, run_id: str, nxt: _Next, body: dict[str, Any], budget_ms: int | None) -> None:
        now = self.clock.now_ms()
        owner = self.ids.new()
        # Lease first, then read: a read taken before the lease could miss the memo the
        # previous holder wrote just before releasing, and run that step again.
        if not self.store.acquire_lease(run_id, owner, now + self.settings.lease_ms, now):
            self._busy_or_gone(run_id, body)
            return
        state = self.store.load_run(run_id)
        if state is None or state.run.status.terminal:
            self.store.release_lease(run_id, owner)
            return
        fn = self._function(state.run.fn_id)
        if fn is None:
            self._finish_failed(
                _Invocation(state, None, owner, 0),
                {"name": "FunctionNotFound", "message": f"function {state.run.fn_id!r} is not registered", "stack": ""},
            )
            return
        budget = budget_ms if budget_ms is not None else int(self.settings.invocation_budget_s * 1000)
        inv = _Invocation(state, fn, owner, now + budget)
        inv.state.run.lease_until = now + self.settings.lease_ms
        step: _Next | None = nxt
        while step is not None:
            if self.clock.now_ms() >= inv.deadline_ms:
                # Out of time: hand the rest to a fresh invocation rather than race the deadline.
                self.queue.send(messages.call(run_id, step.step, step.attempt))
                break
            self._ensure_lease(inv)
            step = self._call_once(inv, step)
            if inv.state.run.status.terminal:
                return
        self._release(inv)

    def _call_once(self, inv: _Invocation, nxt: _Next) -> _Next | None:
        run = inv.state.run
        request = build_call_request(
            run_id=run.run_id,
            attempt=nxt.attempt,
            max_attempts=inv.fn.max_attempts,
            events=run.events,
            steps=inv.state.memo_map(),
            stack=inv.state.stack(),
            disable_immediate=run.disable_immediate or nxt.step != messages.DISCOVERY,
            use_api=False,
            version=run.req_version,
            step_id=nxt.step,
        )
        body = canonical_json(request)
        headers = {"Content-Type": "application/json"}
        if self.settings.signing_key:
            headers["X-Inngest-Signature"] = sign(body, self.settings.signing_key, self.clock.now_ms() // 1000)
        url = call_url(inv.fn.url, nxt.step)
        try:
            resp = self.caller.post(url, body, headers, self.settings.step_timeout_s)
            result = parse_call_response(resp.status, resp.headers, resp.body, self.clock.now_ms())
        except CallFailed as exc:
            result = CallResult(
                kind="error",
                error={"name": "CallFailed", "message": f"calling {url}: {exc}", "stack": ""},
                no_retry=False,
                status=0,
            )
        if result.req_version is not None and result.req_version != run.req_version and result.req_version > 0:
            run.req_version = result.req_version
            inv.dirty["req_version"] = result.req_version
        if result.kind == "complete":
            self._finish_completed(inv, result.output)
            return None
        if result.kind == "ops":
            return self._handle_ops(inv, nxt, result)
        return self._handle_error(inv, nxt, result)

    # -- responses ---------------------------------------------------------------------------
    def _handle_ops(self, inv: _Invocation, nxt: _Next, result: CallResult) -> _Next | None:
        state = inv.state
        # Ignore ops already memoized, and re-reports of ops already waited on (PROTOCOL §7.6);
        # a result (StepRun/StepError/StepFailed) of a planned step is what we wait for.
        fresh = [
            op
            for op in result.ops
            if not state.has_memo(op.id) and (op.id not in state.pending or op.op in _RESULT_OPS)
        ]
        if len(result.ops) > 1 and not state.run.disable_immediate:
            # From now on every step is planned, never run inside discovery (PROTOCOL §7.3).
            state.run.disable_immediate = True
            self.store.update_run(state.run.run_id, {"disable_immediate": True})
        progressed = False
        planned: list[Opcode] = []
        for op in fresh:
            if op.op == "StepRun":
                self._commit(inv, op, memo_data(op.data))
                progressed = True
            elif op.op == "StepFailed" or (op.op == "StepError" and self._error_is_final(inv, nxt, op, result)):
                self._commit(inv, op, memo_error(op.error))
                progressed = True
            elif op.op == "StepError":
                self._retry_later(inv, _Next(op.id, nxt.attempt + 1), None)
            elif op.op == "StepPlanned":
                planned.append(op)
            elif op.op == "Sleep":
                self._sleep(inv, op)
            else:
                # Ops this runtime does not run yet fail their step, so the user's code sees a
                # StepError instead of the run hanging (PROTOCOL §14.9).
                message = f"step kind {op.op!r} is not supported by this runtime"
                self._commit(inv, op, memo_error({"name": "UnsupportedStep", "message": message, "stack": ""}))
                progressed = True
        if len(planned) == 1 and not progressed and len(fresh) == 1:
            return _Next(planned[0].id, 0)  # a lone planned step runs inline, no queue hop
        for op in planned:
            if self.store.add_pending(state.run.run_id, PendingOp(op.id, op.op, self.clock.now_ms(), op.display)):
                state.pending[op.id] = PendingOp(op.id, op.op, self.clock.now_ms(), op.display)
                self.queue.send(messages.call(state.run.run_id, op.id, 0))
        return _Next(messages.DISCOVERY, 0) if progressed else None

    def _error_is_final(self, inv: _Invocation, nxt: _Next, op: Opcode, result: CallResult) -> bool:
        attempt = nxt.attempt if nxt.step == op.id else 0
        return result.no_retry or attempt + 1 >= inv.fn.max_attempts

    def _handle_error(self, inv: _Invocation, nxt: _Next, result: CallResult) -> _Next | None:
        error = result.error or {"name": "Error", "message": f"status {result.status}", "stack": ""}
        if result.no_retry or nxt.attempt + 1 >= inv.fn.max_attempts:
            self._finish_failed(inv, error)
            return None
        log.info("run %s attempt %d failed (%s); retrying", inv.state.run.run_id, nxt.attempt, error.get("message"))
        self._retry_later(inv, _Next(nxt.step, nxt.attempt + 1), result.retry_at_ms)
        return None

    def _retry_later(self, inv: _Invocation, nxt: _Next, retry_at_ms: int | None) -> None:
        at = self.clock.now_ms() + backoff_ms(nxt.attempt - 1, self.settings.retry_base_ms, self.settings.retry_cap_ms)
        if retry_at_ms is not None:
            at = max(at, retry_at_ms)
        self.waker.at(messages.call(inv.state.run.run_id, nxt.step, nxt.attempt), at)

    def _sleep(self, inv: _Invocation, op: Opcode) -> None:
        spec = (op.opts or {}).get("duration") or op.name
        now = self.clock.now_ms()
        wake_at = parse_sleep_until_ms(str(spec), now)
        pending = PendingOp(op.id, op.op, now, op.display, {"wake_at": wake_at})
        # The wake time is fixed the first time the sleep is seen (PROTOCOL §7.6): a re-report
        # carries a new timestamp from Python and is ignored here.
        if self.store.add_pending(inv.state.run.run_id, pending):
            inv.state.pending[op.id] = pending
            self.waker.at(messages.wake(inv.state.run.run_id, op.id), wake_at)

    def _commit(self, inv: _Invocation, op: Opcode, value: dict[str, Any]) -> None:
        memo = self._memo(op.id, value, op.display)
        if self.store.commit_memo(inv.state.run.run_id, memo):
            inv.state.memos.append(memo)
        else:
            # Someone committed first (a duplicate delivery): theirs is the truth.
            fresh = self.store.load_run(inv.state.run.run_id)
            if fresh is not None:
                inv.state.memos = fresh.memos
        if inv.state.pending.pop(op.id, None) is not None:
            self.store.remove_pending(inv.state.run.run_id, op.id)

    def _memo(self, step_id: str, value: dict[str, Any], name: str = "") -> Memo:
        return Memo(step_id=step_id, value=value, seq=self.ids.new(), name=name)

    # -- ends ----------------------------------------------------------------------------------
    def _finish_completed(self, inv: _Invocation, output: Any) -> None:
        self._finish(inv, RunStatus.COMPLETED, {"output": output})

    def _finish_failed(self, inv: _Invocation, error: dict[str, Any]) -> None:
        self._finish(inv, RunStatus.FAILED, {"error": error})

    def _finish(self, inv: _Invocation, status: RunStatus, fields: dict[str, Any]) -> None:
        run = inv.state.run
        changes = {
            **inv.dirty,
            **fields,
            "status": status,
            "ended_at": self.clock.now_ms(),
            "lease_owner": None,
            "lease_until": None,
        }
        if not self.store.update_run(run.run_id, changes, expect_lease_owner=inv.owner):
            log.warning("run %s: lease lost before finishing; another executor owns it", run.run_id)
            return
        run.status = status
        for key, value in fields.items():
            setattr(run, key, value)
        self.lifecycle.run_finished(run)

    # -- leases and bookkeeping ---------------------------------------------------------------
    def _ensure_lease(self, inv: _Invocation) -> None:
        now = self.clock.now_ms()
        until = inv.state.run.lease_until or 0
        if until - now > self.settings.step_timeout_s * 1000:
            return
        new_until = now + self.settings.lease_ms
        if not self.store.acquire_lease(inv.state.run.run_id, inv.owner, new_until, now):
            raise RuntimeError(f"run {inv.state.run.run_id}: lease lost")
        inv.state.run.lease_until = new_until

    def _release(self, inv: _Invocation) -> None:
        changes = {**inv.dirty, "lease_owner": None, "lease_until": None}
        self.store.update_run(inv.state.run.run_id, changes, expect_lease_owner=inv.owner)

    def _busy_or_gone(self, run_id: str, body: dict[str, Any]) -> None:
        run = self.store.get_run(run_id)
        if run is None or run.status.terminal:
            return
        # Another executor holds the lease: try again once it is likely done. The message is
        # idempotent, so running it after the holder finished costs one harmless call.
        now = self.clock.now_ms()
        wait_ms = min(max((run.lease_until or now) - now, 1000), 30_000)
        self.waker.after({k: v for k, v in body.items() if k != "not_before"}, wait_ms)

    def _function(self, fn_id: str) -> FunctionRecord | None:
        now = self.clock.now_ms()
        cached = self._functions.get(fn_id)
        if cached and now - cached[0] < FUNCTION_CACHE_MS:
            return cached[1]
        fn = self.store.get_function(fn_id)
        if fn is not None:
            self._functions[fn_id] = (now, fn)
        return fn
