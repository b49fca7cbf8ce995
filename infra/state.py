"""The state table and the payload bucket."""

from __future__ import annotations

import math

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import nag
from stepline.aws.resources import table_definition
from stepline.engine.flow.buffers import GRACE_MS
from stepline.engine.records import DAY_MS
from stepline.protocol.register import MAX_DEBOUNCE_PERIOD_MS

# The attribute stepline.aws writes expiry times into (stepline.aws.resources.provision enables
# TTL on it for moto and dev).
TTL_ATTRIBUTE = "ttl"

# Every DynamoDB action the adapters in runtime/aws call, listed rather than granted by pattern
# so the roles hold nothing else (tests/infra checks each call of an end-to-end run against it).
TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
]
# runtime/aws/payloads.py writes each large value once, by content, and reads it back; erasing a
# run or an event (on request, or past the retention) deletes its objects, found by prefix.
PAYLOAD_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
PAYLOAD_BUCKET_ACTIONS = ["s3:ListBucket"]
# A debounce or batch buffer holds its events at most this long (the longest debounce period
# plus the grace a lost timer gets): its payload objects may go this long after the retention.
FLOW_BUFFER_DAYS = math.ceil((MAX_DEBOUNCE_PERIOD_MS + GRACE_MS) / DAY_MS) + 1


def _attribute(definition: dict, name: str) -> dynamodb.Attribute:
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
    kinds = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}
    return dynamodb.Attribute(name=name, type=kinds[types[name]])


def _key(definition: dict, schema: list[dict], kind: str) -> dynamodb.Attribute | None:
    names = [k["AttributeName"] for k in schema if k["KeyType"] == kind]
    return _attribute(definition, names[0]) if names else None


class StateTable(Construct):
    """The one DynamoDB table, shaped from ``stepline.aws.resources.table_definition`` so its keys
    and index are the ones the adapters query."""

    def __init__(
        self, scope: Construct, id: str, *, retain: bool, key: kms.IKey | None = None, recovery_days: int = 35
    ) -> None:
        super().__init__(scope, id)
        definition = table_definition("unused")
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_key(definition, definition["KeySchema"], "HASH"),
            sort_key=_key(definition, definition["KeySchema"], "RANGE"),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            # Erased and expired data stays restorable for the window (docs/deploy.md).
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=recovery_days > 0,
                recovery_period_in_days=recovery_days or None,
            ),
            # Encrypted at rest with the AWS owned key (no KMS requests to pay per step), or with
            # the stack's customer managed key when one is configured.
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED if key else dynamodb.TableEncryption.DEFAULT,
            encryption_key=key,
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        if not recovery_days:
            nag.suppress(
                self.table,
                "AwsSolutions-DDB3",
                "Point-in-time recovery is off because this deployment's configuration says so "
                "(stepline:pointInTimeRecoveryDays=0): erased data must not stay restorable, or "
                "the owner backs the table up by other means.",
            )
        self.index_names: list[str] = []
        for index in definition.get("GlobalSecondaryIndexes", []):
            projection = index["Projection"]
            self.table.add_global_secondary_index(
                index_name=index["IndexName"],
                partition_key=_key(definition, index["KeySchema"], "HASH"),
                sort_key=_key(definition, index["KeySchema"], "RANGE"),
                projection_type=dynamodb.ProjectionType(projection["ProjectionType"]),
                non_key_attributes=projection.get("NonKeyAttributes"),
            )
            self.index_names.append(index["IndexName"])

    def grant_use(self, grantee: iam.IGrantable) -> iam.Grant:
        """The adapters' actions on the table and on its indexes by name (no wildcard)."""
        arns = [self.table.table_arn]
        arns += [f"{self.table.table_arn}/index/{name}" for name in self.index_names]
        return iam.Grant.add_to_principal(grantee=grantee, actions=TABLE_ACTIONS, resource_arns=arns)


class PayloadBucket(Construct):
    """Large step outputs and events (over DynamoDB's item limit): private, encrypted, TLS only.

    With a retention period, an event's objects expire with it (``events/``: the event item's
    TTL is the same period from the same moment, give or take a day) and a debounce or batch
    buffer's after the longest it can live (``flow/``); a run's objects (``runs/``) are deleted
    with the run when it expires, since no lifecycle rule can know when a run ends."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        retain: bool,
        expiration_days: int,
        retention_days: int = 0,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, id)
        rules = [self._everything(expiration_days)]
        if retention_days:
            rules += [
                s3.LifecycleRule(id="events", prefix="events/", expiration=Duration.days(retention_days + 1)),
                s3.LifecycleRule(
                    id="flow", prefix="flow/", expiration=Duration.days(retention_days + FLOW_BUFFER_DAYS)
                ),
            ]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # SSE-S3, or SSE-KMS with the stack's key and an S3 Bucket Key (one KMS request per
            # bucket key period, not per object).
            encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=True if key else None,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=rules,
            # Retained or not, a bucket holding objects is never deleted by CloudFormation:
            # teardown empties it first (docs/deploy.md).
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        nag.suppress(
            self.bucket,
            "AwsSolutions-S1",
            "Only the stack's own Lambda roles read or write this bucket, each object under a "
            "run's key; server access logs would add a second bucket and cost without telling "
            "more than CloudTrail data events, which the account owner can enable.",
        )

    @staticmethod
    def _everything(expiration_days: int) -> s3.LifecycleRule:
        return s3.LifecycleRule(
            id="payloads",
            abort_incomplete_multipart_upload_after=Duration.days(1),
            # Payloads are written once and read while their run lives; Intelligent-Tiering
            # moves the ones nobody reads to cheaper storage without a retrieval fee.
            transitions=[
                s3.Transition(
                    storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                    transition_after=Duration.days(0),
                )
            ],
            expiration=Duration.days(expiration_days) if expiration_days else None,
        )

    def grant_use(self, grantee: iam.IGrantable) -> None:
        """Read, write and delete objects, and list them by prefix (erasure finds a run's
        objects so); object keys are chosen at run time, so the objects' resource is every
        object of this one bucket."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=PAYLOAD_ACTIONS, resource_arns=[self.bucket.arn_for_objects("*")]
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=PAYLOAD_BUCKET_ACTIONS, resource_arns=[self.bucket.bucket_arn]
        )
