"""End to end, an app reached only through lambda:Invoke: a real `stepline dev` runtime whose
executor invokes the app's own ``lambda_handler`` in-process, behind the Lambda client port it
uses on AWS (tests/private_apps/lambda_service.py). Synced by ARN, with no URL to serve it."""

from __future__ import annotations

from collections import Counter

import pytest

from stepline import Client, Context, lambda_handler
from stepline.aws.lambda_invoke import LambdaInvokeCaller
from stepline.engine.app_targets import FunctionArn, RoutingCaller
from stepline.engine.http import PooledHttpCaller
from stepline.settings import Settings
from tests.e2e.conftest import Stepline, http, start_runtime
from tests.private_apps.lambda_service import LambdaService, arn

APP = "orders-app"


def order_app(base_url: str, version: str, ran: Counter) -> object:
    """The user's app at ``version``: each step counts its runs under the version it ran on."""
    client = Client(APP, dev=True, base_url=base_url, app_version=version)

    @client.function("ship", trigger="order/placed", retries=2, concurrency=10)
    def ship(ctx: Context) -> dict:
        first = ctx.step.run("reserve", lambda: ran.update([f"{version}/reserve/{ctx.event.data['k']}"]) or version)
        ctx.step.sleep("settle", "1s")
        second = ctx.step.run("charge", lambda: ran.update([f"{version}/charge/{ctx.event.data['k']}"]) or version)
        if ctx.event.data.get("crash"):
            raise SystemExit("the process died")  # not an exception the SDK answers for
        return {"reserved_on": first, "charged_on": second}

    return lambda_handler(client)


@pytest.fixture
def lambdas():
    return LambdaService()


@pytest.fixture
def runtime(tmp_path, lambdas):
    caller = RoutingCaller(PooledHttpCaller(), lambda_invoke=LambdaInvokeCaller(lambdas.clients))
    settings = Settings(mode="dev", retry_base_ms=100, retry_cap_ms=300)
    rt = start_runtime("sqlite", tmp_path, [], settings=settings, caller=caller)
    try:
        yield rt
    finally:
        rt.stop()


def test_an_app_synced_by_arn_runs_through_invoke_each_step_once(runtime, lambdas):
    ran: Counter = Counter()
    lambdas.publish(APP, order_app(runtime.url, "v1", ran))
    code, reply = http("POST", f"{runtime.url}/v1/apps/sync", {"url": arn(APP, "live")})
    assert code == 200, reply
    reply = reply["data"]
    assert reply["url"] == FunctionArn.parse(arn(APP, "live")).serve_url
    assert [a["app_id"] for a in reply["apps"]] == [APP]
    stepline = Stepline(runtime)
    [event_id] = stepline.send({"name": "order/placed", "data": {"k": "a"}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"reserved_on": "v1", "charged_on": "v1"}
    assert ran == Counter({"v1/reserve/a": 1, "v1/charge/a": 1})
    # Every call (the sync's PUT included) went to the alias ARN, as a RequestResponse invoke.
    assert {i.function_name for i in lambdas.invoked} >= {arn(APP, "live")}
    assert {i.invocation_type for i in lambdas.invoked} == {"RequestResponse"}
    assert lambdas.invoked[0].event["requestContext"]["http"]["method"] == "PUT"


def test_a_function_error_is_retried_like_an_http_failure_and_the_run_names_it(runtime, lambdas):
    ran: Counter = Counter()
    lambdas.publish(APP, order_app(runtime.url, "v1", ran))
    assert http("POST", f"{runtime.url}/v1/apps/sync", {"url": arn(APP, "live")})[0] == 200
    stepline = Stepline(runtime)
    [event_id] = stepline.send({"name": "order/placed", "data": {"k": "b", "crash": True}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Failed", run
    assert run["error"]["name"] == "LambdaFunctionError"
    assert "SystemExit" in run["error"]["message"] and "the process died" in run["error"]["message"]
    # retries=2: the final call was made three times, each step before it ran once.
    crashing_calls = [i for i in lambdas.invoked if i.event["requestContext"]["http"]["method"] == "POST"]
    assert ran == Counter({"v1/reserve/b": 1, "v1/charge/b": 1}) and len(crashing_calls) >= 3


def test_syncing_an_arn_that_is_not_there_fails_naming_the_cause(runtime, lambdas):
    code, reply = http("POST", f"{runtime.url}/v1/apps/sync", {"url": arn("no-such-app")})
    assert code == 502 and "LambdaFunctionNotFound" in reply["error"] and "404" in reply["error"]
    code, reply = http("POST", f"{runtime.url}/v1/apps/sync", {"url": "arn:aws:s3:::bucket"})
    assert code == 400 and "not a Lambda function ARN" in reply["error"]


def test_a_runtime_without_aws_adapters_says_it_cannot_invoke_a_function(tmp_path):
    rt = start_runtime("sqlite", tmp_path, [], settings=Settings(mode="dev"))
    try:
        code, reply = http("POST", f"{rt.url}/v1/apps/sync", {"url": arn(APP, "live")})
        assert code == 400 and "is a Lambda function" in reply["error"] and "serve URL" in reply["error"]
    finally:
        rt.stop()


def test_an_invoke_url_without_a_function_arn_is_refused_naming_it(runtime):
    code, reply = http("POST", f"{runtime.url}/v1/apps/sync", {"url": "https://x.lambda.invalid/not-an-arn"})
    assert code == 400 and "not a Lambda function ARN" in reply["error"]


def test_an_unqualified_arn_runs_latest_and_is_never_pinned(runtime, lambdas):
    ran: Counter = Counter()
    lambdas.publish(APP, order_app(runtime.url, "v1", ran))
    code, reply = http("POST", f"{runtime.url}/v1/apps/sync", {"url": arn(APP)})
    assert code == 200, reply
    stepline = Stepline(runtime)
    [event_id] = stepline.send({"name": "order/placed", "data": {"k": "u"}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed" and "app_version" not in run, run
    calls = [i for i in lambdas.invoked if i.event["requestContext"]["http"]["method"] == "POST"]
    assert calls and {i.function_name for i in calls} == {arn(APP)} and {i.executed_version for i in calls} == {"$LATEST"}
