"""Deploy a synthesized template into moto's CloudFormation, and stand in for the AWS machinery
moto does not run.

moto's CloudFormation builds tables, queues, buckets, IAM, log groups, Lambda functions, layers
and event source mappings from the template. It skips secrets, schedule groups, schedules and API
Gateway v2, and stores a KMS key's policy as an object its own KMS cannot read back: ``deploy``
creates those through their APIs from the template's own properties, exactly as CloudFormation
would (a key before the stack, its policy once the roles it names exist), and hands their ids to
the rest of the template. Nothing else in the template is changed.

moto never runs Lambda code, never serves API Gateway and never polls SQS for a Lambda, so:
* ``ApiFront`` serves HTTP on localhost the way the deployed HTTP API does: a request must match
  one of the API's routes, and goes to the function its integration names, whose handler runs
  in-process with that function's environment as moto reports it;
* ``Deployment.drain_queue`` does what the event source mapping does, with its batch size and
  partial batch failures, calling the executor's handler with the executor's environment.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from stepline.dev.http_server import to_http_api_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
BOOTSTRAP_QUALIFIER = "hnb659fds"
# CloudFormation's pseudo parameters, for the properties deployed here through the APIs.
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::URLSuffix": "amazonaws.com"}
# Resource types moto's CloudFormation skips, created here through their APIs instead.
BEFORE_STACK = ("AWS::KMS::Key", "AWS::SecretsManager::Secret", "AWS::Scheduler::ScheduleGroup",
                "AWS::ApiGatewayV2::Api")
AFTER_STACK = ("AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage",
               "AWS::Scheduler::Schedule")


def substitute(value: Any, refs: dict[str, str], arns: dict[str, str]) -> Any:
    """``value`` with ``Ref`` and ``Fn::GetAtt [.., Arn]`` of the given resources replaced by
    their physical ids and ARNs."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in refs:
            return refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in arns and value["Fn::GetAtt"][1] == "Arn":
            return arns[value["Fn::GetAtt"][0]]
        return {k: substitute(v, refs, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, refs, arns) for v in value]
    return value


def resolve_all(value: Any) -> Any:
    """``resolve_join`` everywhere inside ``value``."""
    value = resolve_join(value)
    if isinstance(value, dict):
        return {k: resolve_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_all(v) for v in value]
    return value


def resolve_join(value: Any) -> Any:
    """``Fn::Join`` of plain strings, joined (what remains once the refs are substituted)."""
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        parts = [resolve_join(p) for p in parts]
        if all(isinstance(p, str) for p in parts):
            return sep.join(parts)
    return value


def placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "moto never runs Lambda code; the handlers run in-process\n")
    return buffer.getvalue()


@dataclass
class Deployment:
    session: Any
    template: dict[str, Any]
    stack_name: str = "Stepline"
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    outputs: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def logical_ids(self, resource_type: str) -> list[str]:
        return sorted(k for k, v in self.resources.items() if v["Type"] == resource_type)

    # -- deploying -------------------------------------------------------------------------

    def deploy(self) -> None:
        self._bootstrap()
        self._create_before_stack()
        body = {
            **self.template,
            "Resources": {
                k: v for k, v in self.resources.items() if v["Type"] not in BEFORE_STACK + AFTER_STACK
            },
        }
        body = substitute(body, self.physical, self.arns)
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=self.stack_name,
            TemplateBody=json.dumps(body),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise AssertionError(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}")
        for summary in cfn.list_stack_resources(StackName=self.stack_name)["StackResourceSummaries"]:
            if summary["LogicalResourceId"]:
                self.physical.setdefault(summary["LogicalResourceId"], summary["PhysicalResourceId"])
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self._create_after_stack()
        # moto "delivers" to an enabled SQS event source inside SendMessage, deleting the
        # message without running any code: the harness polls in its place (drain_queue).
        lambda_client = self.client("lambda")
        for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

    def _bootstrap(self) -> None:
        """What ``cdk bootstrap`` and asset publishing leave behind: the assets bucket holding
        each asset (a placeholder zip: no code runs) and the bootstrap version parameter."""
        s3 = self.client("s3")
        bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{ACCOUNT}-{REGION}"
        s3.create_bucket(Bucket=bucket)
        for resource in self.resources.values():
            code = resource["Properties"].get("Code") or resource["Properties"].get("Content") or {}
            if "S3Key" in code:
                s3.put_object(Bucket=bucket, Key=code["S3Key"], Body=placeholder_zip())
        self.client("ssm").put_parameter(
            Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value="30", Type="String"
        )

    def _create_before_stack(self) -> None:
        kms = self.client("kms")
        for logical_id in self.logical_ids("AWS::KMS::Key"):
            props = self.resources[logical_id]["Properties"]
            key = kms.create_key(Description=props.get("Description", ""), KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
            if props.get("EnableKeyRotation"):
                kms.enable_key_rotation(KeyId=key["KeyId"])
            self.physical[logical_id], self.arns[logical_id] = key["KeyId"], key["Arn"]
        secrets = self.client("secretsmanager")
        for logical_id in self.logical_ids("AWS::SecretsManager::Secret"):
            props = substitute(self.resources[logical_id]["Properties"], self.physical, self.arns)
            arn = secrets.create_secret(
                Name=props["Name"],
                Description=props.get("Description", ""),
                SecretString=generate_secret_string(secrets, props["GenerateSecretString"]),
                **({"KmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {}),
            )["ARN"]
            self.physical[logical_id] = self.arns[logical_id] = arn
        scheduler = self.client("scheduler")
        for logical_id in self.logical_ids("AWS::Scheduler::ScheduleGroup"):
            name = self.resources[logical_id]["Properties"]["Name"]
            self.arns[logical_id] = scheduler.create_schedule_group(Name=name)["ScheduleGroupArn"]
            self.physical[logical_id] = name
        apis = self.client("apigatewayv2")
        for logical_id in self.logical_ids("AWS::ApiGatewayV2::Api"):
            props = self.resources[logical_id]["Properties"]
            api = apis.create_api(
                Name=props["Name"], ProtocolType=props["ProtocolType"],
                Description=props.get("Description", ""),
            )
            self.physical[logical_id] = api["ApiId"]

    def _create_after_stack(self) -> None:
        apis = self.client("apigatewayv2")
        arns = {**self.arns, **{k: self.function_arn(k) for k in self.logical_ids("AWS::Lambda::Function")}}
        # GetAtt of a log group: moto's CloudFormation returns its name as the physical id.
        for logical_id in self.logical_ids("AWS::Logs::LogGroup"):
            arns[logical_id] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.physical[logical_id]}:*"

        def props(logical_id: str) -> dict[str, Any]:
            return resolve_join(
                substitute(self.resources[logical_id]["Properties"], self.physical, arns)
            )

        for logical_id in self.logical_ids("AWS::SQS::Queue"):
            arns[logical_id] = self.client("sqs").get_queue_attributes(
                QueueUrl=self.physical[logical_id], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        for logical_id in self.logical_ids("AWS::IAM::Role"):
            arns[logical_id] = self.client("iam").get_role(RoleName=self.physical[logical_id])["Role"]["Arn"]
        for logical_id in self.logical_ids("AWS::KMS::Key"):
            # The policy names the stack's roles: put it once they exist, as text.
            policy = resolve_all(substitute(props(logical_id)["KeyPolicy"], PSEUDO, {}))
            self.client("kms").put_key_policy(KeyId=self.physical[logical_id], PolicyName="default",
                                              Policy=json.dumps(policy))
        scheduler = self.client("scheduler")
        for logical_id in self.logical_ids("AWS::Scheduler::Schedule"):
            p = props(logical_id)
            target = {"Arn": p["Target"]["Arn"], "RoleArn": p["Target"]["RoleArn"], "Input": p["Target"]["Input"]}
            if "RetryPolicy" in p["Target"]:
                target["RetryPolicy"] = {k: int(v) for k, v in p["Target"]["RetryPolicy"].items()}
            name = p.get("Name") or f"{self.stack_name}-{logical_id}"[:64]  # CloudFormation's own
            scheduler.create_schedule(
                Name=name, ScheduleExpression=p["ScheduleExpression"], Target=target,
                FlexibleTimeWindow=p["FlexibleTimeWindow"], State=p.get("State", "ENABLED"),
                Description=p.get("Description", ""), **({"GroupName": p["GroupName"]} if "GroupName" in p else {}),
            )
            self.physical[logical_id] = name
        for logical_id in self.logical_ids("AWS::ApiGatewayV2::Integration"):
            p = props(logical_id)
            p["IntegrationUri"] = resolve_join(p["IntegrationUri"])
            created = apis.create_integration(
                ApiId=p["ApiId"], IntegrationType=p["IntegrationType"],
                IntegrationUri=p["IntegrationUri"], PayloadFormatVersion=p["PayloadFormatVersion"],
            )
            self.physical[logical_id] = created["IntegrationId"]
        for logical_id in self.logical_ids("AWS::ApiGatewayV2::Route"):
            p = props(logical_id)
            target = substitute(p["Target"], self.physical, arns)
            created = apis.create_route(
                ApiId=p["ApiId"], RouteKey=p["RouteKey"],
                AuthorizationType=p.get("AuthorizationType", "NONE"),
                Target=resolve_join(target),
            )
            self.physical[logical_id] = created["RouteId"]
        for logical_id in self.logical_ids("AWS::ApiGatewayV2::Stage"):
            p = props(logical_id)
            apis.create_stage(
                ApiId=p["ApiId"], StageName=p["StageName"], AutoDeploy=p.get("AutoDeploy", False),
                DefaultRouteSettings=p.get("DefaultRouteSettings", {}),
                AccessLogSettings=p.get("AccessLogSettings", {}),
            )

    # -- reading the deployed resources ----------------------------------------------------

    def function_arn(self, logical_id: str) -> str:
        return self.client("lambda").get_function(FunctionName=self.physical[logical_id])[
            "Configuration"
        ]["FunctionArn"]

    def function_configuration(self, logical_id: str) -> dict[str, Any]:
        return self.client("lambda").get_function_configuration(FunctionName=self.physical[logical_id])

    def function_by_handler(self, handler: str) -> dict[str, Any]:
        for logical_id in self.logical_ids("AWS::Lambda::Function"):
            config = self.function_configuration(logical_id)
            if config["Handler"] == handler:
                return config
        raise KeyError(handler)

    def secret_value(self, name: str) -> str:
        return self.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]


def generate_secret_string(secrets: Any, spec: dict[str, Any]) -> str:
    """What CloudFormation stores for ``GenerateSecretString``: a random password by the same
    rules, alone or under ``GenerateStringKey`` in ``SecretStringTemplate``."""
    options = {
        "PasswordLength": spec.get("PasswordLength", 32),
        "ExcludeCharacters": spec.get("ExcludeCharacters", ""),
        "ExcludePunctuation": spec.get("ExcludePunctuation", False),
        "ExcludeUppercase": spec.get("ExcludeUppercase", False),
        "ExcludeLowercase": spec.get("ExcludeLowercase", False),
        "ExcludeNumbers": spec.get("ExcludeNumbers", False),
        "IncludeSpace": spec.get("IncludeSpace", False),
    }
    password = secrets.get_random_password(**options)["RandomPassword"]
    if "GenerateStringKey" in spec:
        document = json.loads(spec.get("SecretStringTemplate", "{}"))
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


# -- running handlers as Lambda would -----------------------------------------------------


@dataclass
class FakeContext:
    """The parts of a Lambda context the handlers and powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


class LambdaHost:
    """Runs a function's handler in this process with the function's own environment, one
    invocation at a time. Switching functions starts a fresh "container": the environment is
    replaced and every cached engine forgotten, so each function reads its own settings and
    secrets at its own cold start."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._current: str | None = None
        self._saved_env = dict(os.environ)
        self._invoker: int | None = None  # the thread running a handler now
        self.cold_starts: list[str] = []
        # (function name, IAM action) of every AWS call a handler made.
        self.calls: set[tuple[str, str]] = set()
        self._unpatch = _record_aws_calls(self._record)

    def invoke(self, config: dict[str, Any], event: dict[str, Any]) -> Any:
        with self._lock:
            module_name, _, attribute = config["Handler"].rpartition(".")
            module = importlib.import_module(module_name)
            if self._current != config["FunctionArn"]:
                self._cold_start(config)
            context = FakeContext(
                function_name=config["FunctionName"],
                memory_limit_in_mb=config["MemorySize"],
                timeout_s=config["Timeout"],
                invoked_function_arn=config["FunctionArn"],
            )
            self._invoker = threading.get_ident()
            try:
                return getattr(module, attribute)(event, context)
            finally:
                self._invoker = None

    def _record(self, service: str, operation: str) -> None:
        if self._invoker == threading.get_ident() and self._current:
            name = self._current.rsplit(":", 1)[-1]
            self.calls.add((name, iam_action(service, operation)))

    def _cold_start(self, config: dict[str, Any]) -> None:
        from stepline.handlers import wiring

        os.environ.clear()
        os.environ.update(self._saved_env)
        os.environ.update(config.get("Environment", {}).get("Variables", {}))
        wiring.reset()
        for name in ("stepline.handlers.api", "stepline.handlers.executor"):
            importlib.import_module(name)._handler = None
        self._current = config["FunctionArn"]
        self.cold_starts.append(config["FunctionName"])

    def close(self) -> None:
        """Back to the environment before the first invocation, no engine cached anywhere."""
        self._unpatch()
        with self._lock:
            from stepline.handlers import wiring

            os.environ.clear()
            os.environ.update(self._saved_env)
            wiring.reset()
            for name in ("stepline.handlers.api", "stepline.handlers.executor"):
                importlib.import_module(name)._handler = None
            self._current = None


# API operations authorized by an IAM action of another name.
_ACTION_OF = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "DeleteObjects"): "DeleteObject",
}


def iam_action(endpoint_prefix: str, operation: str) -> str:
    """The IAM action that authorizes one API operation (``sqs``, ``SendMessageBatch`` →
    ``sqs:SendMessage``). The services used here sign with their endpoint prefix, which is also
    their IAM prefix."""
    return f"{endpoint_prefix}:{_ACTION_OF.get((endpoint_prefix, operation), operation)}"


def _record_aws_calls(record: Any) -> Any:
    """Report every botocore API call to ``record(service, operation)``; returns the undo."""
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: Any) -> Any:
        record(self.meta.service_model.endpoint_prefix, operation_name)
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = recording  # type: ignore[method-assign]

    def undo() -> None:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    return undo


def route_matches(route_key: str, method: str, path: str) -> bool:
    route_method, _, route_path = route_key.partition(" ")
    if route_method not in (method, "ANY"):
        return False
    pattern = re.sub(r"\\\{[^/]+?\\\+\\\}", ".+", re.escape(route_path))  # {proxy+}
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", pattern)  # {key}
    return re.fullmatch(pattern, path) is not None


class ApiFront:
    """The deployed HTTP API on localhost: the routes and integrations moto holds for it."""

    def __init__(self, deployment: Deployment, host: LambdaHost, api_logical_id: str) -> None:
        apis = deployment.client("apigatewayv2")
        api_id = deployment.physical[api_logical_id]
        integrations = {i["IntegrationId"]: i for i in apis.get_integrations(ApiId=api_id)["Items"]}
        self.routes: list[tuple[str, dict[str, Any]]] = []
        functions = deployment.client("lambda")
        for route in apis.get_routes(ApiId=api_id)["Items"]:
            integration = integrations[route["Target"].removeprefix("integrations/")]
            config = functions.get_function_configuration(FunctionName=integration["IntegrationUri"])
            self.routes.append((route["RouteKey"], config))
        self.host = host
        self.requests: list[tuple[str, str, int]] = []  # (route key or "-", path, status)
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = front.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        path = urlsplit(target).path
        for route_key, config in self.routes:
            if route_matches(route_key, method, path):
                event = to_http_api_event(method, target, headers, body, "127.0.0.1")
                event["routeKey"] = event["requestContext"]["routeKey"] = route_key
                result = self.host.invoke(config, event)
                self.requests.append((route_key, path, int(result.get("statusCode", 200))))
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                return int(result.get("statusCode", 200)), dict(result.get("headers") or {}), data
        # What API Gateway answers for a request no route matches.
        self.requests.append(("-", path, 404))
        return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def drain_queue(deployment: Deployment, host: LambdaHost, *, max_rounds: int = 50) -> int:
    """Deliver every visible work message to the executor as its event source mapping would:
    batches of the mapping's size, successes deleted, reported failures left to come back.
    Returns how many records were delivered."""
    lambda_client = deployment.client("lambda")
    sqs = deployment.client("sqs")
    mappings = lambda_client.list_event_source_mappings()["EventSourceMappings"]
    delivered = 0
    for mapping in mappings:
        queue_arn = mapping["EventSourceArn"]
        queue_name = queue_arn.rsplit(":", 1)[-1]
        queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        config = lambda_client.get_function_configuration(FunctionName=mapping["FunctionArn"])
        partial = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        for _ in range(max_rounds):
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=mapping["BatchSize"],
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            event = {"Records": [lambda_record(m, queue_arn) for m in messages]}
            response = host.invoke(config, event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} if partial else set()
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            delivered += len(messages)
    return delivered


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", ACCOUNT),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@contextlib.contextmanager
def quiet_moto_cloudformation():
    """moto warns once per resource type it skips; the deployment handles those types."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        yield
