"""What the synthesized template holds: resources, their properties, IAM statements, and the
environment each Lambda gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.environment import Resources, deployed_settings
from infra.executor import executor_timeout_s
from stepline.aws.resources import (
    DEFAULT_MAX_RECEIVE_COUNT,
    MAX_MESSAGE_BYTES,
    max_receive_count,
    table_definition,
)
from stepline.engine.payload_policy import DEPLOYED_MAX_RUN_STATE_BYTES
from stepline.settings import ENV_PREFIX, Settings

API_HANDLER = "stepline.handlers.api.handler"
EXECUTOR_HANDLER = "stepline.handlers.executor.handler"


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return Template.from_json(synthesized.template)


def function(synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items():
        if resource["Properties"]["Handler"] == handler:
            return logical_id, resource["Properties"]
    raise AssertionError(f"no function with handler {handler}")


def role_statements(synthesized, function_props: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function_props["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def test_synth_makes_no_aws_calls_and_binds_no_account(synthesized):
    assert synthesized.aws_calls == []
    text = json.dumps(synthesized.template)
    assert "123456789012" not in text  # environment-agnostic: resolved at deploy time


def test_the_table_has_the_keys_index_and_ttl_the_adapters_use(synthesized):
    _, table = synthesized.one("AWS::DynamoDB::Table")
    props = table["Properties"]
    wanted = table_definition("any")
    assert props["KeySchema"] == wanted["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(wanted["AttributeDefinitions"], key=str)
    assert props["GlobalSecondaryIndexes"] == [
        {**index, "Projection": {**index["Projection"]}} for index in wanted["GlobalSecondaryIndexes"]
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 35}
    assert props["SSESpecification"] == {"SSEEnabled": False}  # the AWS owned key: no KMS request billed per step
    assert table["DeletionPolicy"] == "Retain" and props["DeletionProtectionEnabled"] is True


def test_the_ttl_attribute_is_the_one_provisioning_enables():
    import moto

    from stepline.aws.moto_env import moto_session
    from stepline.aws.resources import AwsNames, provision
    from infra.state import TTL_ATTRIBUTE

    with moto.mock_aws():
        session = moto_session()
        names = provision(AwsNames.for_prefix("ttl-check"), session)
        ttl = session.client("dynamodb").describe_time_to_live(TableName=names.table_name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == TTL_ATTRIBUTE


def test_the_payload_bucket_is_private_encrypted_tls_only_with_a_lifecycle(template, synthesized):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True,
                "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Status": "Enabled"}
                    )
                ]
            },
        },
    )
    _, policy = synthesized.one("AWS::S3::BucketPolicy")
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    _, bucket = synthesized.one("AWS::S3::Bucket")
    assert "ExpirationInDays" not in json.dumps(bucket)  # payloads kept unless configured


def test_the_work_queue_redrives_to_an_encrypted_dlq(synthesized):
    queues = synthesized.resources("AWS::SQS::Queue")
    (work_id,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    (dlq_id,) = [k for k in queues if k != work_id]
    work = queues[work_id]["Properties"]
    assert work["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": DEFAULT_MAX_RECEIVE_COUNT,
    }
    # A little above the deliveries the runtime allows: it dead-letters first, with the reason.
    assert DEFAULT_MAX_RECEIVE_COUNT == max_receive_count(Settings(mode="cloud").max_deliveries)
    for props in (work, queues[dlq_id]["Properties"]):
        assert props["SqsManagedSseEnabled"] is True
        assert props["MaximumMessageSize"] == MAX_MESSAGE_BYTES
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_visibility_timeout_is_six_times_the_executor_timeout(synthesized):
    queues = synthesized.resources("AWS::SQS::Queue")
    (work,) = [v["Properties"] for v in queues.values() if "RedrivePolicy" in v["Properties"]]
    _, executor = function(synthesized, EXECUTOR_HANDLER)
    settings = Settings(mode="cloud")
    assert executor["Timeout"] == executor_timeout_s(settings) <= 900
    # AWS's guidance for an SQS event source mapping: at least six times the function's timeout.
    assert work["VisibilityTimeout"] == settings.visibility_timeout_s >= 6 * executor["Timeout"]
    # Affordable: a crashed batch comes back within 40 minutes, well inside SQS's 12 h maximum.
    assert settings.visibility_timeout_s <= 40 * 60


def test_timings_that_do_not_fit_a_lambda_are_refused():
    with pytest.raises(ValueError, match="exceeds Lambda's 900 s"):
        executor_timeout_s(Settings(invocation_budget_s=800, step_timeout_s=120))


def test_the_executor_consumes_the_queue_with_partial_batch_failures(template, synthesized):
    executor_id, _ = function(synthesized, EXECUTOR_HANDLER)
    queues = synthesized.resources("AWS::SQS::Queue")
    (work_id,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [work_id, "Arn"]},
            "FunctionName": {"Ref": executor_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": 1,
        },
    )


def test_timers_three_groups_and_a_send_only_role_trusted_by_those_groups_only(synthesized):
    groups = {g["Properties"]["Name"]: k for k, g in synthesized.resources("AWS::Scheduler::ScheduleGroup").items()}
    assert sorted(groups) == ["Stepline-sweep", "Stepline-timers", "Stepline-timers-cron"]
    roles = synthesized.resources("AWS::IAM::Role")
    (role_id,) = [
        k for k, v in roles.items()
        if v["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    ]
    (trust,) = roles[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # Scheduler names the schedule's group as the source: only the stack's own groups, in this account.
    assert trust["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"},
            "aws:SourceArn": [{"Fn::GetAtt": [groups[name], "Arn"]} for name in
                              ("Stepline-timers", "Stepline-timers-cron", "Stepline-sweep")],
        }
    }
    statements = [
        s for p in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    queues = synthesized.resources("AWS::SQS::Queue")
    (work_id,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    assert statements == [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [work_id, "Arn"]}}]


def test_a_schedule_sends_the_sweep_message_to_the_work_queue(synthesized):
    (schedule,) = synthesized.resources("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(5 minutes)"  # sweep_interval_s
    # In a group of its own: never in the runtime's groups, and the delivery role trusts it.
    assert props["State"] == "ENABLED" and props["GroupName"] == "Stepline-sweep"
    sweep_group = next(k for k, g in synthesized.resources("AWS::Scheduler::ScheduleGroup").items()
                       if g["Properties"]["Name"] == "Stepline-sweep")
    assert sweep_group in next(iter(synthesized.resources("AWS::Scheduler::Schedule").values()))["DependsOn"]
    target = props["Target"]
    assert json.loads(target["Input"]) == {"kind": "sweep"}
    queues = synthesized.resources("AWS::SQS::Queue")
    (work_id,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    assert target["Arn"] == {"Fn::GetAtt": [work_id, "Arn"]}
    # Delivered by the timers' role, which may only send to the work queue.
    assert target["RoleArn"]["Fn::GetAtt"][0].startswith("TimersDeliveryRole")


def test_every_route_the_runtime_serves_is_routed_by_the_gateway(synthesized):
    """The resolver's routes (runtime/api), read from their decorators: a route added there and
    not here would be a 404 from API Gateway in production only."""
    import re
    from pathlib import Path

    from tests.infra.moto_stack import route_matches

    gateway = [r["Properties"]["RouteKey"] for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()]
    served = []
    for source in (Path(__file__).resolve().parents[2] / "runtime" / "api").glob("*.py"):
        served += re.findall(r'@app\.(get|post|put|delete|patch)\("([^"]+)"', source.read_text())
    assert len(served) >= 10
    for method, path in served:
        # "/e/" is the dev server's alias of "/e": API Gateway routes the bare path only, and
        # answers the slash form 404 itself, which refuses the keyless send just as well.
        sample = re.sub(r"<[^>]+>", "x", path.rstrip("/") or "/")
        assert any(route_matches(key, method.upper(), sample) for key in gateway), f"{method.upper()} {path}"


@pytest.mark.parametrize("handler", [API_HANDLER, EXECUTOR_HANDLER])
def test_functions_are_created_after_the_schedule_groups_they_name(synthesized, handler):
    function_id, _ = function(synthesized, handler)
    depends = synthesized.template["Resources"][function_id].get("DependsOn", [])
    groups = synthesized.resources("AWS::Scheduler::ScheduleGroup")
    assert set(groups) <= set(depends)


def test_the_http_api_routes_throttles_and_logs(synthesized):
    routes = sorted(r["Properties"]["RouteKey"] for r in synthesized.resources("AWS::ApiGatewayV2::Route").values())
    assert routes == sorted([
        "POST /e/{key}", "POST /e", "POST /webhooks/{source}", "POST /fn/register", "GET /v0/{proxy+}",
        "GET /v1/{proxy+}", "POST /v1/checkpoint/{run_id}/async", "POST /v1/signals", "POST /v1/{proxy+}", "DELETE /v1/{proxy+}",
        "GET /v1/dead-letters", "GET /v1/webhooks", "GET /metrics", "GET /health", "GET /openapi.json", "GET /", "GET /static/{name}",
    ])
    _, stage = synthesized.one("AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    # $default: the SDKs join "/fn/register" and "/e/..." to the origin, dropping any path.
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 2000, "ThrottlingRateLimit": 1000}
    # Each group its own rate and burst: a flood of bad event keys cannot take the SDKs' share.
    event_api, sdk, operator = (500, 1000), (1000, 2000), (20, 40)
    assert {k: (v["ThrottlingRateLimit"], v["ThrottlingBurstLimit"]) for k, v in props["RouteSettings"].items()} == {
        "POST /e/{key}": event_api, "POST /e": event_api, "POST /webhooks/{source}": event_api,
        "GET /v1/webhooks": operator, "POST /fn/register": sdk, "GET /v0/{proxy+}": sdk, "GET /v1/{proxy+}": sdk,
        "POST /v1/checkpoint/{run_id}/async": sdk, "POST /v1/signals": sdk, "POST /v1/{proxy+}": operator, "DELETE /v1/{proxy+}": operator, "GET /v1/dead-letters": operator,
        "GET /metrics": operator,
    }
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert log_format["route"] == "$context.routeKey"
    assert "$context.path" not in props["AccessLogSettings"]["Format"]  # the path holds event keys
    api_id, _ = function(synthesized, API_HANDLER)
    (integration,) = synthesized.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [api_id, "Arn"]}
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


@pytest.mark.parametrize("handler", [API_HANDLER, EXECUTOR_HANDLER])
def test_each_lambda_gets_exactly_the_settings_the_runtime_reads(synthesized, handler):
    _, props = function(synthesized, handler)
    env = props["Environment"]["Variables"]
    stepline = {k for k in env if k.startswith(ENV_PREFIX)}
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert stepline <= known, stepline - known
    role = "api" if handler == API_HANDLER else "executor"
    expected = deployed_settings(Resources(*(["x"] * 10)), role=role).to_env()
    expected.pop("STEPLINE_EVENT_KEYS")
    assert stepline == set(expected)
    assert env["STEPLINE_MODE"] == "cloud"
    assert env["STEPLINE_SCHEDULE_GROUP"] == "Stepline-timers"
    assert env["STEPLINE_SIGNING_KEY_SECRET_ID"] == "Stepline/signing-key"
    # A run's state is capped at what one API Lambda response can serve an SDK.
    assert env["STEPLINE_MAX_RUN_STATE_BYTES"] == str(DEPLOYED_MAX_RUN_STATE_BYTES)
    assert env.get("STEPLINE_OPERATOR_KEY_SECRET_ID") == ("Stepline/operator-key" if role == "api" else None)
    # Keys are read from Secrets Manager (at cold start, then every five minutes), never passed
    # in the environment.
    assert env["STEPLINE_KEYS_REFRESH_S"] == "300.0"
    assert not {"STEPLINE_SIGNING_KEY", "STEPLINE_SIGNING_KEY_FALLBACK", "STEPLINE_EVENT_KEYS",
                "STEPLINE_OPERATOR_KEY"} & set(env)
    # The limits and the retention the stack decides, at their defaults.
    assert (env["STEPLINE_MAX_RUNS_PER_REQUEST"], env["STEPLINE_MAX_OPS_PER_REPLY"],
            env["STEPLINE_MAX_STEPS_PER_RUN"], env["STEPLINE_RETENTION_DAYS"]) == ("5000", "1000", "1000", "0")
    assert env["POWERTOOLS_SERVICE_NAME"] == f"stepline-{role}"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Stepline"
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    # The settings the runtime would parse from it are valid.
    Settings.from_env({k: v if isinstance(v, str) else "token" for k, v in env.items()})


@pytest.mark.parametrize("handler", [API_HANDLER, EXECUTOR_HANDLER])
def test_lambdas_share_one_layer_and_run_traced_on_arm(synthesized, handler):
    _, props = function(synthesized, handler)
    (layer_id,) = synthesized.resources("AWS::Lambda::LayerVersion")
    assert props["Layers"] == [{"Ref": layer_id}]
    assert props["Runtime"] == "python3.14" and props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["MemorySize"] == (1024 if handler == API_HANDLER else 512)
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = synthesized.template["Resources"][log_group_id]["Properties"]
    assert log_group["RetentionInDays"] == 30 and "KmsKeyId" not in log_group
    assert log_group["LogGroupName"] == "/stepline/Stepline/" + ("api" if handler == API_HANDLER else "executor")


def test_the_api_lambda_has_reserved_concurrency_and_the_executor_a_bounded_event_source(synthesized):
    """Bounded by default: the API takes at most 50 of the account's concurrent executions
    (and always has them), and the queue keeps at most 50 executors busy."""
    _, api = function(synthesized, API_HANDLER)
    _, executor = function(synthesized, EXECUTOR_HANDLER)
    assert api["ReservedConcurrentExecutions"] == 50
    assert "ReservedConcurrentExecutions" not in executor  # bounded by its event source instead
    (mapping,) = [r["Properties"] for r in synthesized.resources("AWS::Lambda::EventSourceMapping").values()]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 50}


@pytest.mark.parametrize("handler", [API_HANDLER, EXECUTOR_HANDLER])
def test_iam_has_no_wildcard_action_and_wildcards_only_where_services_need_them(synthesized, handler):
    _, props = function(synthesized, handler)
    statements = role_statements(synthesized, props)
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert not [a for a in actions(statement) if "*" in a], statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:  # alone or inside a list
            assert resources == ["*"], statement
            assert set(actions(statement)) == {
                "scheduler:ListSchedules", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
            }
    by_action = {a: s for s in statements for a in actions(s)}
    table_id, _ = synthesized.one("AWS::DynamoDB::Table")
    assert by_action["dynamodb:UpdateItem"]["Resource"] == [
        {"Fn::GetAtt": [table_id, "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, "/index/gsi1"]]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, "/index/gsi2"]]},
    ]
    assert "dynamodb:Scan" not in by_action and "dynamodb:DeleteTable" not in by_action
    schedules = json.dumps(by_action["scheduler:CreateSchedule"]["Resource"])
    assert ":schedule/Stepline-timers/*" in schedules and ":schedule/Stepline-timers-cron/*" in schedules
    assert by_action["iam:PassRole"]["Resource"]["Fn::GetAtt"][0].startswith("TimersDeliveryRole")
    secrets = json.dumps([s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in actions(s)])
    assert "KeysSigningKey" in secrets
    # Webhook deliveries arrive at the API: only it reads their secrets, under the stack's prefix.
    assert (":secret:Stepline/webhooks/*" in secrets) == (handler == API_HANDLER)
    # Only the API checks event keys and the operator key, so only it may read them.
    assert ("KeysEventKeys" in secrets) == (handler == API_HANDLER)
    assert ("KeysOperatorKey" in secrets) == (handler == API_HANDLER)
    # Erasing a run deletes its payload objects, found by prefix: delete on objects, list on
    # the bucket, nothing more.
    (bucket_id,) = synthesized.resources("AWS::S3::Bucket")
    assert by_action["s3:DeleteObject"]["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]}
    assert by_action["s3:ListBucket"]["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert not [a for a in by_action if a.startswith("kms:")]  # no key: nothing to grant
    queues = synthesized.resources("AWS::SQS::Queue")
    (work_id,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    (dlq_id,) = [k for k in queues if k != work_id]
    work, dlq = {"Fn::GetAtt": [work_id, "Arn"]}, {"Fn::GetAtt": [dlq_id, "Arn"]}

    def on(action: str) -> list:
        return [s["Resource"] for s in statements if action in actions(s)]

    # Both send work; the executor dead-letters poison onto the DLQ, and only it consumes the
    # work queue. The API lists and redrives the DLQ, and reads the work queue's redrive policy.
    if handler == EXECUTOR_HANDLER:
        assert sorted(map(json.dumps, on("sqs:SendMessage"))) == sorted(map(json.dumps, [work, dlq]))
        assert on("sqs:ReceiveMessage") == [work]
    else:
        assert on("sqs:SendMessage") == [work]
        for action in ("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"):
            assert on(action) == [dlq], action
        assert on("sqs:GetQueueAttributes") == [work]


def test_outputs_give_the_api_url_and_the_secret_names(synthesized):
    outputs = synthesized.template["Outputs"]
    (api_id,) = synthesized.resources("AWS::ApiGatewayV2::Api")
    assert {"Ref": api_id} in outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert outputs["SigningKeySecretName"]["Value"] == "Stepline/signing-key"
    assert outputs["EventKeysSecretName"]["Value"] == "Stepline/event-keys"
    assert outputs["OperatorKeySecretName"]["Value"] == "Stepline/operator-key"


def test_secrets_are_generated_by_cloudformation_never_written_in_the_template(synthesized):
    secrets = {v["Properties"]["Name"]: v["Properties"] for v in synthesized.resources("AWS::SecretsManager::Secret").values()}
    signing = secrets["Stepline/signing-key"]["GenerateSecretString"]
    assert signing["GenerateStringKey"] == "signing_key" and signing["PasswordLength"] == 64
    operator = secrets["Stepline/operator-key"]["GenerateSecretString"]
    assert operator["GenerateStringKey"] == "operator_key" and operator["PasswordLength"] == 64
    for name in ("Stepline/signing-key", "Stepline/event-keys", "Stepline/operator-key"):
        assert "SecretString" not in secrets[name] and "KmsKeyId" not in secrets[name]


def test_alarms_watch_the_dlq_errors_throttles_and_queue_age(synthesized):
    alarms = synthesized.resources("AWS::CloudWatch::Alarm").values()
    metrics = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    assert metrics == sorted([
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"), ("AWS/Lambda", "Throttles"),
    ])
    for alarm in alarms:
        assert "AlarmActions" not in alarm["Properties"]  # no topic configured


def test_a_variant_configuration(variant):
    template = variant.template
    assert variant.aws_calls == []
    resources = template["Resources"]
    for resource in resources.values():
        if resource["Type"] in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
            assert resource["DeletionPolicy"] == "Delete"
    (table,) = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert "DeletionProtectionEnabled" not in table["Properties"] or not table["Properties"]["DeletionProtectionEnabled"]
    # Existing secrets: none created, both read by the names given.
    assert not [r for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert template["Outputs"]["SigningKeySecretName"]["Value"] == "shared/stepline-signing"
    functions = {r["Properties"]["Handler"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"}
    api_env = functions[API_HANDLER]["Environment"]["Variables"]
    assert api_env["STEPLINE_SIGNING_KEY_SECRET_ID"] == "shared/stepline-signing"
    assert api_env["STEPLINE_EVENT_KEYS_SECRET_ID"].endswith(":secret:shared/events-AbCdEf")
    assert api_env["STEPLINE_KEYS_REVISION"] == "7"
    assert api_env["STEPLINE_SCHEDULE_GROUP"] == "SteplineDev-timers"
    assert functions[API_HANDLER]["MemorySize"] == 1024
    (mapping,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}
    for alarm in (r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"):
        assert alarm["Properties"]["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:ops"]
    (bucket,) = [r for r in resources.values() if r["Type"] == "AWS::S3::Bucket"]
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 400
    retention = {r["Properties"].get("RetentionInDays") for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"}
    assert retention == {7}
    # Secrets named by name are granted with Secrets Manager's random suffix; by ARN, exactly.
    statements = json.dumps([r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"])
    assert ":secret:shared/stepline-signing-??????" in statements
    assert "secret:shared/events-AbCdEf\"" in statements


def _most_specific(keys: list[str], method: str, path: str) -> str | None:
    """The route key API Gateway picks for a request: a literal path over a {variable}, a
    {variable} over a greedy {proxy+}."""
    from tests.infra.moto_stack import route_matches

    matching = [k for k in keys if route_matches(k, method, path)]
    return min(matching, key=lambda k: (k.count("+}"), k.count("{")), default=None)


def test_each_route_is_throttled_with_the_group_of_who_may_call_it(tmp_path):
    """Every route the resolver serves lands on a gateway route of its group: the operator
    routes (stepline.api.auth.OPERATOR_ROUTES) on the operator group's throttle and nothing
    else there, so a flood of app or sender traffic never takes the operators' rate, nor the
    other way round."""
    import re

    from infra.http_api import ROUTES, RouteGroup
    from stepline.api.app import build_api
    from stepline.api.auth import OPERATOR_ROUTES
    from stepline.engine.clock import ManualClock
    from stepline.engine.core import Engine
    from stepline.local import local_backend

    group_of = {f"{m.value} {path}": group for path, methods, group in ROUTES for m in methods}
    with local_backend(str(tmp_path / "db"), ManualClock()) as backend:
        app = build_api(Engine(backend, Settings(mode="cloud")))
        served = {(r.method, r.path) for r in app._static_routes + app._dynamic_routes}
    checked = 0
    for method, path in sorted(served):
        openapi_path = re.sub(r"<(\w+)>", r"{\1}", path)
        sample = re.sub(r"<[^>]+>", "x", path.rstrip("/") or "/")
        key = _most_specific(list(group_of), method, sample)
        if path == "/e/":
            continue  # the dev server's alias of /e: API Gateway answers the slash form 404 itself
        assert key is not None, (method, path)
        if (method, openapi_path) in OPERATOR_ROUTES:
            expected = RouteGroup.OPERATOR
        elif path.startswith(("/e", "/webhooks/")):
            expected = RouteGroup.EVENT_API
        elif path.startswith(("/v0/", "/v1/", "/fn/")):
            expected = RouteGroup.SDK
        else:
            expected = RouteGroup.PUBLIC
        assert group_of[key] == expected, (method, path, key)
        checked += 1
    assert checked >= 25


def test_the_gateway_events_the_lambda_tests_send_follow_these_routes(synthesized):
    # tests/handlers/apigw.py builds the events API Gateway sends, routed by these route keys.
    from tests.handlers.apigw import ROUTE_KEYS

    routes = sorted(r["Properties"]["RouteKey"] for r in synthesized.resources("AWS::ApiGatewayV2::Route").values())
    assert routes == sorted(ROUTE_KEYS)
