"""Function-level failures: the status and headers the executor decides on (docs/protocol.md §6.1, §8)."""

from __future__ import annotations

import datetime
import json

from stepline import Context, NonRetriableError, RetryAfterError, StepError
from stepline.protocol.calls import memo_error
from stepline.protocol.durations import parse_retry_after_ms
from tests.sdk.conftest import call, h, make_client, parsed

NOW_MS = 1_700_000_000_000


def _fn(client, raise_it):
    @client.function("failing", trigger="t/fail")
    def failing(ctx: Context) -> None:
        raise_it(ctx)

    return failing


def test_an_exception_is_a_retriable_500():
    client = make_client()
    fn = _fn(client, lambda ctx: (_ for _ in ()).throw(RuntimeError("function level boom")))
    response = call(client, fn)
    body = json.loads(response.body)
    assert response.status == 500 and "x-inngest-no-retry" not in response.headers
    assert (body["code"], body["name"], body["message"]) == ("unknown", "RuntimeError", "function level boom")
    result = parsed(response)
    assert result.kind == "error" and not result.no_retry


def test_non_retriable_error_says_no_retry():
    client = make_client()

    def refuse(ctx):
        raise NonRetriableError("do not retry me")

    response = call(client, _fn(client, refuse))
    assert response.status == 500 and response.headers["x-inngest-no-retry"] == "true"
    assert json.loads(response.body)["code"] == "non_retriable_error"
    assert parsed(response).no_retry


def test_non_retriable_error_inside_a_step_ends_the_run():
    client = make_client()

    @client.function("refusing-step", trigger="t/refuse")
    def refusing(ctx: Context) -> None:
        ctx.step.run("check", lambda: (_ for _ in ()).throw(NonRetriableError("card stolen")))

    response = call(client, refusing)
    assert response.status == 500 and response.headers["x-inngest-no-retry"] == "true"


def test_retry_after_a_duration_is_seconds_for_the_servers_clock():
    client = make_client()

    def later(ctx):
        raise RetryAfterError("later please", "90s")

    response = call(client, _fn(client, later))
    assert response.status == 500 and response.headers["retry-after"] == "90"
    assert "x-inngest-no-retry" not in response.headers
    assert json.loads(response.body)["code"] == "retry_after_error"
    assert parsed(response).retry_at_ms == NOW_MS + 90_000


def test_retry_after_an_instant_is_iso_utc():
    client = make_client()
    at = datetime.datetime(2030, 1, 2, 3, 4, 5, 250_000, tzinfo=datetime.timezone.utc)

    def later(ctx):
        raise RetryAfterError("at a time", at)

    response = call(client, _fn(client, later))
    assert response.headers["retry-after"] == "2030-01-02T03:04:05.250Z"
    assert parse_retry_after_ms(response.headers["retry-after"], 1_893_000_000_000) == 1_893_553_445_250


def test_an_uncaught_step_error_fails_without_retry():
    client = make_client()

    @client.function("uncaught", trigger="t/uncaught")
    def uncaught(ctx: Context) -> None:
        ctx.step.run("boom", lambda: 1)

    memo = memo_error({"name": "ValueError", "message": "child exploded", "stack": ""})
    response = call(client, uncaught, steps={h("boom"): memo})
    body = json.loads(response.body)
    assert response.status == 500 and response.headers["x-inngest-no-retry"] == "true"
    assert (body["code"], body["name"], body["message"]) == ("step_errored", "ValueError", "child exploded")


def test_step_error_is_catchable_as_an_exception():
    assert issubclass(StepError, Exception)


def test_an_unserializable_return_value_fails_without_retry():
    client = make_client()

    @client.function("bad-output", trigger="t/bad-output")
    def bad_output(ctx: Context) -> object:
        return object()

    response = call(client, bad_output)
    assert response.status == 500 and response.headers["x-inngest-no-retry"] == "true"
    assert json.loads(response.body)["code"] == "output_unserializable"


def test_unknown_function_and_missing_fn_id():
    from stepline.sdk.serve.handler import Handler, Request

    client = make_client()
    fn = _fn(client, lambda ctx: None)
    handler = Handler(client, [fn], framework="test")
    missing = handler.handle(Request("POST", "http://x/api/inngest?stepId=step", {}, b"{}"))
    assert missing.status == 500 and missing.json["code"] == "query_param_missing"
    unknown = handler.handle(Request("POST", "http://x/api/inngest?fnId=nope&stepId=step", {}, b"{}"))
    assert unknown.status == 500 and unknown.json["code"] == "function_not_found"
    bad = handler.handle(Request("POST", f"http://x/api/inngest?fnId={fn.composite_id}", {}, b'{"event": 1}'))
    assert bad.status == 500 and bad.json["code"] == "bad_request"
