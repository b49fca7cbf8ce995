"""The invoke caller's exact requests (botocore's Stubber: what is sent to Lambda's Invoke) and
how Lambda's failures map onto the HTTP path's retry rules, each cause named."""

from __future__ import annotations

import base64
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from stepline.aws.lambda_invoke import MAX_INVOKE_PAYLOAD_BYTES, LambdaInvokeCaller
from stepline.engine.app_targets import (
    H_EXECUTED_VERSION,
    H_PIN_GONE,
    PIN_PARAM,
    FunctionArn,
    RoutingCaller,
    TargetKind,
    target_of,
)
from stepline.engine.http import PooledHttpCaller
from stepline.protocol.calls import parse_call_response
from stepline.protocol.urls import set_query_param

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:orders-app:live"
URL = FunctionArn.parse(ARN).serve_url + "?fnId=orders-app-ship&stepId=step"


def _payload(obj) -> StreamingBody:
    raw = json.dumps(obj).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def lam():
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_an_arn_becomes_an_invoke_url_that_names_it_and_never_resolves():
    assert URL.startswith(
        "https://orders-app.lambda.invalid/arn:aws:lambda:eu-west-1:123456789012:function:orders-app:live?"
    )
    target = target_of(URL)
    assert target.kind is TargetKind.LAMBDA_INVOKE and str(target.arn) == ARN and target.region == "eu-west-1"
    assert target_of("https://abc123def.lambda-url.us-east-2.on.aws/").kind is TargetKind.LAMBDA_URL
    assert target_of("https://abc123def.lambda-url.us-east-2.on.aws/").region == "us-east-2"
    assert target_of("https://example.com/api/inngest").kind is TargetKind.HTTP
    with pytest.raises(ValueError, match="not a Lambda function ARN"):
        FunctionArn.parse("arn:aws:s3:::bucket")


def _capture(client) -> list[dict]:
    """The parameters of every Invoke the client is asked to make."""
    seen: list[dict] = []
    client.meta.events.register("provide-client-params.lambda.Invoke", lambda params, **_: seen.append(dict(params)))
    return seen


def test_a_call_is_one_request_response_invoke_of_the_qualified_arn_carrying_a_function_url_event(lam):
    client, stubber = lam
    seen = _capture(client)
    body = b'{"event":{"name":"order/placed"}}'
    headers = {"Content-Type": "application/json", "X-Inngest-Signature": "t=1&s=abc"}
    answer = {"statusCode": 206, "headers": {"Content-Type": "application/json"}, "body": "[]"}
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "ExecutedVersion": "7", "Payload": _payload(answer)},
        expected_params={"FunctionName": ARN, "InvocationType": "RequestResponse", "Payload": ANY},
    )
    resp = LambdaInvokeCaller(lambda region: client).post(URL, body, headers, 30)
    assert resp.status == 206 and resp.body == b"[]"
    assert resp.headers[H_EXECUTED_VERSION] == "7"
    # The event the function receives: what a function URL would deliver for the same POST.
    event = json.loads(seen[0]["Payload"])
    assert event["version"] == "2.0" and event["requestContext"]["http"]["method"] == "POST"
    assert event["rawPath"] == "/" + ARN and event["rawQueryString"] == "fnId=orders-app-ship&stepId=step"
    assert event["headers"]["host"] == "orders-app.lambda.invalid"
    assert event["headers"]["x-inngest-signature"] == "t=1&s=abc"  # the Inngest signature rides along
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == body


def test_a_pinned_call_invokes_that_version_and_the_app_never_sees_the_pin(lam):
    client, stubber = lam
    seen = _capture(client)
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "ExecutedVersion": "3", "Payload": _payload({"statusCode": 200, "body": "1"})},
        expected_params={
            "FunctionName": ARN.replace(":live", ":3"),
            "InvocationType": "RequestResponse",
            "Payload": ANY,
        },
    )
    resp = LambdaInvokeCaller(lambda region: client).post(set_query_param(URL, PIN_PARAM, "3"), b"{}", {}, 30)
    assert resp.status == 200 and resp.headers[H_EXECUTED_VERSION] == "3" and H_PIN_GONE not in resp.headers
    assert PIN_PARAM not in json.loads(seen[0]["Payload"])["rawQueryString"]


def test_a_pinned_version_that_is_gone_falls_back_to_the_registered_arn_and_says_so(lam):
    client, stubber = lam
    stubber.add_client_error(
        "invoke",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={
            "FunctionName": ARN.replace(":live", ":3"),
            "InvocationType": "RequestResponse",
            "Payload": ANY,
        },
    )
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "ExecutedVersion": "4", "Payload": _payload({"statusCode": 200, "body": "1"})},
        expected_params={"FunctionName": ARN, "InvocationType": "RequestResponse", "Payload": ANY},
    )
    resp = LambdaInvokeCaller(lambda region: client).post(set_query_param(URL, PIN_PARAM, "3"), b"{}", {}, 30)
    assert resp.status == 200 and resp.headers[H_EXECUTED_VERSION] == "4" and resp.headers[H_PIN_GONE] == "3"


@pytest.mark.parametrize(
    ("code", "http_status", "status", "name"),
    [
        ("TooManyRequestsException", 429, 429, "LambdaThrottled"),
        ("RequestTooLargeException", 413, 413, "LambdaPayloadTooLarge"),
        ("AccessDeniedException", 403, 403, "LambdaInvokeDenied"),
        ("ResourceNotFoundException", 404, 404, "LambdaFunctionNotFound"),
        ("ServiceException", 500, 500, "LambdaError"),
    ],
)
def test_lambdas_refusals_map_to_the_status_a_function_url_gives_with_the_cause_named(
    lam, code, http_status, status, name
):
    client, stubber = lam
    stubber.add_client_error("invoke", service_error_code=code, service_message="nope", http_status_code=http_status)
    resp = LambdaInvokeCaller(lambda region: client).post(URL, b"{}", {}, 30)
    assert resp.status == status
    result = parse_call_response(resp.status, resp.headers, resp.body, 0)
    # The same rules as over HTTP: only a 400 is final; everything here is retried.
    assert result.kind == "error" and result.no_retry is False
    assert result.error["name"] == name and code in result.error["message"] and ARN in result.error["message"]


def test_a_function_error_is_a_502_naming_the_error_type_and_message(lam):
    client, stubber = lam
    crash = {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: x Error: Runtime exited with error: signal: killed",
    }
    stubber.add_response(
        "invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "7", "Payload": _payload(crash)}
    )
    resp = LambdaInvokeCaller(lambda region: client).post(URL, b"{}", {}, 30)
    result = parse_call_response(resp.status, resp.headers, resp.body, 0)
    assert resp.status == 502 and result.no_retry is False
    assert result.error["name"] == "LambdaFunctionError"
    assert "Runtime.ExitError" in result.error["message"] and "signal: killed" in result.error["message"]


def test_a_request_over_six_megabytes_is_refused_without_calling_lambda(lam):
    client, stubber = lam  # no response queued: any Invoke would fail the Stubber
    resp = LambdaInvokeCaller(lambda region: client).post(URL, b"x" * MAX_INVOKE_PAYLOAD_BYTES, {}, 30)
    assert resp.status == 413 and json.loads(resp.body)["name"] == "LambdaPayloadTooLarge"


def test_a_plain_payload_is_a_200_whose_body_is_the_payload_as_a_function_url_reads_it(lam):
    client, stubber = lam
    stubber.add_response("invoke", {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": _payload({"ok": 1})})
    resp = LambdaInvokeCaller(lambda region: client).post(URL, b"{}", {}, 30)
    assert resp.status == 200 and json.loads(resp.body) == {"ok": 1}


def test_the_router_sends_each_kind_to_its_adapter_and_plain_urls_over_http(lam):
    client, stubber = lam
    stubber.add_response(
        "invoke", {"StatusCode": 200, "ExecutedVersion": "1", "Payload": _payload({"statusCode": 204})}
    )
    router = RoutingCaller(PooledHttpCaller(), lambda_invoke=LambdaInvokeCaller(lambda region: client))
    assert router.post(URL, b"{}", {}, 30).status == 204
    assert router.private_sender("https://example.com/api/inngest") is None
    assert router.private_sender(URL) is not None
