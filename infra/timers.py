"""EventBridge Scheduler: the timers group, the cron group, the sweep's group, the role schedules
deliver with (trusted by those groups only), and the sweep schedule."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from stepline.aws.resources import CRON_GROUP_SUFFIX
from stepline.engine import messages

# What the runtime does with schedules (runtime/aws/scheduler.py): create, replace, read back
# and delete them by name within its two groups.
SCHEDULE_ACTIONS = [
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:GetSchedule",
    "scheduler:DeleteSchedule",
]


class Timers(Construct):
    """Three schedule groups: two named as the runtime expects (``<group>`` and
    ``<group>-cron``), and the sweep schedule's own; and a role Scheduler assumes that may do one
    thing, send messages to the work queue, for schedules of these groups only."""

    def __init__(self, scope: Construct, id: str, *, group_name: str, sweep_group_name: str, queue: sqs.IQueue) -> None:
        super().__init__(scope, id)
        self.group_name = group_name
        self.cron_group_name = group_name + CRON_GROUP_SUFFIX
        self.sweep_group_name = sweep_group_name
        # Destroyed with the stack whatever the removal policy: a group holds only in-flight
        # timers aimed at this stack's own queue, and deleting it deletes them.
        self.groups = [
            scheduler.ScheduleGroup(self, construct_id, schedule_group_name=name, removal_policy=RemovalPolicy.DESTROY)
            for construct_id, name in (
                ("Timers", self.group_name),
                ("Crons", self.cron_group_name),
                ("Sweep", self.sweep_group_name),
            )
        ]
        self.role = iam.Role(
            self,
            "DeliveryRole",
            description="EventBridge Scheduler delivers Stepline timers to the work queue",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                # Confused-deputy guard: only schedules of this account, in the stack's own
                # groups, may use the role (Scheduler names the schedule's group as the source).
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Stack.of(self).account,
                        "aws:SourceArn": [group.schedule_group_arn for group in self.groups],
                    }
                },
            ),
        )
        queue.grant(self.role, "sqs:SendMessage")

    def schedule_arns(self) -> list[str]:
        """Every schedule of the two groups (schedule names are chosen at run time)."""
        stack = Stack.of(self)
        return [
            stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{name}/*")
            for name in (self.group_name, self.cron_group_name)
        ]

    def grant_manage_schedules(self, grantee: iam.IRole) -> None:
        """Create, update, read and delete schedules in both groups, and hand Scheduler the
        delivery role (``iam:PassRole`` on that role alone)."""
        # Not ScheduleGroup.grant(): that one names the group itself, and schedule actions are
        # authorized against the schedule's ARN.
        iam.Grant.add_to_principal(grantee=grantee, actions=SCHEDULE_ACTIONS, resource_arns=self.schedule_arns())
        self.role.grant_pass_role(grantee)

    def suppress_schedule_wildcards(self, construct: Construct) -> None:
        for name in (self.group_name, self.cron_group_name):
            nag.suppress(
                construct,
                "AwsSolutions-IAM5",
                f"Schedule names are chosen at run time (one per timer or cron), so the grant "
                f"covers every schedule of the group {name} and nothing outside it.",
                applies_to=[
                    f"Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/{name}/*"
                ],
            )


def rate_expression(interval_s: float) -> str:
    """Scheduler's rate for an interval, in whole minutes (its finest unit), at least one."""
    minutes = max(1, round(interval_s / 60))
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


class SweepSchedule(Construct):
    """Puts a ``sweep`` message on the work queue every ``interval_s``, delivered with the timers'
    role; the executor runs the sweeper on it (``stepline.engine.sweeper``), and the expiry past
    the retention (``stepline.engine.retention``). In a group of its own: the runtime's groups
    hold only schedules it made, and manages them as such."""

    def __init__(self, scope: Construct, id: str, *, timers: Timers, queue: sqs.IQueue, interval_s: float) -> None:
        super().__init__(scope, id)
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description="Stepline: re-arm runs whose wake-up got lost (the sweeper), expire old data",
            group_name=timers.sweep_group_name,
            schedule_expression=rate_expression(interval_s),
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=queue.queue_arn,
                role_arn=timers.role.role_arn,
                input=json.dumps(messages.sweep()),
                # A missed sweep is replaced by the next one: never retry one for long.
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=max(60, int(interval_s)), maximum_retry_attempts=2
                ),
            ),
            state="ENABLED",
        )
        # The group is named, not referenced: make it exist first.
        self.schedule.node.add_dependency(timers.groups[-1])
