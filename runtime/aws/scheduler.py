"""``Timers`` on EventBridge Scheduler.

A timer is a one-time ``at()`` schedule in the timer group that sends its body to the work queue
and deletes itself after firing. A cron trigger is a recurring ``cron()`` schedule in the cron
group with the same target; its description carries the cron as written and the fire time it
waits for, which only the pump reads.

A cron schedule's Input is fixed, so the time a fire was due travels as Scheduler's
``<aws.scheduler.scheduled-time>`` placeholder in ``scheduled_time``, which Scheduler replaces on
each fire (Scheduler fires anywhere within the minute and retries late deliveries, so the
arrival time says nothing). Cron schedules retry briefly (``CRON_RETRY_POLICY``): a fire that
cannot be delivered within minutes is dropped rather than delivered up to a day late, the
default; timers keep the default, as a timer must fire.

On AWS the Scheduler fires. moto stores schedules but never fires them, so ``fire_due`` is the
pump for tests and ``stepline dev --backend moto``: it reads the schedules and delivers the due
ones itself, in due order, by the local driver's rules (missed fire times of a cron coalesce
into the latest one), substituting the placeholder as Scheduler does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stepline.aws.cron import to_aws_cron
from stepline.aws.errors import describe, error_code, translated
from stepline.aws.resources import MAX_MESSAGE_BYTES, AwsNames
from stepline.engine.ports import Clock, StoreError
from stepline.engine.records import CronSchedule
from stepline.protocol.cron import CronSpec, schedule_spec

_NAME = re.compile(r"[0-9A-Za-z_.-]{1,64}")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
# The exact due time, kept beside the second-precision at() so the pump fires neither early nor
# late by the sub-second part.
_DUE = re.compile(r"fire_at_ms=(-?\d+)")
# What update_schedule takes back from a get_schedule answer (a full replace).
_SCHEDULE_FIELDS = (
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "EndDate",
    "Description",
    "State",
    "KmsKeyArn",
    "Target",
    "FlexibleTimeWindow",
    "ActionAfterCompletion",
)
_NOT_FOUND = "ResourceNotFoundException"
# Scheduler's context attribute for the time a fire was due, replaced in the Input on each fire.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
# A cron fire not delivered within 10 minutes is dropped (the default retries for a day).
CRON_RETRY_POLICY = {"MaximumEventAgeInSeconds": 600, "MaximumRetryAttempts": 10}
# Every schedule we make fires on time (no flexible window) and starts enabled.
_FIXED = {"FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED"}


def at_expression(fire_at_ms: int) -> str:
    """``at(...)`` in UTC, rounded up to the second: a timer may fire late, never early."""
    seconds = math.ceil(fire_at_ms / 1000)
    when = datetime.fromtimestamp(seconds, tz=UTC)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


def due_ms(schedule: dict[str, Any]) -> int | None:
    """When a one-time schedule is due, in ms; None for any other schedule."""
    match = _AT.fullmatch(schedule.get("ScheduleExpression") or "")
    if not match:
        return None
    exact = _DUE.search(schedule.get("Description") or "")
    if exact:
        return int(exact.group(1))
    when = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(when.timestamp()) * 1000


def scheduled_time(at_ms: int) -> str:
    """What Scheduler puts for ``<aws.scheduler.scheduled-time>``: ISO 8601, UTC, seconds."""
    return datetime.fromtimestamp(at_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"timer name must be 1-64 characters of [0-9A-Za-z_.-]: {name!r}")


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _input(name: str, body: dict[str, Any]) -> str:
    if not isinstance(body, dict):
        raise TypeError("timer body must be a JSON object")
    text = _dumps(body)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise StoreError(f"timer {name} body is over the {MAX_MESSAGE_BYTES}-byte queue limit")
    return text


def _cron_description(spec: CronSpec, next_at: int) -> str:
    return json.dumps({"cron": spec.expression, "tz": spec.timezone, "next": next_at})


def _parse_cron_description(text: str | None) -> tuple[CronSpec, int] | None:
    try:
        state = json.loads(text or "")
        return CronSpec(expression=state["cron"], timezone=state["tz"]), int(state["next"])
    except (ValueError, KeyError, TypeError):
        return None


@contextmanager
def _scheduler_call(action: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StoreError(f"Scheduler {action} failed: {describe(exc)}") from exc


class SchedulerTimers:
    def __init__(self, scheduler: Any, sqs: Any, names: AwsNames, clock: Clock) -> None:
        self._scheduler = scheduler
        self._sqs = sqs
        self._names = names
        self._clock = clock
        self._group = names.schedule_group
        self._cron_group = names.cron_group or f"{names.schedule_group}-cron"

    # -- timers ------------------------------------------------------------------------------

    def schedule(self, name: str, fire_at_ms: int, body: dict[str, Any]) -> None:
        _check_name(name)
        self._put(
            Name=name,
            GroupName=self._group,
            ScheduleExpression=at_expression(fire_at_ms),
            ScheduleExpressionTimezone="UTC",
            Target=self._target(_input(name, body)),
            ActionAfterCompletion="DELETE",
            Description=f"fire_at_ms={int(fire_at_ms)}",
        )

    def cancel(self, name: str) -> None:
        # Timers are cancelled far more often than crons, so their group is tried first.
        if not self._delete(name, self._group):
            self._delete(name, self._cron_group)

    # -- crons -------------------------------------------------------------------------------

    def schedule_cron(self, schedule: CronSchedule) -> None:
        _check_name(schedule.name)
        now = self._clock.now_ms()
        spec = schedule_spec(schedule.cron, schedule.timezone, now)
        # The body stays opaque, as every Timers adapter keeps it (the port's contract holds
        # bodies that are no work message): only the fire time's placeholder is added, which
        # the engine's CronFire reads back as its ``scheduled_time``.
        params = dict(
            Name=schedule.name,
            GroupName=self._cron_group,
            ScheduleExpression=to_aws_cron(spec.expression),
            ScheduleExpressionTimezone=spec.timezone,
            Target={
                **self._target(_input(schedule.name, {**schedule.body, "scheduled_time": SCHEDULED_TIME})),
                "RetryPolicy": CRON_RETRY_POLICY,
            },
            ActionAfterCompletion="NONE",
        )
        if self._create(**params, Description=_cron_description(spec, spec.next_after_ms(now))):
            return
        expression, zone, next_at = self._cron_state(schedule.name)
        if (expression, zone) != (spec.expression, spec.timezone) or next_at is None:
            next_at = spec.next_after_ms(now)
        # Scheduling the same cron again (every sync may) keeps the fire time it waits for, so
        # a re-sync neither skips nor repeats one; a changed cron starts over.
        with _scheduler_call("UpdateSchedule"):
            self._scheduler.update_schedule(**params, **_FIXED, Description=_cron_description(spec, next_at))

    def list_crons(self) -> list[str]:
        return self._names_in(self._cron_group)

    # -- the pump ----------------------------------------------------------------------------

    def fire_due(self, now_ms: int) -> int:
        due: list[tuple[int, str, str, str]] = []  # (when, name, queue arn, message body)
        one_time: list[str] = []
        for name, schedule in self._schedules(self._group):
            when = due_ms(schedule)
            if when is not None and when <= now_ms and schedule.get("State") != "DISABLED":
                target = schedule["Target"]
                due.append((when, name, target["Arn"], target.get("Input", "{}")))
                one_time.append(name)
        for name, schedule in self._schedules(self._cron_group):
            fire = self._cron_fire(name, schedule, now_ms)
            if fire is not None:
                due.append(fire)
        due.sort(key=lambda d: (d[0], d[1]))
        for _when, _name, arn, body in due:
            with translated("SQS SendMessage"):
                self._sqs.send_message(QueueUrl=self._queue_url(arn), MessageBody=body)
        # Deliver first, then delete: a crash between the two fires twice (at-least-once),
        # never zero times.
        for name in one_time:
            self._delete(name, self._group)
        return len(due)

    def _cron_fire(self, name: str, schedule: dict[str, Any], now_ms: int) -> tuple[int, str, str, str] | None:
        """The cron's latest due fire time as a message, moving the cron past ``now_ms``."""
        state = _parse_cron_description(schedule.get("Description"))
        if state is None or schedule.get("State") == "DISABLED":
            return None  # not one of ours
        spec, next_at = state
        if next_at > now_ms:
            return None
        at = spec.latest_fire_at(next_at, now_ms)
        moved = {k: schedule[k] for k in _SCHEDULE_FIELDS if k in schedule}
        moved["Description"] = _cron_description(spec, spec.next_after_ms(now_ms))
        with _scheduler_call("UpdateSchedule"):
            self._scheduler.update_schedule(**moved)
        target = schedule["Target"]
        return at, name, target["Arn"], (target.get("Input") or "{}").replace(SCHEDULED_TIME, scheduled_time(at))

    def _cron_state(self, name: str) -> tuple[str, str, int] | tuple[None, None, None]:
        """(expression, zone, next fire time) of an existing cron schedule."""
        try:
            schedule = self._scheduler.get_schedule(Name=name, GroupName=self._cron_group)
        except ClientError as exc:
            if error_code(exc) == _NOT_FOUND:
                return None, None, None
            raise StoreError(f"Scheduler GetSchedule failed: {describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"Scheduler GetSchedule failed: {describe(exc)}") from exc
        state = _parse_cron_description(schedule.get("Description"))
        if state is None:
            return None, None, None
        spec, next_at = state
        return spec.expression, spec.timezone, next_at

    # -- calls -------------------------------------------------------------------------------

    def _target(self, text: str) -> dict[str, Any]:
        return {
            "Arn": self._names.queue_arn,
            "RoleArn": self._names.scheduler_role_arn,
            "Input": text,
        }

    def _put(self, **params: Any) -> None:
        """Create the schedule, or replace it when the name exists (update is a full replace)."""
        if not self._create(**params):
            with _scheduler_call("UpdateSchedule"):
                self._scheduler.update_schedule(**params, **_FIXED)

    def _create(self, **params: Any) -> bool:
        """Create a schedule; False when one of that name exists."""
        try:
            self._scheduler.create_schedule(**params, **_FIXED)
            return True
        except ClientError as exc:
            if error_code(exc) == "ConflictException":
                return False
            raise StoreError(f"Scheduler CreateSchedule failed: {describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"Scheduler CreateSchedule failed: {describe(exc)}") from exc

    def _delete(self, name: str, group: str) -> bool:
        """Delete a schedule; False when there was none."""
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=group)
            return True
        except ClientError as exc:
            if error_code(exc) == _NOT_FOUND:
                return False
            raise StoreError(f"Scheduler DeleteSchedule failed: {describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"Scheduler DeleteSchedule failed: {describe(exc)}") from exc

    def _names_in(self, group: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"GroupName": group}
        while True:
            with _scheduler_call("ListSchedules"):
                resp = self._scheduler.list_schedules(**kwargs)
            names.extend(s["Name"] for s in resp.get("Schedules", []))
            token = resp.get("NextToken")
            if not token:
                return names
            kwargs["NextToken"] = token

    def _schedules(self, group: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every schedule of a group in full (the listing carries no expression or input)."""
        for name in self._names_in(group):
            try:
                schedule = self._scheduler.get_schedule(Name=name, GroupName=group)
            except ClientError as exc:
                if error_code(exc) == _NOT_FOUND:
                    continue  # deleted between list and get
                raise StoreError(f"Scheduler GetSchedule failed: {describe(exc)}") from exc
            except BotoCoreError as exc:
                raise StoreError(f"Scheduler GetSchedule failed: {describe(exc)}") from exc
            yield name, schedule

    def _queue_url(self, arn: str) -> str:
        if arn == self._names.queue_arn:
            return self._names.queue_url
        _, _, _, _, account, queue_name = arn.split(":", 5)
        with translated("SQS GetQueueUrl"):
            return self._sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
