"""The synthesized stack deployed into moto, then an event run through it end to end.

The template is the one with the data options on (a customer managed KMS key made by the stack,
a 30-day retention), so the deploy exercises them; it goes to moto's CloudFormation unchanged (see
moto_stack for the resource types moto skips and how they are created instead). The handlers then
run in-process with the environment moto reports for each function, against the resources the
stack created; an app on the official Python SDK, in production mode with the signing key from
the stack's secret, serves the functions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from stepline.protocol.signing import hash_signing_key
from tests.infra.moto_stack import (
    ApiFront,
    Deployment,
    LambdaHost,
    drain_queue,
    quiet_moto_cloudformation,
)

APP_SCRIPT = Path(__file__).parent / "deployed_app.py"
API_HANDLER = "stepline.handlers.api.handler"
EXECUTOR_HANDLER = "stepline.handlers.executor.handler"


def http(method: str, url: str, body: Any = None, headers: dict | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _decoded(response.read())
    except urllib.error.HTTPError as err:
        return err.code, _decoded(err.read())


def _decoded(text: bytes) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port} after {timeout_s}s")


class Deployed:
    def __init__(
        self,
        deployment: Deployment,
        host: LambdaHost,
        front: ApiFront,
        app_port: int,
        signing_key: str,
        event_key: str,
        operator_key: str,
    ) -> None:
        self.deployment = deployment
        self.host = host
        self.front = front
        self.app_url = f"http://127.0.0.1:{app_port}"
        self.signing_key = signing_key
        self.event_key = event_key
        self.operator_key = operator_key

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + hash_signing_key(self.signing_key)}

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + hash_signing_key(self.operator_key)}

    def send(self, name: str, data: dict) -> str:
        status, body = http("POST", f"{self.front.url}/e/{self.event_key}", {"name": name, "data": data})
        assert status == 200, body
        return body["ids"][0]

    def runs(self, event_id: str) -> list[dict]:
        status, body = http("GET", f"{self.front.url}/v1/events/{event_id}/runs", headers=self.bearer)
        assert status == 200, body
        return body["data"]

    def env(self, handler: str) -> dict[str, str]:
        return self.deployment.function_by_handler(handler)["Environment"]["Variables"]


@pytest.fixture(scope="module")
def deployed(protected) -> Deployed:
    import moto

    from stepline.aws.moto_env import install_moto_lock, moto_session

    install_moto_lock()  # the API front serves from threads
    with quiet_moto_cloudformation(), moto.mock_aws(config={"lambda": {"use_docker": False}}):
        deployment = Deployment(moto_session(), protected.template)
        deployment.deploy()
        host = LambdaHost()
        (api_id,) = deployment.logical_ids("AWS::ApiGatewayV2::Api")
        front = ApiFront(deployment, host, api_id)
        signing = json.loads(deployment.secret_value(deployment.outputs["SigningKeySecretName"]))
        event_key = deployment.secret_value(deployment.outputs["EventKeysSecretName"]).split(",")[0]
        signing_key = "signkey-prod-" + signing["signing_key"]
        operator_key = json.loads(deployment.secret_value(deployment.outputs["OperatorKeySecretName"]))["operator_key"]
        port = free_port()
        app_env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        app_env.update(INNGEST_BASE_URL=front.url, INNGEST_SIGNING_KEY=signing_key)
        app = subprocess.Popen(
            [sys.executable, str(APP_SCRIPT), "--port", str(port)],
            env=app_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            yield Deployed(deployment, host, front, port, signing_key, event_key, operator_key)
        finally:
            app.terminate()
            try:
                app.wait(5)
            except subprocess.TimeoutExpired:
                app.kill()
            front.close()
            host.close()


@pytest.fixture(scope="module")
def synced(deployed) -> Deployed:
    """The app synced the way a deployed app is: PUT to its serve URL, and the SDK registers
    itself with the API (signed with its key)."""
    status, body = http("PUT", f"{deployed.app_url}/api/inngest")
    assert status == 200, body
    assert ("POST /fn/register", "/fn/register", 200) in deployed.front.requests
    return deployed


def test_the_stack_is_created_and_the_lambdas_point_at_its_resources(deployed):
    d = deployed.deployment
    for handler in (API_HANDLER, EXECUTOR_HANDLER):
        env = deployed.env(handler)
        table = d.client("dynamodb").describe_table(TableName=env["STEPLINE_TABLE_NAME"])["Table"]
        assert {k["AttributeName"] for k in table["KeySchema"]} == {"pk", "sk"}
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2"]
        attributes = d.client("sqs").get_queue_attributes(QueueUrl=env["STEPLINE_QUEUE_URL"], AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["QueueArn"] == env["STEPLINE_QUEUE_ARN"]
        redrive = json.loads(attributes["RedrivePolicy"])
        dlq_arn = d.client("sqs").get_queue_attributes(QueueUrl=env["STEPLINE_DLQ_URL"], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        assert redrive["deadLetterTargetArn"] == dlq_arn
        scheduler = d.client("scheduler")
        scheduler.get_schedule_group(Name=env["STEPLINE_SCHEDULE_GROUP"])
        scheduler.get_schedule_group(Name=env["STEPLINE_SCHEDULE_GROUP"] + "-cron")
        d.client("s3").head_bucket(Bucket=env["STEPLINE_PAYLOAD_BUCKET"])
        d.client("secretsmanager").describe_secret(SecretId=env["STEPLINE_SIGNING_KEY_SECRET_ID"])
        role = env["STEPLINE_SCHEDULER_ROLE_ARN"].rsplit("/", 1)[-1]
        d.client("iam").get_role(RoleName=role)
    executor = d.function_by_handler(EXECUTOR_HANDLER)
    visibility = int(attributes["VisibilityTimeout"])
    assert visibility > executor["Timeout"]


def test_an_event_runs_to_completion(synced):
    d = synced
    event_id = d.send("deploy/check", {"n": 1})
    assert drain_queue(d.deployment, d.host) >= 1
    (run,) = d.runs(event_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"first": 2, "second": 20}
    _, counters = http("GET", f"{d.app_url}/counters")
    assert counters == {"first": 1, "second": 1}  # each step body ran exactly once


def test_a_large_step_output_goes_to_the_stack_bucket(synced):
    d = synced
    event_id = d.send("deploy/big", {"bytes": 200_000})
    drain_queue(d.deployment, d.host)
    (run,) = d.runs(event_id)
    assert run["status"] == "Completed" and run["output"] == 200_000, run
    bucket = d.env(EXECUTOR_HANDLER)["STEPLINE_PAYLOAD_BUCKET"]
    keys = [o["Key"] for o in d.deployment.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(key.startswith(f"runs/{run['run_id']}/") for key in keys), keys


def test_the_api_and_the_executor_run_as_separate_functions(synced):
    d = synced
    d.send("deploy/check", {"n": 2})
    drain_queue(d.deployment, d.host)
    api, executor = (d.deployment.function_by_handler(h)["FunctionName"] for h in (API_HANDLER, EXECUTOR_HANDLER))
    assert {api, executor} <= set(d.host.cold_starts)
    # Only the API checks event keys, so only it may read them.
    assert "STEPLINE_EVENT_KEYS_SECRET_ID" in d.env(API_HANDLER)
    assert "STEPLINE_EVENT_KEYS_SECRET_ID" not in d.env(EXECUTOR_HANDLER)
    for handler in (API_HANDLER, EXECUTOR_HANDLER):
        assert not {"STEPLINE_SIGNING_KEY", "STEPLINE_EVENT_KEYS"} & set(d.env(handler))


def test_keys_come_from_the_stack_secrets(synced):
    d = synced
    status, body = http("POST", f"{d.front.url}/e/not-a-key", {"name": "deploy/check", "data": {"n": 1}})
    assert status == 401, body
    status, body = http("GET", f"{d.front.url}/v1/events")
    assert status == 401, body
    status, body = http("GET", f"{d.front.url}/v1/events", headers=d.bearer)
    assert status == 200, body
    # The operator key, from its own secret, steers runs; the apps' signing key cannot.
    status, body = http("POST", f"{d.front.url}/v1/sweep", {}, headers=d.bearer)
    assert status == 403 and "operator key" in body["error"], body
    status, body = http("POST", f"{d.front.url}/v1/sweep", {}, headers=d.operator)
    assert status == 200, body


def test_a_long_sleep_becomes_a_schedule_delivered_by_the_stack_role(synced):
    d = synced
    event_id = d.send("deploy/nap", {})
    drain_queue(d.deployment, d.host)
    (run,) = d.runs(event_id)
    assert run["status"] == "Running"
    env = d.env(EXECUTOR_HANDLER)
    scheduler = d.deployment.client("scheduler")
    group = env["STEPLINE_SCHEDULE_GROUP"]
    (summary,) = scheduler.list_schedules(GroupName=group)["Schedules"]
    schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
    assert schedule["Target"]["Arn"] == env["STEPLINE_QUEUE_ARN"]
    assert schedule["Target"]["RoleArn"] == env["STEPLINE_SCHEDULER_ROLE_ARN"]
    # The role Scheduler delivers with may send to the work queue and do nothing else.
    iam = d.deployment.client("iam")
    role = env["STEPLINE_SCHEDULER_ROLE_ARN"].rsplit("/", 1)[-1]
    statements = [
        s
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for s in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]
    ]
    statements += [
        s
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        for s in _policy_statements(iam, attached["PolicyArn"])
    ]
    assert statements == [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": env["STEPLINE_QUEUE_ARN"]}]


def _policy_statements(iam: Any, arn: str) -> list[dict]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return document["Statement"]


def test_the_sweep_schedule_runs_the_sweeper_in_the_executor(synced):
    d = synced
    env = d.env(EXECUTOR_HANDLER)
    scheduler = d.deployment.client("scheduler")
    (summary,) = scheduler.list_schedules(GroupName="Stepline-sweep")["Schedules"]
    schedule = scheduler.get_schedule(Name=summary["Name"], GroupName="Stepline-sweep")
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["Target"]["Arn"] == env["STEPLINE_QUEUE_ARN"]
    assert schedule["Target"]["RoleArn"] == env["STEPLINE_SCHEDULER_ROLE_ARN"]
    sqs = d.deployment.client("sqs")
    # Delivered as Scheduler delivers it (moto never fires schedules), then handled.
    sqs.send_message(QueueUrl=env["STEPLINE_QUEUE_URL"], MessageBody=schedule["Target"]["Input"])
    assert drain_queue(d.deployment, d.host) >= 1
    for queue in ("STEPLINE_QUEUE_URL", "STEPLINE_DLQ_URL"):  # handled: not failed, not poison
        attributes = sqs.get_queue_attributes(QueueUrl=env[queue], AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
            "0",
            "0",
        )


def test_a_cron_trigger_lands_in_the_cron_group(synced):
    env = synced.env(API_HANDLER)
    scheduler = synced.deployment.client("scheduler")
    crons = scheduler.list_schedules(GroupName=env["STEPLINE_SCHEDULE_GROUP"] + "-cron")["Schedules"]
    assert len(crons) == 1


def test_the_gateway_refuses_paths_it_has_no_route_for(deployed):
    status, _ = http("GET", f"{deployed.front.url}/admin")
    assert status == 404
    assert deployed.front.requests[-1] == ("-", "/admin", 404)
    status, body = http("GET", f"{deployed.front.url}/health")
    assert status == 200 and body["mode"] == "cloud", body
    status, page = http("GET", f"{deployed.front.url}/")  # the dashboard's page, public
    assert status == 200 and "<html" in page.lower()


def test_the_stack_key_encrypts_its_data_and_its_policy_names_the_roles(deployed):
    d = deployed.deployment
    kms = d.client("kms")
    (key_id,) = d.logical_ids("AWS::KMS::Key")
    key_arn = d.arns[key_id]
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    env = deployed.env(API_HANDLER)
    # Two keys are not checked here, because moto's CloudFormation reads their properties under
    # the API's names and so drops them: the table's (it describes SSESpecification only with
    # "Enabled", not CloudFormation's "SSEEnabled") and the log groups' ("kmsKeyId", not
    # "KmsKeyId"). tests/infra/test_options.py checks both in the template.
    for queue in ("STEPLINE_QUEUE_URL", "STEPLINE_DLQ_URL"):
        attributes = d.client("sqs").get_queue_attributes(QueueUrl=env[queue], AttributeNames=["All"])["Attributes"]
        assert attributes["KmsMasterKeyId"] == key_arn
    encryption = d.client("s3").get_bucket_encryption(Bucket=env["STEPLINE_PAYLOAD_BUCKET"])
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    for output in ("SigningKeySecretName", "EventKeysSecretName", "OperatorKeySecretName"):
        assert d.client("secretsmanager").describe_secret(SecretId=d.outputs[output])["KmsKeyId"] == key_arn
    groups = d.client("logs").describe_log_groups(logGroupNamePrefix="/stepline/Stepline/")["logGroups"]
    assert sorted(g["logGroupName"] for g in groups) == [
        f"/stepline/Stepline/{n}" for n in ("access", "api", "executor")
    ]
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    (roles,) = [s for s in policy["Statement"] if s.get("Sid") == "StackRolesThroughTheirServices"]
    iam = d.client("iam")
    expected = {iam.get_role(RoleName=d.physical[r])["Role"]["Arn"] for r in d.logical_ids("AWS::IAM::Role")}
    assert set(roles["Principal"]["AWS"]) == expected  # the API's, the executor's, Scheduler's: all there are


def test_runs_carry_their_expiry_from_the_write_that_ended_them(synced):
    d = synced
    event_id = d.send("deploy/check", {"n": 3})
    drain_queue(d.deployment, d.host)
    (run,) = d.runs(event_id)
    assert run["status"] == "Completed", run
    ddb, table = d.deployment.client("dynamodb"), d.env(EXECUTOR_HANDLER)["STEPLINE_TABLE_NAME"]
    item = ddb.get_item(TableName=table, Key={"pk": {"S": f"RUN#{run['run_id']}"}, "sk": {"S": "RUN"}})["Item"]
    ended_ms = int(item["ended_at"]["N"])
    assert int(item["expires_at"]["N"]) == ended_ms + 30 * 24 * 3600 * 1000
    assert int(item["ttl"]["N"]) > int(item["expires_at"]["N"]) // 1000  # the backstop, after the expiry
    assert item["gsi2pk"]["S"].startswith("EXPIRE#")
    event = ddb.get_item(TableName=table, Key={"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}})["Item"]
    assert int(event["ttl"]["N"]) * 1000 >= int(event["received_at"]["N"]) + 30 * 24 * 3600 * 1000


def test_an_operator_erases_a_run_with_its_payloads_through_the_deployed_api(synced):
    d = synced
    event_id = d.send("deploy/big", {"bytes": 200_000})
    drain_queue(d.deployment, d.host)
    (run,) = d.runs(event_id)
    bucket = d.env(EXECUTOR_HANDLER)["STEPLINE_PAYLOAD_BUCKET"]
    s3, ddb = d.deployment.client("s3"), d.deployment.client("dynamodb")
    prefix = f"runs/{run['run_id']}/"
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents")
    status, body = http("POST", f"{d.front.url}/v1/erasures", {"event_id": event_id}, headers=d.bearer)
    assert status == 403, body  # never with the apps' key
    status, body = http("POST", f"{d.front.url}/v1/erasures", {"event_id": event_id}, headers=d.operator)
    assert status == 200 and body["data"]["erased"]["runs"] >= 1 and body["data"]["erased"]["payloads"] >= 1, body
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") is None
    table = d.env(EXECUTOR_HANDLER)["STEPLINE_TABLE_NAME"]
    for pk in (f"RUN#{run['run_id']}", f"EVENT#{event_id}"):
        items = ddb.query(
            TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
        )["Items"]
        assert items == [], pk
    status, _ = http("GET", f"{d.front.url}/v1/runs/{run['run_id']}", headers=d.operator)
    assert status == 404


def test_a_verified_webhook_runs_through_the_deployed_stack(synced):
    """stepline:webhooks made the source's secret; the provider's value put there, a signed
    Stripe delivery runs the app's function through both Lambdas, and a forged one is refused."""
    import hashlib
    import hmac

    d = synced
    secrets = d.deployment.client("secretsmanager")
    placeholder = json.loads(d.deployment.secret_value("Stepline/webhooks/billing"))
    assert len(placeholder["secret"]) >= 32  # generated, never in the template
    env = d.env(API_HANDLER)
    assert json.loads(env["STEPLINE_WEBHOOK_SOURCES"])[0]["secret_id"] == "Stepline/webhooks/billing"
    assert d.env(EXECUTOR_HANDLER)["STEPLINE_WEBHOOK_SOURCES"] == ""  # only the API receives webhooks
    secrets.put_secret_value(SecretId="Stepline/webhooks/billing", SecretString="whsec_deployed")
    _, before = http("GET", f"{d.app_url}/counters")

    def deliver(secret: str, event_id: str) -> tuple[int, Any]:
        body = json.dumps({"id": event_id, "type": "charge.succeeded", "data": {"object": {"n": 4}}}).encode()
        t = int(time.time())
        signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"{d.front.url}/webhooks/billing", data=body, method="POST",
            headers={"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={signature}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, body = deliver("whsec_deployed", "evt_deployed_1")
    assert status == 200 and body["delivery_id"] == "evt_deployed_1", body
    drain_queue(d.deployment, d.host)
    (run,) = d.runs(body["ids"][0])
    assert run["status"] == "Completed" and run["output"] == {"first": 5, "second": 50}, run
    assert deliver("whsec_deployed", "evt_deployed_1") == (status, body)  # redelivered: the same event
    status, refused = deliver(placeholder["secret"], "evt_forged")
    assert status == 401 and refused["reason"] == "bad_signature", refused
    drain_queue(d.deployment, d.host)
    _, after = http("GET", f"{d.app_url}/counters")
    assert after["first"] == before.get("first", 0) + 1  # one run, for the one genuine delivery
    status, listing = http("GET", f"{d.front.url}/v1/webhooks", headers=d.operator)
    assert status == 200 and listing["data"][0]["rejected"]["bad_signature"] == 1, listing


def test_every_aws_call_the_handlers_made_is_granted_to_their_role(synced, protected):
    """Last in this module, so it sees every run above. Each API call the handlers made, as
    the IAM action that authorizes it, is in the role the template gives that function: no
    AccessDenied waiting on AWS."""
    d = synced
    assert d.host.calls, "no calls recorded"
    for logical_id, resource in protected.resources("AWS::Lambda::Function").items():
        name = d.deployment.physical[logical_id]
        role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        granted = {
            action
            for policy in protected.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        }
        made = {action for function, action in d.host.calls if function == name}
        assert made, f"{name} made no AWS calls"
        assert made <= granted, f"{name} called {sorted(made - granted)} without a grant"
    made = {a for _, a in d.host.calls}
    assert "scheduler:CreateSchedule" in made  # the long sleep's timer
    assert {"s3:ListBucket", "s3:DeleteObject"} <= made  # the erasure
