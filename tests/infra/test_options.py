"""Every setting that protects the account, as the synthesized template carries it: the default
template (tests/infra/test_template.py covers the rest of it), a variant with an existing KMS key
and every limit moved, and the data options on (a key made by the stack, a retention, a shorter
point-in-time recovery window)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import StackConfig
from infra.encryption import ADMIN_ACTIONS, DEPLOY_ACTIONS, USE_ACTIONS
from infra.state import FLOW_BUFFER_DAYS
from stepline.settings import Settings
from tests.infra.conftest import EXISTING_KEY

API_HANDLER = "stepline.handlers.api.handler"
EXECUTOR_HANDLER = "stepline.handlers.executor.handler"
ENCRYPTABLE = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket", "AWS::Logs::LogGroup")


def functions(synth) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["Handler"]: r["Properties"] for r in synth.resources("AWS::Lambda::Function").values()}


def role_id_of(synth, handler: str) -> str:
    return functions(synth)[handler]["Role"]["Fn::GetAtt"][0]


def statements_of(synth, role_id: str) -> list[dict[str, Any]]:
    return [
        s
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def key_of(props: dict[str, Any], resource_type: str) -> Any:
    """The KMS key a resource's properties name, None when it names none."""
    if resource_type == "AWS::DynamoDB::Table":
        sse = props.get("SSESpecification", {})
        return sse.get("KMSMasterKeyId") if sse.get("SSEEnabled") else None
    if resource_type == "AWS::SQS::Queue":
        return props.get("KmsMasterKeyId")
    if resource_type == "AWS::S3::Bucket":
        default = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        return default.get("KMSMasterKeyID")
    return props.get("KmsKeyId")


def test_by_default_everything_uses_aws_managed_encryption(synthesized):
    assert synthesized.resources("AWS::KMS::Key") == {}
    for resource_type in ENCRYPTABLE:
        for logical_id, resource in synthesized.resources(resource_type).items():
            assert key_of(resource["Properties"], resource_type) is None, logical_id
    for queue in synthesized.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


# -- the key the stack makes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def key(protected) -> tuple[str, dict[str, Any]]:
    return protected.one("AWS::KMS::Key")


def test_a_created_key_encrypts_the_table_queues_bucket_secrets_and_logs(protected, key):
    key_id, resource = key
    assert resource["Properties"]["EnableKeyRotation"] is True
    arn = {"Fn::GetAtt": [key_id, "Arn"]}
    for resource_type in ENCRYPTABLE:
        found = protected.resources(resource_type)
        assert found, resource_type
        for logical_id, r in found.items():
            assert key_of(r["Properties"], resource_type) == arn, logical_id
    secrets = protected.resources("AWS::SecretsManager::Secret")
    # The three keys' and the webhook source's (stepline:webhooks).
    assert len(secrets) == 4 and all(s["Properties"]["KmsKeyId"] == arn for s in secrets.values())
    (table,) = protected.resources("AWS::DynamoDB::Table").values()
    assert table["Properties"]["SSESpecification"]["SSEType"] == "KMS"
    (bucket,) = protected.resources("AWS::S3::Bucket").values()
    rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is True  # one KMS request per bucket key, not per object
    for queue in protected.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsDataKeyReusePeriodSeconds"] == 300
    (alias,) = protected.resources("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/Stepline"


def test_the_key_policy_names_exactly_the_roles_that_use_it(protected, key):
    _, resource = key
    by_sid = {s.get("Sid"): s for s in resource["Properties"]["KeyPolicy"]["Statement"]}
    assert set(by_sid) == {
        "AccountAdministersNotUses", "StackRolesThroughTheirServices", "CloudWatchLogsForThisStack",
        "DeployingTheTableAndSecrets",
    }
    # Administrators manage the key; none of the management actions uses it.
    admin = by_sid["AccountAdministersNotUses"]
    assert sorted(admin["Action"]) == sorted(ADMIN_ACTIONS)
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"):
        assert not any(_matches(pattern, action) for pattern in admin["Action"]), action
    # The API, the executor and Scheduler's delivery role, and no one else, through the services
    # that hold the stack's data.
    roles = by_sid["StackRolesThroughTheirServices"]
    principals = {p["Fn::GetAtt"][0] for p in roles["Principal"]["AWS"]}
    scheduler_role = next(
        k for k, r in protected.resources("AWS::IAM::Role").items()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    )
    assert principals == {role_id_of(protected, API_HANDLER), role_id_of(protected, EXECUTOR_HANDLER), scheduler_role}
    assert sorted(roles["Action"]) == sorted(USE_ACTIONS)
    via = json.dumps(roles["Condition"]["StringEquals"]["kms:ViaService"])
    assert all(f'"{service}.' in via for service in ("dynamodb", "sqs", "s3", "secretsmanager"))
    # CloudWatch Logs, for this stack's log groups only.
    logs = by_sid["CloudWatchLogsForThisStack"]
    assert json.dumps(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]).endswith(
        ':log-group:/stepline/Stepline/*"]]}'
    )
    # Deploying: the account's principals, through DynamoDB and Secrets Manager only.
    deploy = by_sid["DeployingTheTableAndSecrets"]
    assert sorted(deploy["Action"]) == sorted(DEPLOY_ACTIONS)
    assert deploy["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    assert len(deploy["Condition"]["StringEquals"]["kms:ViaService"]) == 2
    # The roles' own policies need no key statement of their own beyond what CDK's SQS event
    # source adds, and that one names the key.
    for handler in (API_HANDLER, EXECUTOR_HANDLER):
        for statement in statements_of(protected, role_id_of(protected, handler)):
            if any(a.startswith("kms:") for a in _actions(statement)):
                assert statement["Resource"] == {"Fn::GetAtt": [key[0], "Arn"]}


def test_retention_expires_payloads_and_reaches_the_runtime(protected):
    (bucket,) = protected.resources("AWS::S3::Bucket").values()
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["events"]["Prefix"] == "events/" and rules["events"]["ExpirationInDays"] == 31
    assert rules["flow"]["Prefix"] == "flow/" and rules["flow"]["ExpirationInDays"] == 30 + FLOW_BUFFER_DAYS
    assert "ExpirationInDays" not in rules["payloads"]  # runs' objects go with their runs, erased
    for props in functions(protected).values():
        assert props["Environment"]["Variables"]["STEPLINE_RETENTION_DAYS"] == "30"
    (table,) = protected.resources("AWS::DynamoDB::Table").values()
    # The window erased data stays restorable in, stated next to the retention (docs/deploy.md).
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 7,
    }
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


# -- an existing key and every limit moved ------------------------------------------------------


def test_an_existing_key_is_used_and_granted_in_the_roles_policies(variant):
    assert variant.resources("AWS::KMS::Key") == {}
    for resource_type in ENCRYPTABLE:
        for logical_id, r in variant.resources(resource_type).items():
            assert key_of(r["Properties"], resource_type) == EXISTING_KEY, logical_id
    scheduler_role = next(
        k for k, r in variant.resources("AWS::IAM::Role").items()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    )
    for role_id in (role_id_of(variant, API_HANDLER), role_id_of(variant, EXECUTOR_HANDLER), scheduler_role):
        granted = [s for s in statements_of(variant, role_id) if set(USE_ACTIONS) <= set(_actions(s))]
        assert len(granted) == 1, role_id
        assert granted[0]["Resource"] == EXISTING_KEY
        assert "kms:ViaService" in granted[0]["Condition"]["StringEquals"]


def test_limits_throttles_and_concurrency_follow_the_configuration(variant):
    fns = functions(variant)
    assert "ReservedConcurrentExecutions" not in fns[API_HANDLER]  # 0: nothing reserved
    (stage,) = variant.resources("AWS::ApiGatewayV2::Stage").values()
    settings = {k: (v["ThrottlingRateLimit"], v["ThrottlingBurstLimit"]) for k, v in stage["Properties"]["RouteSettings"].items()}
    assert settings["POST /e/{key}"] == (50, 60) and settings["GET /v1/{proxy+}"] == (70, 80)
    assert settings["POST /v1/{proxy+}"] == (3, 4) and settings["GET /v1/dead-letters"] == (3, 4)
    for props in fns.values():
        env = props["Environment"]["Variables"]
        runtime = Settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
        assert (runtime.max_runs_per_request, runtime.max_ops_per_reply, runtime.max_steps_per_run) == (100, 50, 200)
        assert runtime.steps_limits() == {"billing-invoice": 5000}
        assert runtime.allowed_app_origins == ["https://apps.example.com", "http://10.0.0.5:8080"]
    api_env = fns[API_HANDLER]["Environment"]["Variables"]
    assert api_env["STEPLINE_OPERATOR_KEY_SECRET_ID"] == "shared/stepline-operator"
    assert "STEPLINE_OPERATOR_KEY_SECRET_ID" not in fns[EXECUTOR_HANDLER]["Environment"]["Variables"]
    (table,) = variant.resources("AWS::DynamoDB::Table").values()
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    assert variant.template["Outputs"]["OperatorKeySecretName"]["Value"] == "shared/stepline-operator"
    groups = sorted(g["Properties"]["Name"] for g in variant.resources("AWS::Scheduler::ScheduleGroup").values())
    assert groups == ["SteplineDev-sweep", "SteplineDev-timers", "SteplineDev-timers-cron"]


@pytest.mark.parametrize(
    "context, message",
    [
        ({"stepline:kmsKey": "alias/mine"}, "stepline:kmsKey"),
        ({"stepline:kmsKey": "arn:aws:kms:us-east-1:12:key/x"}, "KMS key ARN"),
        ({"stepline:retentionDays": "-1"}, "stepline:retentionDays"),
        ({"stepline:pointInTimeRecoveryDays": "36"}, "stepline:pointInTimeRecoveryDays"),
        ({"stepline:maxStepsByFunction": "fn"}, "<function id>=<steps>"),
        ({"stepline:allowedAppOrigins": "https://a.example.com/api/inngest"}, "stepline:allowedAppOrigins"),
        ({"stepline:allowedAppOrigins": "apps.example.com"}, "http\\(s\\)://host\\[:port\\]"),
        ({"stepline:operatorRateLimit": "0"}, "stepline:operatorRateLimit"),
        ({"stepline:apiReservedConcurrency": "-5"}, "stepline:apiReservedConcurrency"),
    ],
)
def test_bad_protection_settings_are_refused_naming_the_setting(context, message):
    with pytest.raises(ValueError, match=message):
        StackConfig.load(context, {})


def test_every_runtime_setting_the_stack_decides_is_a_runtime_setting():
    assert set(StackConfig().runtime_settings()) <= set(Settings.model_fields)


def _actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, action: str) -> bool:
    return action == pattern or (pattern.endswith("*") and action.startswith(pattern[:-1]))


@pytest.mark.parametrize("which", ["synthesized", "variant", "protected"])
def test_every_iam_statement_of_every_template_names_its_resources(request, which):
    """No wildcard action, and no "*" resource, alone or inside a list, but for the actions IAM
    accepts on nothing else (X-Ray's, and listing a group's schedules); no managed policies."""
    synth = request.getfixturevalue(which)
    any_resource_only = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "scheduler:ListSchedules"}
    statements = [
        s for p in synth.resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert len(statements) > 10
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert not [a for a in _actions(statement) if "*" in a], statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:
            assert resources == ["*"] and set(_actions(statement)) <= any_resource_only, statement
    for role in synth.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
