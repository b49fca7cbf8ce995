"""The customer managed KMS key the stack's data may be encrypted with (``stepline:kmsKey``).

By default there is none: the table uses DynamoDB's AWS owned key, the queues SQS-managed keys,
the bucket SSE-S3, the secrets Secrets Manager's AWS managed key, and log groups CloudWatch
Logs' own encryption; no KMS request is billed. With ``create`` the stack makes a key (rotated
yearly) whose policy names who may use it:

* the account's administrators may manage it, never use it (``ADMIN_ACTIONS``);
* the API and executor roles and Scheduler's delivery role may encrypt and decrypt with it, and
  only through the services that hold the stack's data (``kms:ViaService``);
* CloudWatch Logs may, for this stack's log groups only (by encryption context);
* the account's principals may, through DynamoDB and Secrets Manager only, as deploying the
  table and the secrets needs (CloudFormation acts with the deployer's credentials there), and
  as the AWS managed keys of those services allow.

With the ARN of an existing key, its policy is the owner's: the stack grants the roles in their
IAM policies, which takes effect where the key policy lets the account's IAM policies grant
(the default key policy does), and the key policy must allow CloudWatch Logs (docs/deploy.md).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import KMS_CREATE

# What the services holding the stack's data ask of the key on a role's behalf.
USE_ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:DescribeKey",
]
# Managing the key without using it: an account whose administrators cannot change the key
# policy would have a key nobody can fix.
ADMIN_ACTIONS = [
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]
# The services the roles use the key through (their data is the stack's data).
ROLE_SERVICES = ("dynamodb", "sqs", "s3", "secretsmanager")
# The services CloudFormation creates encrypted resources through with the deployer's identity.
DEPLOY_SERVICES = ("dynamodb", "secretsmanager")
DEPLOY_ACTIONS = ["kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


class DataKey(Construct):
    """``key`` is None when the stack uses AWS-managed encryption (the default)."""

    def __init__(self, scope: Construct, id: str, *, setting: str, stack_name: str, retain: bool) -> None:
        super().__init__(scope, id)
        self.created = setting == KMS_CREATE
        self._roles: list[iam.IRole] = []
        self._log_group_prefix = log_group_prefix(stack_name)
        self.key: kms.IKey | None
        if not setting:
            self.key = None
        elif self.created:
            self.key = kms.Key(
                self,
                "Key",
                description=f"{stack_name}: encrypts Stepline's table, queues, payloads, secrets and logs",
                enable_key_rotation=True,
                alias=f"alias/{stack_name}",
                pending_window=Duration.days(30),
                policy=iam.PolicyDocument(statements=[self._admin_statement()]),
                removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            )
        else:
            self.key = kms.Key.from_key_arn(self, "Existing", setting)

    def grant_use(self, role: iam.IRole) -> None:
        """Let ``role`` encrypt and decrypt the stack's data with the key: in the key policy, by
        the role's ARN, for a key made here; in the role's own policy for an existing key."""
        if self.key is None:
            return
        if self.created:
            self._roles.append(role)
        else:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=USE_ACTIONS,
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": _via(ROLE_SERVICES, Stack.of(self).region)}},
                )
            )

    def encrypt_secret(self, secret: secretsmanager.ISecret) -> None:
        """Encrypt a secret the stack creates with the key. Set on the resource rather than given
        to the construct, which would add key policy statements of its own: the ones above are
        all the key needs."""
        if self.key is None:
            return
        resource = secret.node.default_child
        if not isinstance(resource, secretsmanager.CfnSecret):
            raise TypeError(f"{secret.node.path} is not a secret the stack creates")
        resource.kms_key_id = self.key.key_arn

    def finish(self) -> None:
        """Write the key policy's use statements, once every role has been granted."""
        if not self.created or not isinstance(self.key, kms.Key):
            return
        stack = Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="StackRolesThroughTheirServices",
                principals=[iam.ArnPrincipal(role.role_arn) for role in self._roles],
                actions=USE_ACTIONS,
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"kms:ViaService": _via(ROLE_SERVICES, stack.region)}},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsForThisStack",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=USE_ACTIONS,
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{self._log_group_prefix}*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DeployingTheTableAndSecrets",
                principals=[iam.AccountRootPrincipal()],
                actions=DEPLOY_ACTIONS,
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": _via(DEPLOY_SERVICES, stack.region),
                        "kms:CallerAccount": stack.account,
                    }
                },
            )
        )

    def _admin_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="AccountAdministersNotUses",
            principals=[iam.AccountRootPrincipal()],
            actions=ADMIN_ACTIONS,
            resources=["*"],
        )


def log_group_prefix(stack_name: str) -> str:
    """Every log group of the stack is named under this prefix (the key's Logs statement names
    them by it)."""
    return f"/stepline/{stack_name}/"


def _via(services: tuple[str, ...], region: str) -> list[str]:
    return [f"{service}.{region}.amazonaws.com" for service in services]
