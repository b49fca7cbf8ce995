"""How a run ends: the one path completion, failure, cancellation and timeout all take
(``RunEnding.end``), in one order.

1. **Announce.** A run that was invoked hands its result to the caller's step (a memo on the
   parent), and ``inngest/function.finished`` is emitted through ingest, with
   ``inngest/function.failed`` or ``inngest/function.cancelled`` beside it (docs/protocol.md
   §9.2), so ``on_failure`` handlers and functions triggered by them run.
2. **Write.** The run's status, its output or error and its end time, in one conditional write:
   on the lease the ender holds (the executor), or on the run still being live (a cancel, a
   timeout, a poison message).
3. **Release.** What the run held for its whole life: its waiters (so events stop finding it)
   and its singleton key. Concurrency slots are held per call, by the executor invocation's
   gate, and go as that invocation ends, right after.

Why this order. Every announcement is idempotent (event ids derived from the run, the parent's
memo written once), so a crash after announcing is repaired by whatever retries the ending (the
message delivered again, the request retried), which ends the run again and announces again;
writing first would let a crash leave a run ended in silence, its parent waiting for an answer
that never comes. Releasing after the write keeps the singleton key held until the run is
stored as ended: a claimant that found the key free while the run was still live would start a
second live run. A crash after the write leaves the key to its next claimant, which finds the
run ended and takes it over, and waiters that match only an ended run, which do nothing.

Two endings racing (a cancel while the executor completes the run) both announce; the derived
event ids keep the first announcement of each event, the parent's memo is the first written,
and the run's status is the first write's, which is conditional on the run being live (or on
the lease the executor holds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepline.engine.flow import singleton
from stepline.engine.ids import seeded_ulid
from stepline.engine.ports import (
    AppStore,
    Clock,
    KeyClaims,
    Run,
    RunState,
    RunStatus,
    RunStore,
    SignalStore,
    WaiterStore,
)
from stepline.engine.resume import Resumer
from stepline.engine.waits import remove_waiters
from stepline.protocol.calls import memo_data, memo_error
from stepline.protocol.invocations import parse_correlation
from stepline.telemetry import NOOP, Telemetry

FINISHED = "inngest/function.finished"
FAILED = "inngest/function.failed"
CANCELLED = "inngest/function.cancelled"
LIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})

# Stores events and starts what they trigger (ingest's accept), with the id seed they take.
Emit = Callable[[list[dict[str, Any]], tuple[int, bytes]], object]


def call_failed_error(error: dict[str, Any], status: int) -> dict[str, Any]:
    """The run's error when the app's answer to a call failed it: the app's error object, with
    Inngest's one-line summary of the answer (``invalid status code: 500``) under ``error``,
    which the end events carry (``event_error``)."""
    if status < 400:
        return error  # not an HTTP failure (a refused connection, a reply that made no progress)
    return {**error, "error": f"invalid status code: {status}"}


def event_error(error: dict[str, Any]) -> dict[str, Any]:
    """``data.error`` of the end events, in the shape Inngest sends: exactly ``error`` (a
    one-line summary), ``name``, ``message`` and ``stack`` (docs/protocol.md §9.2). The SDK's
    extra keys (Python's ``code``, TypeScript's ``__serialized``) stay on the run's error."""
    name = str(error.get("name") or "Error")
    message = str(error.get("message") or "")
    summary = error.get("error")
    return {
        "error": summary if isinstance(summary, str) and summary else f"{name}: {message}",
        "name": name,
        "message": message,
        "stack": str(error.get("stack") or ""),
    }


def lifecycle_seed(run: Run) -> tuple[int, bytes]:
    """The event-id seed of a run's end events: derived from the run, so their internal ids are
    known without a lookup (erasing a run erases them: they carry its events and output) and
    announcing the end again stores the same events."""
    return run.created_at, hashlib.sha256(f"lifecycle\x1f{run.run_id}".encode()).digest()[:10]


def lifecycle_event_ids(run: Run) -> list[str]:
    """Internal ids the run's end events have, if it emitted them: finished, then failed or
    cancelled."""
    ms, entropy = lifecycle_seed(run)
    return [seeded_ulid(ms, entropy, index) for index in range(2)]


@dataclass(frozen=True)
class Ending:
    """How a run ends: Completed with ``output``, Failed or Cancelled with ``error``."""

    status: RunStatus
    output: Any = None
    error: dict[str, Any] | None = None


class RunEnding:
    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        waiters: WaiterStore,
        key_claims: KeyClaims,
        clock: Clock,
        resumer: Resumer,
        emit: Emit,
        signals: SignalStore,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.signals = signals  # a run's signal waits go when it ends
        self.runs = runs
        self.apps = apps
        self.waiters = waiters
        self.key_claims = key_claims
        self.clock = clock
        self.resumer = resumer
        self.emit = emit
        self.telemetry = telemetry  # the run's root span and its end's count

    def end(
        self,
        state: RunState,
        fn_config: dict[str, Any] | None,
        ending: Ending,
        *,
        lease_owner: str | None = None,
        also: dict[str, Any] | None = None,
    ) -> bool:
        """End the run in ``state`` as ``ending`` says: announce, write, release. The write is
        conditional on ``lease_owner`` holding the run's lease (and clears it) when given, else
        on the run being live; ``also``: more run fields for the same write. A run that already
        ended this way (an ending retried after a crash) is announced and released again, not
        written. True when this call's write ended the run."""
        run = state.run
        again = run.status == ending.status
        if not again:
            run.status = ending.status
            run.ended_at = self.clock.now_ms()
            if ending.status == RunStatus.COMPLETED:
                run.output = ending.output
            elif ending.error is not None:
                run.error = ending.error
        self._announce(run)
        written = False
        if not again:
            changes: dict[str, Any] = {**(also or {}), "status": run.status, "ended_at": run.ended_at}
            if ending.status == RunStatus.COMPLETED:
                changes["output"] = run.output
            elif ending.error is not None:
                changes["error"] = run.error
            if lease_owner is not None:
                changes.update(lease_owner=None, lease_until=None)
                written = self.runs.update_run(run.run_id, changes, expect_lease_owner=lease_owner)
            else:
                written = self.runs.update_run(run.run_id, changes, expect_status=set(LIVE))
        self._release(state, fn_config)
        return written

    def end_by_id(
        self, run_id: str, ending: Ending, *, also: dict[str, Any] | None = None, again: bool = False
    ) -> Run | None:
        """End a run from outside the executor (a cancel, a timeout, a poison message): without
        its lease, so the write is conditional on the run being live. With ``again``, a run that
        already ended this way is announced and released again (a retried cancel repairs what a
        crash left half done). Returns the run as it now is (unchanged when it had ended), or
        None when there is no such run."""
        state = self.runs.load_run(run_id)
        if state is None:
            return None
        run = state.run
        if run.status.terminal and not (again and run.status == ending.status):
            return run
        fn = self.apps.get_function(run.fn_id)
        ended_before = run.status == ending.status
        if self.end(state, fn.config if fn else None, ending, also=also) or ended_before:
            return run
        return self.runs.get_run(run_id)  # it ended another way meanwhile

    # -- the steps -------------------------------------------------------------------------------
    def _announce(self, run: Run) -> None:
        self.telemetry.run_ended(self.runs, run)
        trigger = run.events[0] if run.events else {}
        self._answer_invoker(run, trigger)
        data: dict[str, Any] = {
            "function_id": run.fn_id,
            "run_id": run.run_id,
            "event": trigger,
            "events": run.events,
            "_inngest": {"status": run.status.value},
        }
        correlation = ((trigger.get("data") or {}).get("_inngest") or {}).get("correlation_id")
        if correlation:
            data["correlation_id"] = correlation
        if run.status == RunStatus.COMPLETED:
            data["result"] = run.output
        elif run.error is not None:
            data["error"] = event_error(run.error)
        # Ids derived from the run: emitting twice (a retried ending) stores each event once.
        events = [{"name": FINISHED, "id": f"{run.run_id}-finished", "data": data}]
        if run.status == RunStatus.FAILED:
            events.append({"name": FAILED, "id": run.run_id, "data": data})
        elif run.status == RunStatus.CANCELLED:
            events.append({"name": CANCELLED, "id": run.run_id, "data": data})
        # A failure here propagates: the caller's message (or request) is retried and ends the
        # run again, which the derived ids make harmless.
        self.emit(events, lifecycle_seed(run))

    def _answer_invoker(self, run: Run, trigger: dict[str, Any]) -> None:
        caller = parse_correlation(trigger)
        if caller is None:
            return
        if run.status == RunStatus.COMPLETED:
            value = memo_data(run.output)
        elif run.status == RunStatus.CANCELLED:
            value = memo_error({"name": "FunctionCancelled", "message": f"invoked run {run.run_id} was cancelled"})
        else:
            value = memo_error(run.error or {"name": "Error", "message": f"invoked run {run.run_id} failed"})
        self.resumer.resume(caller[0], caller[1], value)

    def _release(self, state: RunState, fn_config: dict[str, Any] | None) -> None:
        remove_waiters(self.waiters, self.signals, state, fn_config)
        if fn_config and fn_config.get("singleton"):
            run = state.run
            singleton.release(self.key_claims, fn_config, run.run_id, run.events[0] if run.events else {})
