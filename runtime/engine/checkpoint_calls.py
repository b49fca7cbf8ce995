"""What the executor offers an app on each call so that it can checkpoint, and what it checks
while a checkpointing call runs (docs/architecture.md, "Checkpointed execution").

Every call request carries ``ctx.fn_id`` and the executor's lease token as ``ctx.qi_id``: a
TypeScript SDK that sees them runs steps inline and stores them through ``/v1/checkpoint``
(``stepline.engine.checkpoint``). A discovery call also offers Stepline's checkpoint stream
(``x-stepline-checkpoint: stream``, with a time budget): an SDK that takes it reports each step
on the call's own connection (``stepline.engine.checkpoint_stream``). SDKs that know neither
ignore both and answer one step per call, as before.

Only a call that may run steps inline offers anything: discovery, first attempt, not told to
plan steps (``disable_immediate_execution``), holding the run's lease. The stream's budget leaves
room, in what is left of the invocation, for the step that may still be running when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from stepline.engine.checkpoint_stream import StopReading
from stepline.engine.payload_policy import RUN_STATE_TOO_LARGE, run_state_bytes
from stepline.engine.ports import AppRecord, RunState, RunStore
from stepline.protocol.calls import CallResult
from stepline.protocol.checkpoint import H_CHECKPOINT, H_CHECKPOINT_BUDGET, H_CHECKPOINTED, STREAM, CheckpointOp
from stepline.protocol.opcodes import Op
from stepline.settings import Settings

# Register payloads name their SDK (``sdk``); these checkpoint through /v1/checkpoint.
_API_CHECKPOINTING_SDKS = ("js:",)
# How Stepline's own SDK names itself at sync (stepline.sdk.version.SDK_HEADER): it checkpoints
# through the API where its answers cannot stream, and then says so (H_CHECKPOINTED).
_STEPLINE_SDK = "stepline-py:"
# A budget shorter than this is not worth a checkpointing call.
MIN_BUDGET_MS = 100
# How often a run that keeps checkpointing is read to see whether it was cancelled meanwhile:
# once a second at most, never once per step.
LIVENESS_CHECK_MS = 1_000


@dataclass(frozen=True)
class CallPlan:
    """How one call request is built: what it tells the SDK, and what it offers."""

    disable_immediate: bool
    fn_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The SDK may store steps through /v1/checkpoint during this call.
    api_checkpoints: bool = False


def immediate_disabled(state: RunState, discovery: bool) -> bool:
    """Whether a call tells the SDK to plan steps rather than run them (docs/protocol.md §7.3):
    a targeted call always; discovery only while an op of the run may still be running elsewhere
    (a planned step, sleep, wait or invoke without its result), so that no step runs inside a
    call while parallel siblings are in flight. Once a group has joined, nothing of the run runs
    anywhere else, and the step after it runs inline again, checkpointing included, as the SDKs
    expect. (A settled op whose record is still on its way out, a woken sleep say, runs nowhere.)"""
    if not discovery:
        return True
    return any(not state.has_memo(op_id) for op_id in state.pending)


def plan_call(
    settings: Settings,
    state: RunState,
    *,
    discovery: bool,
    disable_immediate: bool,
    attempt: int,
    holds_run_lease: bool,
    deadline_ms: int,
    now_ms: int,
) -> CallPlan:
    """``disable_immediate``: whether the call tells the SDK to plan steps rather than run them
    (``immediate_disabled``)."""
    if not settings.checkpointing:
        return CallPlan(disable_immediate)
    inline = discovery and not disable_immediate and attempt == 0 and holds_run_lease
    headers: dict[str, str] = {}
    if inline:
        # No new step after the budget, and the last one may take the step timeout: both must
        # fit in what is left of the invocation.
        timeout_ms = int(settings.step_timeout_s * 1000)
        budget_ms = min(int(settings.checkpoint_call_budget_s * 1000), timeout_ms, deadline_ms - now_ms - timeout_ms)
        if budget_ms >= MIN_BUDGET_MS:
            headers = {H_CHECKPOINT: STREAM, H_CHECKPOINT_BUDGET: str(budget_ms)}
    return CallPlan(disable_immediate, fn_id=state.run.fn_id, headers=headers, api_checkpoints=inline)


def may_store_through_api(app: AppRecord | None, settings: Settings) -> bool:
    """Whether the app's calls may store steps through /v1/checkpoint: the TypeScript SDK's may
    whenever it runs steps inline under the run's lease (checkpointing is its own option),
    Stepline's SDK's when a call asks it to (only with ``settings.checkpointing``), an app not
    known here is assumed to."""
    if app is None or app.sdk.startswith(_API_CHECKPOINTING_SDKS):
        return True
    return settings.checkpointing and app.sdk.startswith(_STEPLINE_SDK)


def stored_through_api(app: AppRecord | None, headers: dict[str, str], result: CallResult, body: bytes) -> bool:
    """Whether steps may have been stored through /v1/checkpoint during the call just answered
    (then the executor reads the run again before its next call). Stepline's SDK says so in a
    header. The TypeScript SDK does not; for its apps it is assumed, except after a reply of one
    clean ``StepRun``: a checkpointing TypeScript call reports a step that way only when it did
    not checkpoint (a retry attempt; or TypeScript 3 by default, or ``checkpointing: false``),
    while one that checkpointed and then could not reports its steps with its internal fields
    (``hashedId``...). A failed step may follow checkpointed ones, so it always counts. Apps on
    other SDKs keep their calls free of the read."""
    if headers.get(H_CHECKPOINTED, "0") not in ("", "0"):
        return True
    if app is None or not app.sdk.startswith(_API_CHECKPOINTING_SDKS):
        return False
    plain_step = result.kind == "ops" and len(result.ops) == 1 and result.ops[0].op == Op.STEP_RUN
    return not (plain_step and b'"hashedId"' not in body)


class Liveness:
    """Whether a run an invocation keeps checkpointing still may go on: read now and then."""

    def __init__(self, store: RunStore, run_id: str, owner: str, now_ms: int) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.checked_at = now_ms  # the invocation read the run when it began

    def check(self, now_ms: int) -> None:
        """Raise ``StopReading`` when due for a look and the run may not go on."""
        if now_ms - self.checked_at < LIVENESS_CHECK_MS:
            return
        self.checked_at = now_ms
        check_still_held(self.store, self.run_id, self.owner)


def check_still_held(store: RunStore, run_id: str, owner: str) -> None:
    """Raise ``StopReading`` when the run ended (cancelled, timed out) or another call holds it."""
    run = store.get_run(run_id)
    if run is None or run.status.terminal:
        raise StopReading(f"run {run_id} has ended")
    if run.lease_owner != owner:
        raise StopReading(f"run {run_id} is held by another call")


def state_too_large(state: RunState, limit: int) -> dict[str, str] | None:
    """The run's error when steps checkpointed through the API took its state past ``limit``
    bytes (``Settings.max_run_state_bytes``)."""
    size = run_state_bytes(state)
    if size <= limit:
        return None
    message = f"the run's state is {size} bytes; the limit is {limit} (events and step outputs together)"
    return {"name": RUN_STATE_TOO_LARGE, "message": message, "stack": ""}


@dataclass(frozen=True)
class Ending:
    """How a checkpointing call ended: the run completed (``output``), or call again."""

    completed: bool
    output: Any = None


def take_ending(result: CallResult) -> tuple[CallResult, Ending | None]:
    """Split a 206 reply into its ordinary ops and the checkpointing op that ends it, if any:
    ``RunComplete`` (the function returned; TS 4.x sends it with the steps it had not
    checkpointed yet) or ``DiscoveryRequest`` (the SDK stopped at its time budget)."""
    ending: Ending | None = None
    ops = []
    for op in result.ops:
        if op.op == CheckpointOp.RUN_COMPLETE:
            ending = Ending(completed=True, output=op.data)
        elif op.op == CheckpointOp.DISCOVERY_REQUEST:
            ending = ending or Ending(completed=False)
        else:
            ops.append(op)
    if ending is None:
        return result, None
    return replace(result, ops=ops), ending
