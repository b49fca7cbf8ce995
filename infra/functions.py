"""The Lambda functions' common shape: one layer of dependencies, the ``stepline`` package (``runtime/``), and per
function its own role, log group, X-Ray tracing and powertools settings."""

from __future__ import annotations

from aws_cdk import AssetHashType, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.packaging import LambdaBundle

ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def lambda_runtime(python_version: str) -> lambda_.Runtime:
    return lambda_.Runtime(f"python{python_version}", lambda_.RuntimeFamily.PYTHON)


class LambdaCode(Construct):
    """The dependencies layer and the code asset, shared by every function of the stack."""

    def __init__(self, scope: Construct, id: str, *, bundle: LambdaBundle) -> None:
        super().__init__(scope, id)
        self.runtime = lambda_runtime(bundle.python_version)
        self.architecture = ARCHITECTURES[bundle.architecture]
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            # Hashing ~100 MB of wheels on every synth is slow; the directory's name already
            # is a hash of everything that decides its content.
            code=lambda_.Code.from_asset(
                str(bundle.dependencies_dir),
                asset_hash=bundle.dependencies_hash,
                asset_hash_type=AssetHashType.CUSTOM,
            ),
            compatible_runtimes=[self.runtime],
            compatible_architectures=[self.architecture],
            description="Stepline runtime dependencies",
        )
        self.code = lambda_.Code.from_asset(str(bundle.code_dir))


class SteplineFunction(Construct):
    """A function with a role of its own (no managed policies) and a log group it may write,
    named under the stack's prefix (``/stepline/<stack>/``) and encrypted with the stack's key
    when it has one."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: LambdaCode,
        handler: str,
        description: str,
        memory_mb: int,
        timeout: Duration,
        environment: dict[str, str],
        log_retention_days: int,
        log_group_name: str,
        key: kms.IKey | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            encryption_key=key,
            retention=retention(log_retention_days),
            # Logs expire by retention; keeping the group after the stack is gone only leaves
            # an orphan behind.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description}: its own log group, and the grants the stack adds",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=code.runtime,
            architecture=code.architecture,
            code=code.code,
            layers=[code.layer],
            handler=handler,
            description=description,
            memory_size=memory_mb,
            timeout=timeout,
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            # Reserved concurrency both guarantees and caps: the function never takes more of
            # the account's concurrency than this, whatever floods it.
            reserved_concurrent_executions=reserved_concurrency,
        )
        # Active tracing grants xray:PutTraceSegments and xray:PutTelemetryRecords on '*'.
        self._any_resource_reasons = ["X-Ray's PutTraceSegments and PutTelemetryRecords"]

    def grant_on_any_resource(self, actions: list[str], which: str) -> None:
        """Allow ``actions`` that IAM only accepts on resource '*' (``which`` names them in the
        cdk-nag suppression's reason)."""
        iam.Grant.add_to_principal(grantee=self.role, actions=actions, resource_arns=["*"])
        self._any_resource_reasons.append(which)

    def suppress_any_resource_finding(self) -> None:
        """The one cdk-nag finding for this role's '*' resource, with the reason for each action
        it covers. Called once all grants are made."""
        nag.suppress(
            self.role,
            "AwsSolutions-IAM5",
            " and ".join(self._any_resource_reasons)
            + " have no resource-level permissions: IAM only accepts them on resource '*'.",
            applies_to=["Resource::*"],
        )


def retention(days: int) -> logs.RetentionDays:
    if days == 0:
        return logs.RetentionDays.INFINITE
    by_days = {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        120: "FOUR_MONTHS",
        150: "FIVE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
        400: "THIRTEEN_MONTHS",
        545: "EIGHTEEN_MONTHS",
        731: "TWO_YEARS",
        1096: "THREE_YEARS",
        1827: "FIVE_YEARS",
        2192: "SIX_YEARS",
        2557: "SEVEN_YEARS",
        2922: "EIGHT_YEARS",
        3288: "NINE_YEARS",
        3653: "TEN_YEARS",
    }
    return getattr(logs.RetentionDays, by_days[days])
