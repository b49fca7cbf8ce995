"""The example stack (examples/lambda_stack.py): Stepline plus one app on its SDK, wired by the
app construct. What the template grants, configures and runs at deploy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.app_function import SYNC_HANDLER, AppAccess
from tests.infra.conftest import no_aws_calls

EXECUTOR_HANDLER = "stepline.handlers.executor.handler"
API_HANDLER = "stepline.handlers.api.handler"


class Example:
    def __init__(self, template: dict[str, Any], app_id: str) -> None:
        self.template = template
        self.app_id = app_id  # the app function's logical id

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def function_by_handler(self, handler: str) -> dict[str, Any]:
        [props] = [
            r["Properties"]
            for r in self.resources("AWS::Lambda::Function").values()
            if r["Properties"]["Handler"] == handler
        ]
        return props

    def statements(self, function_props: dict[str, Any]) -> list[dict[str, Any]]:
        role_id = function_props["Role"]["Fn::GetAtt"][0]
        out = []
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                out += policy["Properties"]["PolicyDocument"]["Statement"]
        return out

    def lambda_statements(self, function_props: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.statements(function_props) if any(a.startswith("lambda:") for a in _list(s["Action"]))]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _synth(tmp_path_factory, access: AppAccess, context: dict[str, str] | None = None) -> Example:
    from examples.lambda_stack import build_example

    calls: list[str] = []
    with no_aws_calls(calls):
        app, stack, orders = build_example(
            str(tmp_path_factory.mktemp(f"cdk.out.example.{access.value}")), access=access, context=context
        )
        template = app.synth().get_stack_artifact(stack.artifact_id).template
    assert calls == []
    child = orders.function.node.default_child
    return Example(template, stack.resolve(stack.get_logical_id(child)))


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Example:
    """Synthesized with cdk-nag on: an unacknowledged finding fails the synth."""
    return _synth(tmp_path_factory, AppAccess.INVOKE)


@pytest.fixture(scope="module")
def example_url(tmp_path_factory) -> Example:
    return _synth(tmp_path_factory, AppAccess.IAM_URL)


def test_with_a_key_the_stack_made_the_app_may_decrypt_the_key_secrets_through_secrets_manager(tmp_path_factory):
    # The key's policy names the roles it trusts (no IAM policy can grant it): the app's role must
    # be there, or the app cannot read its keys at start.
    example = _synth(tmp_path_factory, AppAccess.INVOKE, {"stepline:kmsKey": "create"})
    [key] = example.resources("AWS::KMS::Key").values()
    role_id = example.template["Resources"][example.app_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    app_statements = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"]
        if {"Fn::GetAtt": [role_id, "Arn"]} in _list(s.get("Principal", {}).get("AWS"))
    ]  # fmt: skip
    assert [s["Action"] for s in app_statements] == ["kms:Decrypt"]
    assert "secretsmanager." in json.dumps(app_statements[0]["Condition"])


def test_the_app_gets_the_api_url_and_secret_ids_never_a_key(example):
    env = example.template["Resources"][example.app_id]["Properties"]["Environment"]["Variables"]
    assert set(env) == {
        "STEPLINE_API_BASE_URL",
        "STEPLINE_EVENT_API_BASE_URL",
        "STEPLINE_SIGNING_KEY_SECRET_ID",
        "STEPLINE_EVENT_KEY_SECRET_ID",
    }
    assert env["STEPLINE_SIGNING_KEY_SECRET_ID"] == "Stepline/signing-key"
    assert env["STEPLINE_EVENT_KEY_SECRET_ID"] == "Stepline/event-keys"
    assert "execute-api" in json.dumps(env["STEPLINE_API_BASE_URL"])
    # No secret's value is referenced anywhere in the app's configuration.
    assert "SecretString" not in json.dumps(env) and "resolve:secretsmanager" not in json.dumps(env)


def test_the_app_may_read_exactly_the_signing_and_event_key_secrets(example):
    app = example.template["Resources"][example.app_id]["Properties"]
    reads = [s for s in example.statements(app) if "secretsmanager:GetSecretValue" in _list(s["Action"])]
    secrets = sorted(ref["Ref"] for s in reads for ref in _list(s["Resource"]))
    assert [r[: -len("ADF32206")] for r in secrets] == ["KeysEventKeys", "KeysSigningKey"], secrets
    assert not any(s["Resource"] == "*" for s in example.statements(app))


@pytest.mark.parametrize("handler", [EXECUTOR_HANDLER, API_HANDLER, SYNC_HANDLER])
def test_the_executor_api_and_sync_may_invoke_exactly_the_app_function_and_its_versions(example, handler):
    [statement] = example.lambda_statements(example.function_by_handler(handler))
    assert _list(statement["Action"]) == ["lambda:InvokeFunction"]
    arn = {"Fn::GetAtt": [example.app_id, "Arn"]}
    assert statement["Resource"] == [arn, {"Fn::Join": ["", [arn, ":*"]]}]


def test_the_sync_runs_on_every_new_version_against_the_alias(example):
    [(logical_id, resource)] = example.resources("Custom::SteplineAppSync").items()
    props = resource["Properties"]
    sync_fn = [
        k for k, v in example.resources("AWS::Lambda::Function").items() if v["Properties"]["Handler"] == SYNC_HANDLER
    ]
    assert props["ServiceToken"] == {"Fn::GetAtt": [sync_fn[0], "Arn"]}
    [(alias_id, alias)] = example.resources("AWS::Lambda::Alias").items()
    assert alias["Properties"]["Name"] == "live"
    assert props["Target"] == {"Ref": alias_id}  # the alias's ARN
    [(version_id, _)] = example.resources("AWS::Lambda::Version").items()
    assert props["Version"] == {"Fn::GetAtt": [version_id, "Version"]}
    # The sync waits for the app's configuration and grants and for the API it registers with.
    depends = resource.get("DependsOn", [])
    assert example.app_id in depends and any("Api" in d for d in depends)


def test_the_sync_lambda_signs_with_the_signing_key_and_reads_no_other_key(example):
    env = example.function_by_handler(SYNC_HANDLER)["Environment"]["Variables"]
    assert env["STEPLINE_SIGNING_KEY_SECRET_ID"] == "Stepline/signing-key"
    assert "STEPLINE_EVENT_KEYS_SECRET_ID" not in env and "STEPLINE_OPERATOR_KEY_SECRET_ID" not in env


def test_an_iam_url_app_gets_an_aws_iam_function_url_and_signed_call_grants_only(example_url):
    [url] = example_url.resources("AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    for handler in (EXECUTOR_HANDLER, API_HANDLER, SYNC_HANDLER):
        [statement] = example_url.lambda_statements(example_url.function_by_handler(handler))
        assert _list(statement["Action"]) == ["lambda:InvokeFunctionUrl"]
        assert statement["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    [sync] = example_url.resources("Custom::SteplineAppSync").values()
    assert "FunctionUrl" in json.dumps(sync["Properties"]["Target"])
    # No public function URL anywhere, and no permission for anyone else to call one.
    assert not [
        p
        for p in example_url.resources("AWS::Lambda::Permission").values()
        if p["Properties"].get("FunctionUrlAuthType") == "NONE"
    ]


OUTSIDE = "arn:aws:lambda:eu-west-1:123456789012:function:billing-app"


def test_apps_deployed_elsewhere_are_granted_by_their_arns_and_nothing_wider(tmp_path_factory):
    from tests.infra.conftest import synthesize

    synthesized = synthesize(tmp_path_factory.mktemp("cdk.out.app-functions"), {"stepline:appFunctions": OUTSIDE})
    example = Example(synthesized.template, "")
    for handler in (EXECUTOR_HANDLER, API_HANDLER):
        [statement] = example.lambda_statements(example.function_by_handler(handler))
        assert _list(statement["Action"]) == ["lambda:InvokeFunction"]
        assert statement["Resource"] == [OUTSIDE, f"{OUTSIDE}:*"]


@pytest.mark.parametrize(
    ("value", "says"),
    [("arn:aws:s3:::bucket", "not a Lambda function ARN"), (f"{OUTSIDE}:live", "unqualified ARN")],
)
def test_an_app_function_that_is_not_an_unqualified_function_arn_stops_the_synth(value, says):
    from infra.config import StackConfig

    with pytest.raises(ValueError, match=says):
        StackConfig.load({"stepline:appFunctions": value}, {})
