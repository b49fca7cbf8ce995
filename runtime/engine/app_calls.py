"""One call to the user's app for a run: the request (docs/protocol.md §5), signed by the
protocol's one helper (``protocol.calls.call_headers``) when a signing key is set, sent, and the
reply read: parsed whole, or, for a checkpoint stream, step by step as it arrives
(``stepline.engine.checkpoint_stream``).

Whatever the app or the network does becomes a ``CallResult``: no answer at all (a refused
connection, a timeout, a 401 from a proxy) is a retriable ``CallFailed`` error, like any other
failed attempt.
"""

from __future__ import annotations

from collections.abc import Callable

from stepline.engine import pinning
from stepline.engine.checkpoint_calls import CallPlan
from stepline.engine.checkpoint_stream import StreamHooks, read_stream
from stepline.engine.http import CallFailed, HttpCaller, HttpResponse
from stepline.engine.keys import KeyRing
from stepline.engine.outbound import redact_in, redact_url
from stepline.engine.payload_policy import call_body, uses_api
from stepline.engine.ports import Clock, FunctionRecord, RunState
from stepline.protocol.call_encoding import CallEncoder
from stepline.protocol.calls import CallResult, build_call_request, call_headers, call_url, parse_call_response
from stepline.settings import Settings
from stepline.telemetry import NOOP, Telemetry


class AppCalls:
    def __init__(
        self,
        caller: HttpCaller,
        keys: KeyRing,
        clock: Clock,
        settings: Settings,
        *,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.caller = caller
        self.keys = keys  # what calls are signed with (re-read when rotated, deployed)
        self.clock = clock
        self.settings = settings
        self.telemetry = telemetry  # a span per call, named to the app in a traceparent

    def call(
        self,
        state: RunState,
        fn: FunctionRecord,
        step: str,
        attempt: int,
        plan: CallPlan,
        *,
        encoder: CallEncoder,
        queue_item_id: str,
        stream_hooks: Callable[[], StreamHooks],
    ) -> tuple[CallResult, HttpResponse | None]:
        """Call ``fn``'s app for ``step`` (its ``attempt``) with every memo of the run in
        ``state``, as ``plan`` says (checkpointing headers, immediate execution). The result,
        and the response it was read from (None when there was none)."""
        run = state.run
        request = build_call_request(
            run_id=run.run_id,
            attempt=attempt,
            max_attempts=fn.max_attempts,
            events=run.events,
            steps={},
            stack=state.stack(),
            disable_immediate=plan.disable_immediate,
            use_api=False,
            version=run.req_version,
            step_id=step,
            fn_id=plan.fn_id,
            qi_id=queue_item_id,
        )
        # With use_api the SDK fetches the state itself: the memos' values are never gathered
        # (a store's offloaded ones are not fetched for nothing).
        if not uses_api(state, request["event"], self.settings.use_api_threshold_bytes):
            request["steps"] = state.memo_map()
        body = call_body(request, state, self.settings.use_api_threshold_bytes, encoder.encode)
        signing_key = self.keys.current().signing_key
        headers = {**call_headers(body, signing_key=signing_key, now_s=self.clock.now_ms() // 1000), **plan.headers}
        # A run pinned to an app version calls that version (stepline.engine.pinning).
        url = pinning.call_url(call_url(fn.url, step), run, self.settings.pin_app_versions)
        span = self.telemetry.call_began(run, step, attempt, headers)
        result, resp = self._send(url, body, headers, stream_hooks)
        span.ended(result.status, result.error if result.kind == "error" else None)
        return result, resp

    def _send(
        self, url: str, body: bytes, headers: dict[str, str], stream_hooks: Callable[[], StreamHooks]
    ) -> tuple[CallResult, HttpResponse | None]:
        try:
            resp = self.caller.post(url, body, headers, self.settings.step_timeout_s)
            if resp.lines is not None:  # a checkpoint stream: each step is stored as it arrives
                result, _ = read_stream(resp.lines, stream_hooks(), self.clock)
                return result, resp
            return parse_call_response(resp.status, resp.headers, resp.body, self.clock.now_ms()), resp
        except CallFailed as exc:
            # 401s, timeouts and refused connections are infrastructure failures: retriable.
            # The URL may hold a secret in its query string: never in a run's error.
            message = f"calling {redact_url(url)}: {redact_in(str(exc), url)}"
            error = {"name": "CallFailed", "message": message, "stack": ""}
            return CallResult(kind="error", error=error, no_retry=False, status=0), None
