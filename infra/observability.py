"""Alarms: anything in the DLQ, Lambda errors and throttles, and a work queue falling behind."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        queue_age_minutes: int,
        topic_arn: str = "",
    ) -> None:
        super().__init__(scope, id)
        self.alarms: list[cloudwatch.Alarm] = []
        # A message in the DLQ is work that failed on every delivery: its run is Failed
        # (DeliveryFailed) or, if SQS moved it, stuck. docs/deploy.md says what to do.
        self._add(
            "DeadLetters",
            dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            threshold=1,
            description="Work messages reached the dead-letter queue: their runs could not go on. "
            "See why with `stepline dlq list`; once the cause is fixed, `stepline dlq redrive --all`",
        )
        self._add(
            "QueueAge",
            queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            threshold=queue_age_minutes * 60,
            description=f"The oldest work message has waited over {queue_age_minutes} minutes: "
            "the executor is not keeping up or keeps failing",
        )
        for name, function in functions.items():
            self._add(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description=f"The {name} Lambda failed invocations (unhandled errors, timeouts)",
            )
            self._add(
                f"{name}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                description=f"The {name} Lambda was throttled (account or reserved concurrency)",
            )
        if topic_arn:
            topic = sns.Topic.from_topic_arn(self, "Topic", topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(actions.SnsAction(topic))
                alarm.add_ok_action(actions.SnsAction(topic))

    def _add(self, id: str, metric: cloudwatch.IMetric, *, threshold: float, description: str) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
        )
