"""One call of the app in an executor invocation, and what its reply says of the run besides its ops.

Before the call: what it offers besides answering (``checkpoint_calls.plan_call``: immediate
execution, the checkpoint stream, the checkpoint API; docs/architecture.md, "Checkpointed
execution") and, when the app may store steps through the API, whether the run is still live.
After it, kept on the run and written with the lease's release: the app version the call ran on
(``stepline.engine.pinning``) and the SDK's request version (docs/protocol.md §5.4). Then whether
the app may have stored steps through ``/v1/checkpoint`` (the run is read again before the next
call), and a stale reply (a TypeScript SDK whose checkpoint got a 409), which lets the run go when
another call holds it and is otherwise retried like any glitch.

What the reply's ops mean is ``stepline.engine.plan``'s, and carrying them out the executor's.
"""

from __future__ import annotations

from dataclasses import replace

from stepline.engine import checkpoint_calls, pinning
from stepline.engine.app_calls import AppCalls
from stepline.engine.checkpoint import is_stale_reply
from stepline.engine.checkpointed import CheckpointedCalls
from stepline.engine.functions import FunctionCache
from stepline.engine.http import HttpResponse
from stepline.engine.invocation import Invocation, Next
from stepline.engine.ports import Clock
from stepline.protocol.calls import CallResult
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.settings import Settings


class InvocationCalls:
    def __init__(
        self,
        app: AppCalls,
        checkpointed: CheckpointedCalls,
        functions: FunctionCache,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.app = app
        self.checkpointed = checkpointed
        self.functions = functions
        self.clock = clock
        self.settings = settings

    def call(self, inv: Invocation, nxt: Next) -> CallResult | None:
        """Call the app for ``nxt``: its reply, or None when the run is no longer this
        invocation's to move (cancelled, ended, or held by another call)."""
        run = inv.state.run
        discovery = nxt.step == DISCOVERY_STEP_ID
        plan = checkpoint_calls.plan_call(
            self.settings,
            inv.state,
            discovery=discovery,
            disable_immediate=checkpoint_calls.immediate_disabled(inv.state, discovery),
            attempt=nxt.attempt,
            holds_run_lease=inv.hold.holds_run_lease,
            deadline_ms=inv.deadline_ms,
            now_ms=self.clock.now_ms(),
        )
        if plan.api_checkpoints and not self.checkpointed.still_live(inv):
            return None
        inv.call_started = self.clock.now_ms()
        result, resp = self.app.call(
            inv.state,
            inv.function,
            nxt.step,
            nxt.attempt,
            plan,
            encoder=inv.encoder,
            queue_item_id=inv.hold.owner,
            stream_hooks=lambda: self.checkpointed.stream_hooks(inv, nxt),
        )
        if resp is not None:
            self._note_app_version(inv, resp)
            if resp.lines is None:
                inv.refresh = plan.api_checkpoints and self.checkpointed.stored_through_api(inv.fn, resp, result)
        if result.req_version is not None and result.req_version > 0 and result.req_version != run.req_version:
            run.req_version = result.req_version
            inv.dirty["req_version"] = result.req_version
        if is_stale_reply(result):
            if self.checkpointed.let_stale_call_go(inv):
                return None
            # Stale, says the app, yet the run is ours and live: a glitch, retried like one.
            result = replace(result, no_retry=False)
        return result

    def _note_app_version(self, inv: Invocation, resp: HttpResponse) -> None:
        """Record the app version the run is on (stepline.engine.pinning), with the release."""

        def registered() -> str | None:
            app = self.functions.app(inv.function.app_id)
            return app.app_version if app else None

        version = pinning.observed(inv.state.run, inv.function.url, resp.headers, registered)
        if version is not None:
            inv.state.run.app_version = version
            inv.dirty["app_version"] = version
