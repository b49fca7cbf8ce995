"""stepline:webhooks: the deployment's sources, refused when they cannot be used, and in the
template as the secret each gets, the API's environment and the API's grant (deployed into moto
in test_deploy_moto.py)."""

from __future__ import annotations

import json

import pytest

from infra.config import StackConfig

CEL = '{"name": "deploy/check", "data": event.body}'


@pytest.mark.parametrize(
    ("webhooks", "says"),
    [
        ([{"source": "s", "provider": "stripe", "secret": "whsec_x"}], "webhooks[0].secret: never in the stack"),
        ([{"source": "s", "provider": "stripe", "secret_id": "x"}], "webhooks[0].secret_id: never in the stack"),
        ([{"source": "s", "provider": "paypal"}], "webhooks[0] (s): provider:"),
        ([{"source": "s", "provider": "github", "transform": {"cel": "event.body.x =="}}], "transform.cel:"),
        ("[not json", "expected a JSON list"),
        ([{"source": "s", "provider": "github", "transform": {"cel": "1 + " * 500 + "1"}}], "bytes of configuration"),
    ],
)
def test_sources_that_cannot_be_deployed_are_refused_naming_the_setting(webhooks, says):
    with pytest.raises(ValueError) as caught:
        StackConfig.load({"stepline:webhooks": webhooks}, {})
    assert "stepline:webhooks" in str(caught.value) and says in str(caught.value), str(caught.value)


def test_sources_come_from_cdk_json_or_the_environment_with_their_secret_names():
    config = StackConfig.load({"stepline:stackName": "Shop"}, {"STEPLINE_CDK_WEBHOOKS": json.dumps(
        [{"source": "gh", "provider": "github", "transform": {"cel": CEL}}])})  # fmt: skip
    settings = config.runtime_settings()
    assert settings["webhook_secret_prefix"] == "Shop/webhooks/"
    assert json.loads(settings["webhook_sources"])[0]["secret_id"] == "Shop/webhooks/gh"
    assert StackConfig.load({}, {}).runtime_settings()["webhook_sources"] == ""


def test_the_template_makes_each_sources_secret_and_lets_only_the_api_read_them(protected):
    secrets = {r["Properties"]["Name"]: r for r in protected.resources("AWS::SecretsManager::Secret").values()}
    billing = secrets["Stepline/webhooks/billing"]["Properties"]
    assert "SecretString" not in billing and billing["GenerateSecretString"]["GenerateStringKey"] == "secret"
    functions = protected.resources("AWS::Lambda::Function")
    readers = set()
    for fn in functions.values():
        env = fn["Properties"]["Environment"]["Variables"]
        role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        for policy in protected.resources("AWS::IAM::Policy").values():
            if {"Ref": role} not in policy["Properties"]["Roles"]:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "secret:Stepline/webhooks/*" in json.dumps(statement.get("Resource")):
                    assert statement["Action"] == "secretsmanager:GetSecretValue"
                    readers.add(fn["Properties"]["Handler"])
        if fn["Properties"]["Handler"] == "stepline.handlers.api.handler":
            assert env["STEPLINE_WEBHOOK_SECRET_PREFIX"] == "Stepline/webhooks/"
            assert json.loads(env["STEPLINE_WEBHOOK_SOURCES"])[0]["source"] == "billing"
        else:
            assert env["STEPLINE_WEBHOOK_SOURCES"] == env["STEPLINE_WEBHOOK_SECRET_PREFIX"] == ""
    assert readers == {"stepline.handlers.api.handler"}
