"""What the executor does around a checkpointing call (``stepline.engine.checkpoint_calls``,
docs/protocol.md §17): stores each step a checkpoint stream carries as it arrives, keeping the
run's lease and checking now and then that the run was not cancelled meanwhile; reads the run
again after a call that may have stored steps through ``/v1/checkpoint``; and lets a call the
app calls stale go when it is (the run ended, or another call holds it).
"""

from __future__ import annotations

from stepline.engine import checkpoint_calls
from stepline.engine.checkpoint_stream import RefuseStep, StopReading, StreamHooks
from stepline.engine.ending import Ending
from stepline.engine.functions import FunctionCache
from stepline.engine.http import HttpResponse
from stepline.engine.invocation import Invocation, Next, StepWrites
from stepline.engine.leases import Leases
from stepline.engine.limits import STEP_LIMIT, steps_problem
from stepline.engine.ports import Clock, FunctionRecord, RunStatus, RunStore
from stepline.protocol.calls import CallResult, Opcode
from stepline.settings import Settings


class CheckpointedCalls:
    def __init__(
        self,
        runs: RunStore,
        clock: Clock,
        settings: Settings,
        leases: Leases,
        writes: StepWrites,
        functions: FunctionCache,
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.settings = settings
        self.leases = leases
        self.writes = writes
        self.functions = functions

    def stream_hooks(self, inv: Invocation, nxt: Next) -> StreamHooks:
        def store(op: Opcode) -> bool:
            over = steps_problem(inv.state, [op.id], inv.function, self.settings)
            if over is not None:
                raise RefuseStep(STEP_LIMIT, over)
            value = self.writes.output_memo(inv, op)
            # An output over a limit becomes an error memo, but the app went on with the value.
            return self.writes.commit(inv, op, value, nxt, checkpointed=True) and "error" not in value

        def check() -> None:
            inv.liveness.check(self.clock.now_ms())

        def hold() -> None:
            try:
                self.leases.renew(inv.hold)
            except RuntimeError as lost:
                raise StopReading(str(lost)) from None

        return StreamHooks(store, check, hold)

    def start(self, inv: Invocation) -> None:
        """At the start of an invocation, the run just read: steps its checkpointing calls may
        store through the API are written by another process, which the store's copy of the run
        would miss: the copy is dropped, and the next invocation reads the run whole (few do:
        such calls run on)."""
        app = self.functions.app(inv.fn.app_id) if inv.fn is not None else None
        if checkpoint_calls.may_store_through_api(app, self.settings):
            self.runs.forget_run(inv.state.run.run_id)

    def still_live(self, inv: Invocation) -> bool:
        """Before another checkpointing call of the same invocation: False (and the run is let
        go) when it was cancelled or lost meanwhile."""
        try:
            inv.liveness.check(self.clock.now_ms())
        except StopReading:
            return not self.let_stale_call_go(inv)
        return True

    def refresh(self, inv: Invocation) -> Ending | None:
        """Read the state again after a call that may have checkpointed through the API. The
        run may not go on when it ended meanwhile (``inv.state`` then says so) or outgrew its
        limits: then the ending it must take (Failed, naming the limit)."""
        inv.refresh = False
        fresh = self.runs.load_run(inv.state.run.run_id)
        if fresh is None or fresh.run.status.terminal:
            inv.state.run.status = fresh.run.status if fresh is not None else RunStatus.CANCELLED
            return None
        for name, value in inv.dirty.items():
            setattr(fresh.run, name, value)
        inv.state = fresh
        too_large = checkpoint_calls.state_too_large(fresh, self.settings.max_run_state_bytes)
        over = steps_problem(fresh, (), inv.function, self.settings)
        if over is not None:
            too_large = {"name": STEP_LIMIT, "message": over, "stack": ""}
        return Ending(RunStatus.FAILED, error=too_large) if too_large is not None else None

    def stored_through_api(self, fn: FunctionRecord | None, resp: HttpResponse, result: CallResult) -> bool:
        app = self.functions.app(fn.app_id) if fn is not None else None
        return checkpoint_calls.stored_through_api(app, resp.headers, result, resp.body)

    def let_stale_call_go(self, inv: Invocation) -> bool:
        """The app (or the stream reader) says the call is stale: True, and the run is let go,
        when it is (the run ended, or another call holds it); False when it still is ours."""
        run = self.runs.get_run(inv.state.run.run_id)
        if run is None or run.status.terminal:
            inv.state.run.status = run.status if run is not None else RunStatus.CANCELLED
            return True
        if inv.hold.holds_run_lease and run.lease_owner != inv.hold.owner:
            inv.hold.holds_run_lease = False  # nothing of ours to release
            return True
        return False
