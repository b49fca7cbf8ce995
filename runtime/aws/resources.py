"""Where the AWS resources are (``AwsNames``) and how to create them for moto and dev.

On AWS the CDK stack creates the resources and hands their names to the Lambdas through
``stepline.settings`` (``AwsNames.from_settings``). ``provision`` creates the same shapes through
the APIs, for tests on moto and for ``stepline dev --backend moto``; it is idempotent so a
second call on the same account is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from stepline.aws.errors import error_code, translated
from stepline.aws.items import GSI1, GSI2

if TYPE_CHECKING:
    from stepline.settings import Settings

# The SQS message limit the rest of the system is designed around (moto defaults to 1 MiB).
MAX_MESSAGE_BYTES = 262_144
# The engine dead-letters a message itself on its ``max_deliveries``-th failing delivery
# (stepline.engine.delivery), recording why and failing its run. SQS's redrive policy sits a few
# receives above, as the backstop for deliveries that crash the executor before it can.
REDRIVE_MARGIN = 2


def max_receive_count(max_deliveries: int) -> int:
    """The work queue's maxReceiveCount for a runtime that allows ``max_deliveries``."""
    return max_deliveries + REDRIVE_MARGIN


DEFAULT_MAX_RECEIVE_COUNT = max_receive_count(10)  # Settings().max_deliveries
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# The cron group is named after the timer group (settings carry only the latter).
CRON_GROUP_SUFFIX = "-cron"
# For moto and dev only: a deployed bucket's name comes from the stack (bucket names are global).
PAYLOAD_BUCKET_SUFFIX = "-payloads"


@dataclass(frozen=True)
class AwsNames:
    """Names and addresses of one Stepline deployment's AWS resources. An empty ``region``
    leaves the choice to boto3 (on Lambda: the function's own region)."""

    table_name: str
    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    dlq_arn: str = ""
    schedule_group: str = ""
    # Cron triggers live in a group of their own, so listing them never pages through timers.
    cron_group: str = ""
    scheduler_role_arn: str = ""
    region: str = ""
    # S3 bucket for JSON values too large to keep in a table item; "" keeps every value inline
    # (and refuses items over DynamoDB's limit).
    payload_bucket: str = ""

    @classmethod
    def for_prefix(cls, prefix: str = "stepline", region: str = "us-east-1") -> AwsNames:
        """Names for a deployment that ``provision`` has yet to create (URLs and ARNs empty)."""
        return cls(
            table_name=prefix,
            schedule_group=prefix,
            cron_group=prefix + CRON_GROUP_SUFFIX,
            region=region,
            payload_bucket=prefix + PAYLOAD_BUCKET_SUFFIX,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsNames:
        if not settings.table_name:
            raise ValueError("STEPLINE_TABLE_NAME is not set: no DynamoDB table to run on")
        queue_url = settings.queue_url or ""
        dlq_url = settings.dlq_url or ""
        group = settings.schedule_group or settings.table_name
        return cls(
            table_name=settings.table_name,
            queue_url=queue_url,
            queue_arn=settings.queue_arn or queue_arn_from_url(queue_url),
            dlq_url=dlq_url,
            dlq_arn=queue_arn_from_url(dlq_url),
            schedule_group=group,
            cron_group=group + CRON_GROUP_SUFFIX,
            scheduler_role_arn=settings.scheduler_role_arn or "",
            region=settings.region or region_from_url(queue_url),
            payload_bucket=settings.payload_bucket or "",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsNames:
        from stepline.settings import Settings

        return cls.from_settings(Settings.from_env(dict(environ) if environ is not None else None))

    def settings_values(self) -> dict[str, str]:
        """The ``Settings`` fields that make ``from_settings`` give back these names (what the
        dev server and the stack put into the settings)."""
        return {
            "table_name": self.table_name,
            "queue_url": self.queue_url,
            "queue_arn": self.queue_arn,
            "dlq_url": self.dlq_url,
            "schedule_group": self.schedule_group,
            "scheduler_role_arn": self.scheduler_role_arn,
            "region": self.region,
            "payload_bucket": self.payload_bucket,
        }

    @property
    def queue_name(self) -> str:
        return self.queue_url.rsplit("/", 1)[-1] if self.queue_url else f"{self.table_name}-work"

    @property
    def dlq_name(self) -> str:
        return self.dlq_url.rsplit("/", 1)[-1] if self.dlq_url else f"{self.table_name}-work-dlq"

    @property
    def scheduler_role_name(self) -> str:
        if self.scheduler_role_arn:
            return self.scheduler_role_arn.rsplit("/", 1)[-1]
        return f"{self.table_name}-scheduler"


def region_from_url(url: str) -> str:
    """The region in a queue URL (``https://sqs.<region>.amazonaws.com/...``), or ""."""
    host = urlparse(url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 3 and parts[0] == "sqs":
        return parts[1]
    if len(parts) >= 4 and parts[1] == "queue":  # legacy https://<region>.queue.amazonaws.com
        return parts[0]
    return "us-east-1" if host == "queue.amazonaws.com" else ""


def queue_arn_from_url(url: str) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` → the queue's ARN."""
    path = [p for p in urlparse(url).path.split("/") if p]
    region = region_from_url(url)
    if len(path) != 2 or not region:
        return ""
    partition = "aws-cn" if (urlparse(url).hostname or "").endswith(".cn") else "aws"
    account, name = path
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


# -- provisioning ------------------------------------------------------------------------------


def table_definition(table_name: str) -> dict[str, Any]:
    """The table as ``stepline.aws.table`` expects it (the CDK construct mirrors this)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                # Listings filter on the event name or the run status; full items are then read
                # by key, so the index never holds a second copy of large payloads, and lease
                # and output writes to a run (attributes it does not project) never touch it.
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["name", "status"]},
            },
            {
                "IndexName": GSI2,
                "KeySchema": [
                    {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                ],
                # The sweeper reads the few run items it finds by key; keys only keeps the index
                # small and means only writes that move wake_at (create, release, end) touch it.
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    }


def provision(
    names: AwsNames,
    session: Any,
    *,
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
    clients: dict[str, Any] | None = None,
) -> AwsNames:
    """Create the table, queues, scheduler role, schedule groups and payload bucket when missing.

    Returns ``names`` with queue URLs/ARNs and the role ARN filled in. ``clients`` may supply
    already-made clients by service name (creating clients is the slow part on moto).
    """
    region = names.region
    clients = dict(clients or {})

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, region_name=region or None)
        return clients[service]

    ddb, sqs, iam, scheduler = (client(s) for s in ("dynamodb", "sqs", "iam", "scheduler"))

    _ensure_table(ddb, names.table_name)
    dlq_url, dlq_arn = _ensure_queue(
        sqs,
        names.dlq_name,
        {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "MaximumMessageSize": str(MAX_MESSAGE_BYTES)},
    )
    queue_url, queue_arn = _ensure_queue(
        sqs,
        names.queue_name,
        {
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
        },
    )
    role_arn = _ensure_scheduler_role(iam, names.scheduler_role_name, queue_arn)
    group = names.schedule_group or names.table_name
    cron_group = names.cron_group or f"{group}-cron"
    _ensure_schedule_group(scheduler, group)
    _ensure_schedule_group(scheduler, cron_group)
    if names.payload_bucket:
        _ensure_bucket(client("s3"), names.payload_bucket, region)
    return replace(
        names,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        schedule_group=group,
        cron_group=cron_group,
        scheduler_role_arn=role_arn,
    )


def _ensure_table(ddb: Any, table_name: str) -> None:
    try:
        ddb.describe_table(TableName=table_name)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        with translated("DynamoDB CreateTable"):
            ddb.create_table(**table_definition(table_name))
            ddb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = ddb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        with translated("DynamoDB UpdateTimeToLive"):
            ddb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )


def _ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        with translated("SQS CreateQueue"):
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _ensure_scheduler_role(iam: Any, role_name: str, queue_arn: str) -> str:
    """A role Scheduler assumes to deliver timers; it may only send to the work queue."""
    try:
        return iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    send_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}],
    }
    with translated("IAM CreateRole"):
        arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName="send-to-work-queue",
            PolicyDocument=json.dumps(send_only),
        )
    return arn


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """A private bucket, encrypted at rest by default (each object also asks for it)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":  # us-east-1 refuses an explicit location constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with translated("S3 CreateBucket"):
        s3.create_bucket(**kwargs)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )


def _ensure_schedule_group(scheduler: Any, group: str) -> None:
    # Look before creating: moto silently replaces an existing group and drops its schedules.
    try:
        scheduler.get_schedule_group(Name=group)
        return
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    with translated("Scheduler CreateScheduleGroup"):
        scheduler.create_schedule_group(Name=group)
