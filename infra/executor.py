"""The executor Lambda and the SQS event source that feeds it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.functions import LambdaCode, SteplineFunction
from stepline.settings import DEADLINE_MARGIN_S, ESM_VISIBILITY_FACTOR, Settings

EXECUTOR_HANDLER = "stepline.handlers.executor.handler"
LAMBDA_MAX_TIMEOUT_S = 900


def executor_timeout_s(settings: Settings) -> int:
    """Long enough for a full invocation budget, one step call that starts at its very end, and
    the margin the handler keeps for acknowledging and re-enqueueing."""
    timeout = settings.executor_timeout_s
    if timeout > LAMBDA_MAX_TIMEOUT_S:
        raise ValueError(
            f"invocation_budget_s + step_timeout_s + {DEADLINE_MARGIN_S} s = {timeout} s "
            f"exceeds Lambda's {LAMBDA_MAX_TIMEOUT_S} s"
        )
    return timeout


class Executor(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: LambdaCode,
        environment: dict[str, str],
        settings: Settings,
        queue: sqs.IQueue,
        visibility_timeout_s: int,
        memory_mb: int,
        batch_size: int,
        max_concurrency: int,
        log_retention_days: int,
        log_group_name: str,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, id)
        timeout = executor_timeout_s(settings)
        visibility = visibility_timeout_s
        if visibility < ESM_VISIBILITY_FACTOR * timeout:
            # Below it, SQS could hand a message to a second executor while the first (or the
            # event source's retry of a throttled batch) still runs it.
            raise ValueError(
                f"the work queue's visibility timeout ({visibility} s) must be at least {ESM_VISIBILITY_FACTOR}× "
                f"the executor's timeout ({timeout} s), as AWS advises for an SQS event source"
            )
        self.handler = SteplineFunction(
            self,
            "Handler",
            code=code,
            handler=EXECUTOR_HANDLER,
            description="Stepline executor: runs steps, one work message at a time",
            memory_mb=memory_mb,
            timeout=Duration.seconds(timeout),
            environment=environment,
            log_retention_days=log_retention_days,
            log_group_name=log_group_name,
            key=key,
        )
        # The queue's maximum concurrency bounds the executor (and so what it spends and what
        # it asks of the apps) without reserving any of the account's concurrency.
        self.handler.function.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=batch_size,
                report_batch_item_failures=True,
                max_concurrency=max_concurrency or None,
            )
        )
