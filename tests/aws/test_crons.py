"""Cron triggers: translated for EventBridge Scheduler, kept in their own group, and fired by the
pump on moto."""

from __future__ import annotations

import json

import pytest

from stepline.aws.cron import to_aws_cron
from stepline.aws.scheduler import CRON_RETRY_POLICY, SCHEDULED_TIME, scheduled_time
from stepline.engine.records import CronSchedule
from tests.contract.helpers import take

MIN = 60_000


@pytest.mark.parametrize(
    ("cron", "aws"),
    [
        ("0 9 * * 1", "cron(0 9 ? * MON *)"),
        ("*/5 * * * *", "cron(0/5 * * * ? *)"),
        ("0 0 1 * *", "cron(0 0 1 * ? *)"),
        ("30 8 * * 1-5", "cron(30 8 ? * MON,TUE,WED,THU,FRI *)"),
        ("0 0 * * 5-7", "cron(0 0 ? * FRI,SAT,SUN *)"),
        ("0 0 * * 0", "cron(0 0 ? * SUN *)"),
        ("0 0 * * 5#3", "cron(0 0 ? * 6#3 *)"),
        ("0 0 1 */3 *", "cron(0 0 1 1/3 ? *)"),
        ("0 */5 * * * *", "cron(0/5 * * * ? *)"),  # six fields: seconds first
        ("@daily", "cron(0 0 * * ? *)"),
    ],
)
def test_translation(cron, aws):
    assert to_aws_cron(cron) == aws


@pytest.mark.parametrize("cron", ["0 0 1 * 1", "30 * * * * *", "* * *", "every minute"])
def test_what_scheduler_cannot_express_is_refused(cron):
    with pytest.raises(ValueError):
        to_aws_cron(cron)


def test_crons_are_checked_as_the_local_family_checks_them(aws):
    for cron, zone in [("TZ=Europe/Paris 0 9 * * 1", "UTC"), ("0 9 * * 1", "Mars/Olympus"),
                       ("0 0 30 2 *", "UTC"), ("not a cron", "UTC")]:
        with pytest.raises(ValueError):
            aws.timers.schedule_cron(CronSchedule("c", cron, zone, {}))
    assert aws.timers.list_crons() == []


def test_cron_schedule_on_scheduler(aws):
    schedule = CronSchedule(name="cron-shop-report", cron="0 9 * * 1", timezone="Europe/Paris",
                            body={"kind": "cron", "fn_id": "shop-report"})
    aws.timers.schedule_cron(schedule)
    aws.timers.schedule_cron(schedule)  # again: replaces

    names = aws.names
    got = aws.clients["scheduler"].get_schedule(Name=schedule.name, GroupName=names.cron_group)
    assert got["ScheduleExpression"] == "cron(0 9 ? * MON *)"
    assert got["ScheduleExpressionTimezone"] == "Europe/Paris"
    # The Input is fixed: the fire's due time comes from Scheduler's placeholder, and a fire not
    # delivered within minutes is dropped rather than retried for a day (the default).
    assert json.loads(got["Target"]["Input"]) == {**schedule.body, "scheduled_time": SCHEDULED_TIME}
    assert got["Target"]["RetryPolicy"] == CRON_RETRY_POLICY
    assert got["Target"]["Arn"] == names.queue_arn
    assert aws.timers.list_crons() == ["cron-shop-report"]


def test_pump_fires_crons_with_their_time(aws, clock):
    t = clock.now_ms()
    aws.timers.schedule_cron(CronSchedule("every-5", "*/5 * * * *", "UTC", {"fn_id": "f"}))
    aws.timers.schedule("timer", t + 7 * MIN, {"timer": True})

    assert aws.timers.fire_due(t + 4 * MIN) == 0
    assert aws.timers.fire_due(t + 5 * MIN) == 1
    assert aws.timers.fire_due(t + 11 * MIN) == 2
    bodies = [m.body for m in aws.queue.receive(10, 30)]
    assert bodies == [
        {"fn_id": "f", "scheduled_time": scheduled_time(t + 5 * MIN)},
        {"timer": True},
        {"fn_id": "f", "scheduled_time": scheduled_time(t + 10 * MIN)},
    ]
    assert aws.timers.fire_due(t + 11 * MIN) == 0  # each fire time is delivered once


def test_missed_fire_times_coalesce_into_the_latest(aws, clock):
    t = clock.now_ms()
    aws.timers.schedule_cron(CronSchedule("minutely", "* * * * *", "UTC", {"n": 1}))

    assert aws.timers.fire_due(t + 7 * 24 * 60 * MIN + 30_000) == 1
    assert take(aws.queue) == [{"n": 1, "scheduled_time": scheduled_time(t + 7 * 24 * 60 * MIN)}]


def test_scheduling_the_same_cron_again_keeps_its_next_fire(aws, clock):
    t = clock.now_ms()
    aws.timers.schedule_cron(CronSchedule("hourly", "0 * * * *", "UTC", {"v": 1}))
    clock.advance(30 * MIN)
    aws.timers.schedule_cron(CronSchedule("hourly", "0 * * * *", "UTC", {"v": 2}))  # a re-sync
    assert aws.timers.fire_due(t + 60 * MIN) == 1
    assert take(aws.queue) == [{"v": 2, "scheduled_time": scheduled_time(t + 60 * MIN)}]

    aws.timers.schedule_cron(CronSchedule("hourly", "30 * * * *", "UTC", {"v": 3}))  # changed
    assert aws.timers.fire_due(t + 89 * MIN) == 0
    assert aws.timers.fire_due(t + 90 * MIN) == 1


def test_cancel_removes_crons_and_timers(aws, clock):
    t = clock.now_ms()
    aws.timers.schedule_cron(CronSchedule("c1", "* * * * *", "UTC", {"n": 1}))
    aws.timers.schedule_cron(CronSchedule("c2", "* * * * *", "UTC", {"n": 2}))
    aws.timers.schedule("t1", t + MIN, {"n": 3})

    aws.timers.cancel("c1")
    aws.timers.cancel("t1")

    assert aws.timers.list_crons() == ["c2"]
    assert aws.timers.fire_due(t + MIN) == 1
    assert take(aws.queue) == [{"n": 2, "scheduled_time": scheduled_time(t + MIN)}]


def test_the_placeholder_is_replaced_as_scheduler_replaces_it(aws, clock):
    t = clock.now_ms()
    aws.timers.schedule_cron(CronSchedule("hourly", "0 * * * *", "UTC", {"n": 1}))
    aws.timers.fire_due(t + 60 * MIN + 42_000)  # fired late in its minute
    [body] = take(aws.queue)
    assert body["scheduled_time"] == scheduled_time(t + 60 * MIN)
    assert body["scheduled_time"].endswith(":00Z") and len(body["scheduled_time"]) == 20


def test_a_re_sync_keeps_the_short_retry_policy(aws, clock):
    aws.timers.schedule_cron(CronSchedule("hourly", "0 * * * *", "UTC", {"v": 1}))
    aws.timers.schedule_cron(CronSchedule("hourly", "0 * * * *", "UTC", {"v": 2}))  # update
    aws.timers.fire_due(clock.now_ms() + 60 * MIN)  # the pump moves the cron on: update again
    got = aws.clients["scheduler"].get_schedule(Name="hourly", GroupName=aws.names.cron_group)
    assert got["Target"]["RetryPolicy"] == CRON_RETRY_POLICY
