"""The Scheduler adapter: what it asks AWS for, and the pump that stands in for firing on moto."""

from __future__ import annotations

import json

import pytest

from stepline.aws.scheduler import at_expression, due_ms
from tests.contract.helpers import take

S = 1000


def schedule_of(aws, name: str) -> dict:
    names = aws.names
    return aws.clients["scheduler"].get_schedule(Name=name, GroupName=names.schedule_group)


def test_at_expression_is_utc_and_rounds_up():
    assert at_expression(1_800_000_000_000) == "at(2027-01-15T08:00:00)"
    assert at_expression(1_800_000_000_001) == "at(2027-01-15T08:00:01)"
    assert due_ms({"ScheduleExpression": "at(2027-01-15T08:00:01)"}) == 1_800_000_001_000
    assert due_ms({"ScheduleExpression": "rate(1 minute)"}) is None


def test_schedule_is_a_one_time_send_to_the_work_queue(aws, clock):
    body = {"kind": "wake", "run_id": "r1", "n": 2**53 - 1}
    aws.timers.schedule("wake-r1", clock.now_ms() + 3_600 * S + 250, body)

    got = schedule_of(aws, "wake-r1")
    names = aws.names
    assert got["ScheduleExpression"] == at_expression(clock.now_ms() + 3_600 * S + 250)
    assert got["ScheduleExpressionTimezone"] == "UTC"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert got["ActionAfterCompletion"] == "DELETE"
    assert got["Target"]["Arn"] == names.queue_arn
    assert got["Target"]["RoleArn"] == names.scheduler_role_arn
    assert json.loads(got["Target"]["Input"]) == body


def test_pump_fires_due_schedules_in_due_order(aws, clock):
    t = clock.now_ms()
    # Names sort opposite to due times, so order can only come from the due time.
    for i, offset in enumerate([30, 10, 20]):
        aws.timers.schedule(f"z{9 - i}", t + offset * S, {"due": offset})

    clock.advance(60 * S)
    assert aws.timers.fire_due(clock.now_ms()) == 3

    received = [m.body["due"] for m in aws.queue.receive(10, 30)]
    assert received == [10, 20, 30]


def test_pump_never_fires_early_even_by_a_millisecond(aws, clock):
    due = clock.now_ms() + 1_500  # mid-second: at() says +2 s, the pump keeps the exact ms
    aws.timers.schedule("sub-second", due, {"n": 1})

    assert aws.timers.fire_due(due - 1) == 0
    assert take(aws.queue) == []
    assert aws.timers.fire_due(due) == 1
    assert take(aws.queue) == [{"n": 1}]


def test_fired_schedules_are_deleted(aws, clock):
    aws.timers.schedule("once", clock.now_ms() + S, {"n": 1})
    aws.timers.fire_due(clock.now_ms() + S)

    with pytest.raises(aws.clients["scheduler"].exceptions.ResourceNotFoundException):
        schedule_of(aws, "once")
    assert aws.timers.fire_due(clock.now_ms() + 10 * S) == 0


def test_replace_updates_the_one_schedule(aws, clock, calls):
    t = clock.now_ms()
    aws.timers.schedule("debounce", t + 10 * S, {"v": 1})

    _, counts = calls.during(aws.timers.schedule, "debounce", t + 20 * S, {"v": 2})

    assert counts == {"CreateSchedule": 1, "UpdateSchedule": 1}
    got = schedule_of(aws, "debounce")
    assert json.loads(got["Target"]["Input"]) == {"v": 2}
    assert got["ActionAfterCompletion"] == "DELETE"


def test_cancel_of_a_missing_schedule_is_quiet(aws):
    aws.timers.cancel("never-was")


def test_schedules_outside_our_shape_are_left_alone(aws, clock):
    """Recurring schedules in the group (cron triggers) are not timers: the pump skips them."""
    names = aws.names
    aws.clients["scheduler"].create_schedule(
        Name="cron-trigger",
        GroupName=names.schedule_group,
        ScheduleExpression="cron(0/5 * * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": names.queue_arn, "RoleArn": names.scheduler_role_arn, "Input": "{}"},
    )
    assert aws.timers.fire_due(clock.now_ms() + 10**12) == 0
    assert schedule_of(aws, "cron-trigger")["Name"] == "cron-trigger"
