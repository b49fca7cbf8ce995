"""Call requests and responses (docs/protocol.md §5–8, §12, §15), checked against the Python SDK's models."""

from __future__ import annotations

import json

import pytest
from inngest._internal import server_lib, step_lib

from stepline.protocol import (
    CallResult,
    Opcode,
    build_call_request,
    call_headers,
    call_url,
    canonical_json,
    memo_data,
    memo_error,
    parse_call_response,
    verify_signature,
)
from tests.protocol import captures as cap

NOW = 1_795_382_807_469
EVENT = cap.CALL_REQUEST_SAMPLE["event"]
H_A = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"


def request(**overrides) -> dict:
    args = dict(
        run_id="01HRUN0000000000000000000A", attempt=0, max_attempts=4, events=[EVENT],
        steps={H_A: {"data": {"a": 1}}}, stack=[H_A], disable_immediate=False, use_api=False, version=-1,
    )
    args.update(overrides)
    return build_call_request(**args)


def sdk_parses(body: bytes):
    """The Python SDK's strict request model, fed the bytes exactly as sent (§15.2)."""
    parsed = server_lib.ServerRequest.from_raw(body)
    assert not isinstance(parsed, Exception), parsed
    return parsed


def respond(status: int, body: bytes | str | object = b"", **headers: str) -> CallResult:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return parse_call_response(status, {k.replace("_", "-"): v for k, v in headers.items()}, body, NOW)


# -- requests ---------------------------------------------------------------------------------


def test_request_is_exactly_the_section_5_2_shape():
    assert canonical_json(request()) == canonical_json(cap.CALL_REQUEST_SAMPLE)


def test_request_never_sends_fn_id_or_version_zero():
    body = request(version=0)
    assert "fn_id" not in body["ctx"]
    assert body["version"] == -1
    assert request(version=2)["version"] == 2
    assert request(version=1)["version"] == 1


def test_use_api_at_top_level_and_in_ctx():
    body = request(use_api=True)
    assert body["use_api"] is True and body["ctx"]["use_api"] is True


def test_batch_event_is_the_first_and_stack_current_is_its_length():
    second = {**EVENT, "id": "01HEVT0000000000000000000B"}
    body = request(events=[EVENT, second], stack=[H_A, "b" * 40], step_id="b" * 40, disable_immediate=True)
    assert body["event"] == EVENT and body["events"] == [EVENT, second]
    assert body["ctx"]["stack"] == {"stack": [H_A, "b" * 40], "current": 2}
    assert body["ctx"]["step_id"] == "b" * 40
    assert body["ctx"]["disable_immediate_execution"] is True


def test_python_sdk_request_model_accepts_our_request():
    parsed = sdk_parses(canonical_json(request(events=[EVENT, {**EVENT, "id": "2"}], attempt=2)))
    assert parsed.ctx.attempt == 2 and parsed.ctx.max_attempts == 4
    assert parsed.ctx.run_id == "01HRUN0000000000000000000A"
    assert parsed.ctx.stack.stack == [H_A]
    assert parsed.event.id == EVENT["id"] and parsed.event.ts == EVENT["ts"]
    assert len(parsed.events) == 2 and parsed.use_api is False
    assert parsed.steps == {H_A: {"data": {"a": 1}}}


def test_python_sdk_strictness_is_real():
    # The checks above would prove nothing if the SDK model were lenient: these §15.2 cases fail.
    good = json.loads(canonical_json(request()))
    for mutate in (
        lambda b: b["ctx"].__setitem__("attempt", "0"),
        lambda b: b["event"].__setitem__("ts", 1.7e12 + 0.5),
        lambda b: b["event"].__setitem__("id", None),
        lambda b: b.__setitem__("steps", None),
        lambda b: b.pop("use_api"),
        lambda b: b["ctx"].pop("stack"),
    ):
        body = json.loads(json.dumps(good))
        mutate(body)
        assert isinstance(server_lib.ServerRequest.from_raw(json.dumps(body).encode()), Exception)


def test_events_are_coerced_to_what_the_strict_sdk_accepts():
    loose = {"name": "app/run", "data": None, "id": None, "ts": 1700000000000.0, "user": {}}
    body = request(events=[loose])
    assert body["event"] == {"name": "app/run", "data": {}, "ts": 1700000000000, "user": {}}
    parsed = sdk_parses(canonical_json(body))
    assert parsed.event.id == "" and parsed.event.ts == 1700000000000


def test_request_needs_an_event():
    with pytest.raises(ValueError, match="events"):
        request(events=[])
    with pytest.raises(ValueError, match=r"events\[0\]"):
        request(events=[{"data": {}}])


def test_memos_decode_in_the_python_sdk():
    error = memo_error({"code": "unknown", "message": "step went boom", "name": "ValueError", "stack": "tb"})
    memos = step_lib.StepMemos.from_raw(
        {"ok": memo_data({"a": 1}), "lone-data": memo_data({"data": 1}), "none": memo_data(None), "bad": error}
    )
    assert memos.pop("ok").data == {"a": 1}
    assert memos.pop("lone-data").data == {"data": 1}  # wrapping protects a lone "data" key
    assert memos.pop("none").data is None
    bad = memos.pop("bad")
    assert bad.error is not None and bad.error.name == "ValueError" and bad.error.message == "step went boom"


def test_memo_error_has_exactly_three_string_keys():
    assert memo_error(None) == {"error": {"name": "Error", "message": "unknown error", "stack": ""}}
    ts = {"name": "Error", "message": "m", "stack": "s", "__serialized": True, "cause": {}}
    assert memo_error(ts) == {"error": {"name": "Error", "message": "m", "stack": "s"}}
    odd = {"name": 5, "message": None, "stack": None, "code": "x"}
    assert memo_error(odd) == {"error": {"name": "Error", "message": "unknown error", "stack": ""}}
    assert memo_data([1]) == {"data": [1]}


def test_call_url_targets_a_step_and_keeps_other_params():
    url = "http://127.0.0.1:8939/api/inngest?fnId=lab-app-run-steps&stepId=step"
    assert call_url(url, H_A) == f"http://127.0.0.1:8939/api/inngest?fnId=lab-app-run-steps&stepId={H_A}"
    assert call_url(url, "step") == url
    assert call_url("http://x/api?fnId=a-f", "step") == "http://x/api?fnId=a-f&stepId=step"
    assert call_url("http://x/api", "step") == "http://x/api?stepId=step"
    assert call_url("http://x/api?stepId=1&fnId=a%20b&stepId=2&z", "s") == "http://x/api?stepId=s&fnId=a%20b&z"


def test_call_headers_sign_the_body():
    body = canonical_json(request())
    key = "signkey-test-" + "ab" * 32
    headers = call_headers(body, signing_key=key, now_s=NOW // 1000, server_kind="cloud", request_id="r1")
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Inngest-Server-Kind"] == "cloud" and headers["X-Request-Id"] == "r1"
    assert verify_signature(headers["X-Inngest-Signature"], body, [key], NOW // 1000)
    assert "X-Inngest-Signature" not in call_headers(body, signing_key=None, now_s=0)


# -- responses: the §6.5 captures -------------------------------------------------------------


@pytest.mark.parametrize("body", [cap.PY_STEP_RUN, cap.TS_STEP_RUN])
def test_step_run(body):
    result = respond(206, body, **{"x-inngest-req-version": "2"})
    assert result.kind == "ops" and result.req_version == 2 and result.status == 206
    (op,) = result.ops
    assert (op.id, op.op, op.name, op.display, op.data) == (H_A, "StepRun", "a", "a", {"a": 1})
    assert op.options == {}


def test_step_planned():
    (op,) = respond(206, cap.STEP_PLANNED).ops
    assert op.op == "StepPlanned" and op.data is None and op.opts is None


@pytest.mark.parametrize(("body", "expr"), [(cap.PY_WAIT_IF, "event.data.id == async.data.id"), (cap.PY_WAIT_PLAIN, None), (cap.TS_WAIT_PLAIN, None)])
def test_wait_for_event_name_holds_the_event(body, expr):
    (op,) = respond(206, body).ops
    assert op.op == "WaitForEvent" and op.wait_event == op.name
    assert op.options.get("if") == expr and op.options["timeout"] == "1m"


@pytest.mark.parametrize("body", [cap.PY_INVOKE, cap.TS_INVOKE])
def test_invoke(body):
    (op,) = respond(206, body).ops
    assert op.op == "InvokeFunction" and op.display == "call-child"
    assert op.options["function_id"] == "lab-app-child" and op.options["payload"]["data"] == {"hello": "world"}


def test_send_event_display_name():
    (py,) = respond(206, cap.PY_SEND_EVENT).ops
    (ts,) = respond(206, cap.TS_SEND_EVENT).ops
    assert py.display == ts.display == "send-it"
    assert ts.name == "sendEvent" and ts.data == {"ids": ["aa1700c42ac5485e99fd0e1c70c45ce4", "my-fixed-id"]}
    assert Opcode(id="x", op="StepRun", userland={"id": "u"}).display == "u"
    assert Opcode(id="x", op="StepRun", name="n").display == "n"


def test_step_error_and_step_failed():
    py = respond(206, cap.PY_STEP_ERROR)
    assert py.kind == "ops" and not py.no_retry
    assert py.ops[0].op == "StepError" and py.ops[0].error["name"] == "ValueError"
    ts = respond(206, cap.TS_STEP_FAILED, **{"x-inngest-no-retry": "true"})
    assert ts.no_retry and ts.ops[0].op == "StepFailed" and ts.ops[0].error["message"] == "step went boom"
    assert memo_error(ts.ops[0].error) == {"error": {"name": "Error", "message": "step went boom", "stack": "Error: step went boom\n ..."}}


def test_nested_step_error_is_non_retriable_on_a_206():
    result = respond(206, cap.PY_NESTED, **{"X-Inngest-No-Retry": "true"})
    assert result.kind == "ops" and result.no_retry and result.ops[0].error["code"] == "step_nested"


def test_sleeps_and_parallel_batch():
    assert respond(206, cap.PY_SLEEP).ops[0].sleep_value == "2026-11-22T21:27:17.065Z"
    assert respond(206, cap.TS_SLEEP).ops[0].sleep_value == "30s"
    assert Opcode(id="x", op="Sleep", name="ignored", opts={"duration": "5s"}).sleep_value == "5s"
    ops = respond(206, cap.PARALLEL).ops
    assert [o.op for o in ops] == ["StepPlanned", "StepPlanned", "Sleep"]


def test_206_forms_go_accepts():
    assert respond(206, "[]").ops == [] and respond(206, "[]").kind == "ops"
    assert respond(206, "null").ops == []
    bare = respond(206, json.loads(cap.PY_STEP_RUN)[0])
    assert bare.kind == "ops" and bare.ops[0].op == "StepRun"


# -- responses: completion and errors ---------------------------------------------------------


def test_complete():
    result = respond(200, {"a": {"a": 1}, "b": 2}, **{"x-inngest-req-version": "1"})
    assert result.kind == "complete" and result.output == {"a": {"a": 1}, "b": 2} and result.req_version == 1
    assert respond(200, "null").output is None and respond(200, "null").kind == "complete"
    assert respond(200, b"").output is None
    assert respond(200, '"text"').output == "text"


@pytest.mark.parametrize(
    ("status", "body", "headers", "no_retry", "name"),
    [
        (500, cap.PY_FN_ERROR, {}, False, "RuntimeError"),
        (500, cap.PY_NON_RETRIABLE, {"x-inngest-no-retry": "true"}, True, "NonRetriableError"),
        (400, cap.TS_NON_RETRIABLE, {"x-inngest-no-retry": "true"}, True, "NonRetriableError"),
        (400, cap.TS_NON_RETRIABLE, {}, True, "NonRetriableError"),
        (500, cap.PY_FN_ERROR, {"x-inngest-no-retry": "false"}, False, "RuntimeError"),
        (500, cap.PY_STEP_UNEXPECTED, {}, False, "StepUnexpectedError"),
        (500, cap.TS_STEP_NOT_FOUND, {"x-inngest-no-retry": "false"}, False, "Error"),
        (401, {"message": "Unauthorized"}, {}, False, "Error"),
        (502, "<html>Bad Gateway</html>", {}, False, "HTTPError"),
        (503, "", {}, False, "HTTPError"),
    ],
)
def test_errors(status, body, headers, no_retry, name):
    result = respond(status, body, **headers)
    assert result.kind == "error" and result.status == status
    assert result.no_retry is no_retry
    assert result.error["name"] == name and isinstance(result.error["message"], str)


def test_error_objects_are_kept_whole():
    result = respond(500, cap.PY_FN_ERROR)
    assert result.error == cap.PY_FN_ERROR
    ts = respond(500, cap.TS_STEP_NOT_FOUND).error
    assert ts["requestedStep"] == "0" * 40 and ts["message"].startswith("Could not find step")
    assert respond(502, "<html>Bad Gateway</html>").error["message"] == "HTTP 502: <html>Bad Gateway</html>"


def test_retry_after_both_forms():
    py = respond(500, cap.PY_RETRY_AFTER, **{"retry-after": "2026-11-22T21:28:24.215Z"})
    assert py.retry_at_ms == 1795382904215 and not py.no_retry
    ts = respond(500, cap.TS_NON_RETRIABLE, **{"Retry-After": "90", "x-inngest-no-retry": "false"})
    assert ts.retry_at_ms == NOW + 90_000
    assert respond(500, cap.PY_FN_ERROR, **{"retry-after": "whenever"}).retry_at_ms is None


@pytest.mark.parametrize(
    ("status", "body", "what"),
    [
        (200, "{not json", "200 body: invalid JSON"),
        (206, "{not json", "206 body: invalid JSON"),
        (206, "", "206 body: empty"),
        (206, "5", "206 body: must be an array of opcodes"),
        (206, "[1]", "206 ops[0]: must be an object"),
        (206, '[{"op": "StepRun"}]', "206 ops[0].id: is required"),
        (206, '[{"id": "x", "op": ""}]', "206 ops[0].op: must be a non-empty string"),
        (206, '[{"id": "x", "op": "StepRun", "opts": [1]}]', "206 ops[0].opts: must be an object"),
    ],
)
def test_malformed_success_is_a_retriable_error(status, body, what):
    result = respond(status, body, **{"x-inngest-no-retry": "true"})
    assert result.kind == "error" and result.no_retry is False and result.status == status
    assert result.error["name"] == "MalformedResponse"
    assert result.error["message"].startswith(what), result.error["message"]


# -- responses: streaming (§12) ---------------------------------------------------------------


def envelope(status: int, body: object, headers: dict | None = None, encode: bool = True, **extra) -> bytes:
    inner = json.dumps(body) if encode else body
    env = {"status": status, "headers": headers or {}, "body": inner, **extra}
    return b"   " + b" " * 10 + json.dumps(env).encode()


def test_stream_with_ops():
    body = envelope(206, json.loads(cap.PY_STEP_RUN), {"x-inngest-req-version": "2"})
    result = respond(201, body)
    assert result.kind == "ops" and result.status == 206 and result.req_version == 2
    assert result.ops[0].data == {"a": 1}


def test_stream_complete_and_string_results():
    assert respond(201, envelope(200, {"done": True})).output == {"done": True}
    assert respond(201, envelope(200, "hello")).output == "hello"
    assert respond(201, envelope(200, "hello", encode=False)).output == "hello"  # Go's raw form
    assert respond(201, envelope(200, {"raw": 1}, encode=False)).output == {"raw": 1}
    assert respond(201, envelope(200, None, encode=False)).output is None


def test_stream_error_keeps_inner_headers():
    body = envelope(500, cap.PY_NON_RETRIABLE, {"X-Inngest-No-Retry": "true", "Retry-After": "90"})
    result = respond(201, body)
    assert result.kind == "error" and result.status == 500 and result.no_retry
    assert result.retry_at_ms == NOW + 90_000 and result.error["name"] == "NonRetriableError"
    go = respond(201, envelope(500, cap.PY_FN_ERROR, noRetry=True))
    assert go.no_retry


@pytest.mark.parametrize(
    ("body", "what"),
    [(b"     ", "stream ended"), (b"  {oops", "stream envelope: invalid JSON"), (b" []", "stream envelope: must be an object"),
     (b' {"body": "null"}', "stream envelope.status"), (envelope(201, {}), "stream envelope: nested 201")],
)
def test_stream_malformed(body, what):
    result = respond(201, body)
    assert result.kind == "error" and not result.no_retry and result.error["name"] == "MalformedResponse"
    assert result.error["message"].startswith(what), result.error["message"]


def test_header_lookup_is_case_insensitive():
    result = parse_call_response(500, {"X-INNGEST-NO-RETRY": "TRUE", "X-Inngest-Req-Version": "2"}, b"{}", NOW)
    assert result.no_retry and result.req_version == 2
