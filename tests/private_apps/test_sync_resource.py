"""The deploy-time sync (stepline.handlers.sync_resource), as CloudFormation drives it: the event
it sends, the answer PUT to its pre-signed URL (a real HTTP server here), a sync through
lambda:Invoke into the app's own handler, and a failure that fails the deploy naming why."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stepline import Client, Context, lambda_handler
from stepline.aws.lambda_invoke import LambdaInvokeCaller
from stepline.engine.app_targets import RoutingCaller
from stepline.engine.http import PooledHttpCaller
from stepline.handlers.sync_resource import handle
from stepline.settings import Settings
from tests.e2e.conftest import start_runtime
from tests.private_apps.lambda_service import LambdaService, arn


class CloudFormation:
    """Where the answers go: the PUTs to the ResponseURL, as received."""

    def __init__(self) -> None:
        answers = self.answers = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answers.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cfn-response?X-Amz-Signature=abc"

    def event(self, request_type: str, target: str) -> dict:
        return {
            "RequestType": request_type,
            "ResponseURL": self.url,
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/Stepline/1",
            "RequestId": "req-1",
            "LogicalResourceId": "OrdersSync",
            "ResourceType": "Custom::SteplineAppSync",
            "ResourceProperties": {"Target": target, "Version": "4"},
        }


@pytest.fixture
def cfn():
    cloudformation = CloudFormation()
    yield cloudformation
    cloudformation.server.shutdown()
    cloudformation.server.server_close()


@pytest.fixture
def lambdas():
    return LambdaService()


@pytest.fixture
def runtime(tmp_path, lambdas):
    caller = RoutingCaller(PooledHttpCaller(), lambda_invoke=LambdaInvokeCaller(lambdas.clients))
    rt = start_runtime("sqlite", tmp_path, [], settings=Settings(mode="dev"), caller=caller)
    try:
        yield rt
    finally:
        rt.stop()


def test_a_create_syncs_the_app_through_invoke_and_reports_success(cfn, runtime, lambdas):
    client = Client("billing-app", dev=True, base_url=runtime.url)

    @client.function("invoice", trigger="invoice/due", concurrency=5)
    def invoice(ctx: Context) -> str:
        return ctx.step.run("send", lambda: "sent")

    lambdas.publish("billing-app", lambda_handler(client))
    answer = handle(cfn.event("Create", arn("billing-app", "live")), None, runtime.engine, interval_s=0.05)
    assert cfn.answers == [answer]
    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["AppIds"] == "billing-app"
    assert (answer["RequestId"], answer["LogicalResourceId"]) == ("req-1", "OrdersSync")
    assert runtime.backend.store.get_function("billing-app-invoice") is not None


def test_a_sync_that_fails_fails_the_deploy_with_the_reason(cfn, runtime, lambdas):
    answer = handle(cfn.event("Update", arn("never-deployed", "live")), None, runtime.engine, interval_s=0.05)
    assert cfn.answers == [answer]
    assert answer["Status"] == "FAILED"
    assert "LambdaFunctionNotFound" in answer["Reason"] and "never-deployed" in answer["Reason"]


def test_a_delete_needs_no_sync_and_no_engine(cfn):
    def no_engine():
        raise AssertionError("a delete builds no engine")

    event = {**cfn.event("Delete", arn("gone", "live")), "PhysicalResourceId": "sync:x"}
    answer = handle(event, None, no_engine)
    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == "sync:x"
