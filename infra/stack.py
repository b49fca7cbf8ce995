"""One Stepline deployment: the constructs of infra/, composed, granted and wired together."""

from __future__ import annotations

from aws_cdk import CfnElement, CfnOutput, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import nag
from infra.app_function import grant_app_invoke
from infra.config import StackConfig
from infra.dashboard import RunsDashboard
from infra.encryption import DataKey, log_group_prefix
from infra.environment import Resources, lambda_environment, timing_settings
from infra.executor import Executor
from infra.functions import LambdaCode, SteplineFunction
from infra.http_api import HttpApi, RouteGroup, Throttle
from infra.observability import Alarms
from infra.packaging import LambdaBundle
from infra.queue import WorkQueue
from infra.secrets import Keys, existing_secret
from infra.state import PayloadBucket, StateTable
from infra.timers import SweepSchedule, Timers
from infra.webhooks import WebhookSecrets


class SteplineStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: StackConfig, bundle: LambdaBundle, **kwargs) -> None:
        super().__init__(
            scope,
            id,
            stack_name=config.stack_name,
            description="Stepline: durable execution (Inngest-compatible) in this account",
            **kwargs,
        )
        self.config = config
        # Timing settings (budget, step timeout) decide the executor's timeout and the queue's
        # visibility; they are the runtime's defaults, the same for both Lambdas.
        timing = timing_settings()

        # The customer managed key everything below is encrypted with, when configured.
        self.data_key = DataKey(
            self, "DataKey", setting=config.kms_key, stack_name=config.stack_name, retain=config.retain
        )
        key = self.data_key.key
        self.state = StateTable(
            self, "State", retain=config.retain, key=key, recovery_days=config.point_in_time_recovery_days
        )
        self.payloads = PayloadBucket(
            self,
            "Payloads",
            retain=config.retain,
            expiration_days=config.payload_expiration_days,
            retention_days=config.retention_days,
            key=key,
        )
        self.work = WorkQueue(
            self,
            "Work",
            visibility_timeout=Duration.seconds(timing.visibility_timeout_s),
            max_deliveries=timing.max_deliveries,
            key=key,
        )
        self.timers = Timers(
            self, "Timers", group_name=config.schedule_group, sweep_group_name=config.sweep_group, queue=self.work.queue
        )
        self.sweep = SweepSchedule(
            self, "Sweep", timers=self.timers, queue=self.work.queue, interval_s=timing.sweep_interval_s
        )
        self.keys = Keys(
            self,
            "Keys",
            stack_name=config.stack_name,
            signing_key_secret=config.signing_key_secret,
            event_keys_secret=config.event_keys_secret,
            operator_key_secret=config.operator_key_secret,
            retain=config.retain,
        )
        self.webhook_secrets = WebhookSecrets(
            self,
            "Webhooks",
            prefix=config.webhook_secret_prefix,
            sources=[str(entry["source"]) for entry in config.webhooks],
            retain=config.retain,
        )
        for secret in [*self.keys.created, *self.webhook_secrets.created]:
            self.data_key.encrypt_secret(secret)
        self.resources = Resources(
            table_name=self.state.table.table_name,
            queue_url=self.work.queue.queue_url,
            queue_arn=self.work.queue.queue_arn,
            dlq_url=self.work.dlq.queue_url,
            schedule_group=self.timers.group_name,
            scheduler_role_arn=self.timers.role.role_arn,
            payload_bucket=self.payloads.bucket.bucket_name,
            signing_key_secret_id=self.keys.signing_key_id,
            event_keys_secret_id=self.keys.event_keys_id,
            operator_key_secret_id=self.keys.operator_key_id,
            keys_revision=config.keys_revision,
            runtime=config.runtime_settings(),
        )

        # Kept: the apps' constructs (infra/app_function.py) run on the same layer and code.
        self.code = code = LambdaCode(self, "Code", bundle=bundle)
        logs_prefix = log_group_prefix(config.stack_name)
        self.api = HttpApi(
            self,
            "Api",
            code=code,
            environment={**lambda_environment(self.resources, role="api"), **config.trace_environment("api")},
            memory_mb=config.api_memory_mb,
            default_throttle=Throttle(config.api_rate_limit, config.api_burst_limit),
            throttles={
                RouteGroup.EVENT_API: Throttle(config.event_api_rate_limit, config.event_api_burst_limit),
                RouteGroup.SDK: Throttle(config.sdk_rate_limit, config.sdk_burst_limit),
                RouteGroup.OPERATOR: Throttle(config.operator_rate_limit, config.operator_burst_limit),
            },
            log_retention_days=config.log_retention_days,
            log_group_prefix=logs_prefix,
            key=key,
            reserved_concurrency=config.api_reserved_concurrency or None,
        )
        self.executor = Executor(
            self,
            "Executor",
            code=code,
            environment={
                **lambda_environment(self.resources, role="executor"),
                **config.trace_environment("executor"),
            },
            settings=timing,
            queue=self.work.queue,
            visibility_timeout_s=timing.visibility_timeout_s,
            memory_mb=config.executor_memory_mb,
            batch_size=config.executor_batch_size,
            max_concurrency=config.executor_max_concurrency,
            log_retention_days=config.log_retention_days,
            log_group_name=f"{logs_prefix}executor",
            key=key,
        )

        self._grant(self.api.handler, reads_event_keys=True)
        # Webhook deliveries arrive at the API alone: it reads their secrets.
        self.webhook_secrets.grant_read(self.api.handler.role)
        self._grant(self.executor.handler, reads_event_keys=False)
        # Apps deployed elsewhere that are called by invoke (stepline:appFunctions).
        for arn in config.split_list(config.app_functions):
            for handler in (self.executor.handler, self.api.handler):
                grant_app_invoke(handler, arn)
        # Poison messages: the executor dead-letters them; the API lists and redrives the DLQ
        # (receiving is the only way to read a queue), and reads the work queue's redrive
        # policy to say why SQS moved a message there.
        self.work.dlq.grant(self.executor.handler.role, "sqs:SendMessage")
        self.work.dlq.grant(
            self.api.handler.role, "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"
        )
        self.work.queue.grant(self.api.handler.role, "sqs:GetQueueAttributes")
        # The Lambdas name the schedule groups by name, which CloudFormation cannot see: make
        # the groups exist before anything can schedule into them.
        for handler in (self.api.handler, self.executor.handler):
            handler.function.node.add_dependency(*self.timers.groups)
        # Scheduler delivers to the (maybe KMS-encrypted) queue with its own role.
        self.data_key.grant_use(self.timers.role)
        self.data_key.finish()

        Alarms(
            self,
            "Alarms",
            functions={"Api": self.api.handler.function, "Executor": self.executor.handler.function},
            queue=self.work.queue,
            dlq=self.work.dlq,
            queue_age_minutes=config.queue_age_alarm_minutes,
            topic_arn=config.alarm_topic_arn,
        )

        # Runs, steps, flow control, dead letters and the queue on one page; error lines counted.
        self.dashboard = RunsDashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.stack_name}-runs",
            queue=self.work.queue,
            dlq=self.work.dlq,
            log_groups={"Api": self.api.handler.log_group, "Executor": self.executor.handler.log_group},
        )
        if config.otlp_headers_secret:
            # The exporter's headers (an API key): each Lambda reads this one secret at cold start.
            otlp_headers = existing_secret(self, "OtlpHeaders", config.otlp_headers_secret)
            for handler in (self.api.handler, self.executor.handler):
                otlp_headers.grant_read(handler.role)
        if config.traces == "adot":
            # The ADOT collector runs as a Lambda extension from this layer and takes the spans
            # on localhost (StackConfig.trace_environment); its default pipeline is X-Ray.
            adot = lambda_.LayerVersion.from_layer_version_arn(self, "AdotLayer", config.adot_layer_arn)
            for handler in (self.api.handler, self.executor.handler):
                handler.function.add_layers(adot)

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Stepline's base URL for apps and SDKs")
        CfnOutput(
            self,
            "SigningKeySecretName",
            value=self.keys.signing_key_id,
            description="Secrets Manager secret holding the signing key",
        )
        CfnOutput(
            self,
            "EventKeysSecretName",
            value=self.keys.event_keys_id,
            description="Secrets Manager secret holding the event keys",
        )
        CfnOutput(
            self,
            "OperatorKeySecretName",
            value=self.keys.operator_key_id,
            description="Secrets Manager secret holding the operator key (CLI, dashboard)",
        )
        CfnOutput(self, "TableName", value=self.state.table.table_name)
        CfnOutput(self, "WorkQueueUrl", value=self.work.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.work.dlq.queue_url)
        CfnOutput(self, "PayloadBucketName", value=self.payloads.bucket.bucket_name)

    def _grant(self, fn: SteplineFunction, *, reads_event_keys: bool) -> None:
        """What the runtime does with each resource, granted to one function's role. The queue
        grant is sending; the executor's receiving comes with its event source. Only the API
        checks event keys and the operator key, so only it reads those secrets."""
        role = fn.role
        self.data_key.grant_use(role)
        self.state.grant_use(role)
        self.payloads.grant_use(role)
        self.work.queue.grant(role, "sqs:SendMessage")
        self.timers.grant_manage_schedules(role)
        # Listing a group's schedules (the crons a sync replaces) has no resource-level
        # permission.
        fn.grant_on_any_resource(["scheduler:ListSchedules"], "EventBridge Scheduler's ListSchedules")
        self.keys.signing_key.grant_read(role)
        if reads_event_keys:
            self.keys.event_keys.grant_read(role)
            self.keys.operator_key.grant_read(role)

        fn.suppress_any_resource_finding()
        self.timers.suppress_schedule_wildcards(role)
        nag.suppress(
            role,
            "AwsSolutions-IAM5",
            "Payload object keys are chosen at run time (one per large value, named by its "
            "run and content), so the grant covers the objects of the payload bucket, with "
            "GetObject and PutObject only.",
            applies_to=[f"Resource::<{self._logical_id(self.payloads.bucket)}.Arn>/*"],
        )
        for secret_id in (
            self.config.signing_key_secret,
            self.config.event_keys_secret,
            self.config.operator_key_secret,
        ):
            if secret_id and not secret_id.startswith("arn:"):
                nag.suppress(
                    role,
                    "AwsSolutions-IAM5",
                    "An existing secret named by its name: Secrets Manager appends a random "
                    "6-character suffix to a secret's ARN, which the grant matches with '-??????'.",
                    applies_to=[
                        f"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
                        f"<AWS::AccountId>:secret:{secret_id}-??????"
                    ],
                )

    def _logical_id(self, construct: Construct) -> str:
        child = construct.node.default_child
        if not isinstance(child, CfnElement):
            raise TypeError(f"{construct.node.path} has no CloudFormation resource of its own")
        return self.resolve(self.get_logical_id(child))
