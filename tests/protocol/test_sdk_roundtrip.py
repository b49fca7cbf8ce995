"""Our request builder, signer and response parser driving the real Python SDK (Flask, cloud mode).

No network: Flask's test client carries the requests. The tiny driver below is just enough of an
executor to walk a run to its end through the opcodes, so every protocol piece here is exercised
against the SDK that will really be on the other side.
"""

from __future__ import annotations

import time
import urllib.parse

import flask
import inngest
import inngest.flask
import pytest
from inngest._internal import comm_lib, const, server_lib, transforms

from stepline.protocol import (
    CallResult,
    FunctionConfig,
    build_call_request,
    call_headers,
    call_url,
    canonical_json,
    memo_data,
    memo_error,
    parse_call_response,
    parse_register,
)
from tests.protocol.captures import dumps

KEY = "signkey-test-" + "ab" * 32
OTHER_KEY = "signkey-test-" + "cd" * 32
APP_URL = "http://localhost/api/inngest"
EVENT = {"name": "app/run", "data": {"k": "v"}, "id": "01HEVT0000000000000000000A", "ts": 1700000000000, "user": {}}


def build_app():
    client = inngest.Inngest(app_id="lab-app", is_production=True, signing_key=KEY, event_key="evt")

    @client.create_function(fn_id="seq", trigger=inngest.TriggerEvent(event="app/run"))
    def seq(ctx: inngest.ContextSync):
        a = ctx.step.run("a", lambda: {"a": 1})
        b = ctx.step.run("b", lambda: 2)
        return {"a": a, "b": b, "attempt": ctx.attempt, "k": ctx.event.data["k"]}

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="app/run"), retries=1)
    def flaky(ctx: inngest.ContextSync):
        def boom():
            raise ValueError("step went boom")

        try:
            ctx.step.run("boom", boom)
        except inngest.StepError as err:
            return f"caught {err.name}: {err.message}"
        return "not reached"

    @client.create_function(fn_id="fan", trigger=inngest.TriggerEvent(event="app/run"))
    def fan(ctx: inngest.ContextSync):
        results = ctx.group.parallel((lambda: ctx.step.run("p1", lambda: 1), lambda: ctx.step.run("p2", lambda: 2)))
        after = ctx.step.run("after", lambda: sum(results))
        return after

    @client.create_function(fn_id="fatal", trigger=inngest.TriggerEvent(event="app/run"))
    def fatal(ctx: inngest.ContextSync):
        raise inngest.NonRetriableError("do not retry me")

    fns = [seq, flaky, fan, fatal]
    app = flask.Flask(__name__)
    inngest.flask.serve(app, client, fns)
    body = server_lib.SynchronizeRequest(
        app_name="lab-app", deploy_type=server_lib.DeployType.PING, framework=server_lib.Framework.FLASK,
        functions=comm_lib.get_function_configs(APP_URL, {f.id: f for f in fns}),
        sdk=f"{const.LANGUAGE}:v{const.VERSION}", url=APP_URL, v="0.1",
    ).to_dict()
    registered = parse_register(dumps(transforms.deep_strip_none(body)))
    return app.test_client(), {f.id: f for f in registered.functions}


@pytest.fixture(scope="module")
def sdk():
    return build_app()


class Run:
    """Memo state and one call at a time, as an executor would keep them."""

    def __init__(self, test_client, fn: FunctionConfig, key: str = KEY) -> None:
        self.client, self.fn, self.key = test_client, fn, key
        self.steps: dict[str, dict] = {}
        self.stack: list[str] = []
        self.version = -1
        self.disable_immediate = False
        self.calls = 0

    def call(self, step_id: str = "step", attempt: int = 0) -> CallResult:
        self.calls += 1
        body = canonical_json(build_call_request(
            run_id="01HRUN0000000000000000000A", attempt=attempt, max_attempts=self.fn.max_attempts,
            events=[EVENT], steps=self.steps, stack=self.stack,
            disable_immediate=self.disable_immediate or step_id != "step",
            use_api=False, version=self.version, step_id=step_id,
        ))
        now_s = int(time.time())
        url = urllib.parse.urlsplit(call_url(self.fn.url, step_id))
        resp = self.client.post(
            f"{url.path}?{url.query}", data=body,
            headers=call_headers(body, signing_key=self.key, now_s=now_s, server_kind="cloud"),
        )
        result = parse_call_response(resp.status_code, dict(resp.headers), resp.data, now_s * 1000)
        if result.req_version is not None:
            self.version = result.req_version
        return result

    def memoize(self, op_id: str, memo: dict) -> None:
        self.steps[op_id] = memo
        self.stack.append(op_id)

    def drive(self) -> CallResult:
        pending: list[tuple[str, int]] = [("step", 0)]
        while pending and self.calls < 30:
            step_id, attempt = pending.pop(0)
            result = self.call(step_id, attempt)
            if result.kind != "ops":
                return result
            if len(result.ops) > 1:
                self.disable_immediate = True
            for op in result.ops:
                if op.op == "StepRun":
                    self.memoize(op.id, memo_data(op.data))
                elif op.op == "StepPlanned":
                    pending.append((op.id, 0))
                elif op.op == "StepError":
                    pending.append((op.id, attempt + 1))
                elif op.op == "StepFailed":
                    self.memoize(op.id, memo_error(op.error))
                else:
                    raise AssertionError(f"unexpected op {op.op}")
            if not pending:
                pending.append(("step", 0))
        raise AssertionError("run did not finish")


def test_sequential_steps_to_completion(sdk):
    client, fns = sdk
    run = Run(client, fns["lab-app-seq"])
    first = run.call()
    assert first.kind == "ops" and first.req_version == 2
    assert [(o.op, o.display, o.data) for o in first.ops] == [("StepRun", "a", {"a": 1})]
    result = run.drive()
    assert result.kind == "complete"
    assert result.output == {"a": {"a": 1}, "b": 2, "attempt": 0, "k": "v"}
    assert run.stack == [transforms.hash_step_id("a"), transforms.hash_step_id("b")]


def test_step_error_then_failed_memo_is_caught_by_user_code(sdk):
    client, fns = sdk
    run = Run(client, fns["lab-app-flaky"])
    assert run.fn.max_attempts == 2
    first = run.call()
    assert first.ops[0].op == "StepError" and first.ops[0].error["message"] == "step went boom"
    result = run.drive()
    assert result.kind == "complete" and result.output == "caught ValueError: step went boom"
    assert list(run.steps.values())[0]["error"]["name"] == "ValueError"


def test_parallel_steps_are_planned_then_targeted(sdk):
    client, fns = sdk
    run = Run(client, fns["lab-app-fan"])
    first = run.call()
    assert [o.op for o in first.ops] == ["StepPlanned", "StepPlanned"]
    result = run.drive()
    assert result.kind == "complete" and result.output == 3


def test_non_retriable_error(sdk):
    client, fns = sdk
    result = Run(client, fns["lab-app-fatal"]).call()
    assert result.kind == "error" and result.status == 500 and result.no_retry
    assert result.error["name"] == "NonRetriableError" and result.error["message"] == "do not retry me"


def test_wrong_key_is_a_retriable_401(sdk):
    client, fns = sdk
    result = Run(client, fns["lab-app-seq"], key=OTHER_KEY).call()
    assert result.kind == "error" and result.status == 401 and not result.no_retry
