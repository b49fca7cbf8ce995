"""Timers: cron schedules. Each fire time puts the body on the queue once, with ``"at"``.

Crons here are the minute-granular kind EventBridge Scheduler can express, so that every
backend runs the same cases. The default test clock starts at 2027-01-15T08:00:00Z (a Friday,
winter in Europe), on a whole hour.
"""

from __future__ import annotations

import time

import pytest

from stepline.engine.crons import scheduled_ms
from stepline.engine.records import CronSchedule
from stepline.local import local_backend

from .helpers import take

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
WINTER_0800Z = 1_800_000_000_000  # 2027-01-15T08:00:00Z
SUMMER_0600Z = 1_815_717_600_000  # 2027-07-16T06:00:00Z


def cron(name: str, expression: str, tz: str = "UTC", **body) -> CronSchedule:
    return CronSchedule(name=name, cron=expression, timezone=tz, body=body or {"cron": name})


def fired(queue) -> list[dict]:
    """What reached the queue, each fire's due time as ``at``: the local driver adds it; the
    pump, as EventBridge Scheduler, puts it for the ``scheduled_time`` placeholder."""
    bodies = take(queue)
    for body in bodies:
        if "scheduled_time" in body:
            body["at"] = scheduled_ms(body.pop("scheduled_time"))
    return bodies


def fire_at(backend, clock, when: int) -> list[dict]:
    """Move the clock to ``when``, fire what is due, and return what reached the queue."""
    clock.set(when)
    backend.timers.fire_due(when)
    return fired(backend.queue)


def test_first_fire_time_is_strictly_after_now(backend, clock):
    t = clock.now_ms()
    assert t % HOUR == 0
    backend.timers.schedule_cron(cron("every-5", "*/5 * * * *", fn_id="shop-report", n=2**53 - 1))

    # t itself matches */5, but it is not after the time of scheduling.
    assert backend.timers.fire_due(t) == 0
    assert backend.timers.fire_due(t + 5 * MIN - 1) == 0
    assert fired(backend.queue) == []

    clock.set(t + 5 * MIN)
    assert backend.timers.fire_due(t + 5 * MIN) == 1
    assert fired(backend.queue) == [{"fn_id": "shop-report", "n": 2**53 - 1, "at": t + 5 * MIN}]


def test_each_fire_time_is_delivered_once(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule_cron(cron("every-5", "*/5 * * * *"))

    clock.set(t + 5 * MIN)
    assert backend.timers.fire_due(t + 5 * MIN) == 1
    assert backend.timers.fire_due(t + 5 * MIN) == 0
    clock.set(t + 9 * MIN)
    assert backend.timers.fire_due(t + 9 * MIN) == 0
    assert fired(backend.queue) == [{"cron": "every-5", "at": t + 5 * MIN}]

    # And the schedule carries on.
    assert fire_at(backend, clock, t + 10 * MIN) == [{"cron": "every-5", "at": t + 10 * MIN}]
    assert fire_at(backend, clock, t + 15 * MIN) == [{"cron": "every-5", "at": t + 15 * MIN}]


def test_a_late_pump_delivers_the_fire_time_not_its_own(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule_cron(cron("hourly", "0 * * * *"))

    assert fire_at(backend, clock, t + HOUR + 42 * S) == [{"cron": "hourly", "at": t + HOUR}]
    assert fire_at(backend, clock, t + HOUR + 59 * MIN) == []
    assert fire_at(backend, clock, t + 2 * HOUR) == [{"cron": "hourly", "at": t + 2 * HOUR}]


def test_the_schedules_body_is_left_as_given(backend, clock):
    schedule = cron("every-1", "* * * * *", nested={"list": [1, 2.5, None, "x"]}, flag=False)
    body = {"nested": {"list": [1, 2.5, None, "x"]}, "flag": False}
    backend.timers.schedule_cron(schedule)

    (got,) = fire_at(backend, clock, clock.now_ms() + MIN)
    assert got == {**body, "at": clock.now_ms()}
    assert schedule.body == body


def test_scheduling_a_name_again_replaces_it(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule_cron(cron("report", "*/5 * * * *", version=1))
    backend.timers.schedule_cron(cron("report", "*/5 * * * *", version=2))

    assert backend.timers.list_crons() == ["report"]
    assert fire_at(backend, clock, t + 5 * MIN) == [{"version": 2, "at": t + 5 * MIN}]

    # A new expression replaces the old one's fire times.
    backend.timers.schedule_cron(cron("report", "0 * * * *", version=3))
    assert fire_at(backend, clock, t + 10 * MIN) == []
    assert fire_at(backend, clock, t + 55 * MIN) == []
    assert fire_at(backend, clock, t + HOUR) == [{"version": 3, "at": t + HOUR}]
    assert backend.timers.list_crons() == ["report"]


def test_list_crons(backend, clock):
    assert backend.timers.list_crons() == []
    for name in ("cron-b", "cron-a", "cron-c"):
        backend.timers.schedule_cron(cron(name, "0 9 * * *"))
    # One-time timers are not crons.
    backend.timers.schedule("timer-x", clock.now_ms() + MIN, {"n": 1})

    assert sorted(backend.timers.list_crons()) == ["cron-a", "cron-b", "cron-c"]


def test_cancel_removes_a_cron(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule_cron(cron("c1", "* * * * *"))
    backend.timers.schedule_cron(cron("c2", "* * * * *"))

    backend.timers.cancel("c1")
    backend.timers.cancel("c1")  # again: no error
    backend.timers.cancel("never-scheduled")

    assert backend.timers.list_crons() == ["c2"]
    assert fire_at(backend, clock, t + MIN) == [{"cron": "c2", "at": t + MIN}]
    backend.timers.cancel("c2")
    assert backend.timers.list_crons() == []
    assert fire_at(backend, clock, t + 2 * MIN) == []
    assert fire_at(backend, clock, t + DAY) == []


def test_crons_and_timers_fire_together(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule_cron(cron("every-5", "*/5 * * * *"))
    backend.timers.schedule("timer", t + 7 * MIN, {"timer": True})

    clock.set(t + 4 * MIN)
    assert backend.timers.fire_due(t + 4 * MIN) == 0
    clock.set(t + 5 * MIN)
    assert backend.timers.fire_due(t + 5 * MIN) == 1
    clock.set(t + 8 * MIN)
    assert backend.timers.fire_due(t + 8 * MIN) == 1
    clock.set(t + 10 * MIN)
    assert backend.timers.fire_due(t + 10 * MIN) == 1
    bodies = fired(backend.queue)
    assert sorted(bodies, key=lambda b: b.get("at", t + 7 * MIN)) == [
        {"cron": "every-5", "at": t + 5 * MIN},
        {"timer": True},
        {"cron": "every-5", "at": t + 10 * MIN},
    ]


def test_a_cron_fires_in_its_zone_in_winter(backend, clock):
    clock.set(WINTER_0800Z)
    backend.timers.schedule_cron(cron("paris", "0 9 * * *", "Europe/Paris"))
    backend.timers.schedule_cron(cron("utc", "0 9 * * *", "UTC"))

    # 09:00 in Paris is 08:00 UTC in January: the instant of scheduling, so not due until the
    # next day. 09:00 UTC is an hour away.
    assert fire_at(backend, clock, WINTER_0800Z + HOUR) == [{"cron": "utc", "at": WINTER_0800Z + HOUR}]
    assert fire_at(backend, clock, WINTER_0800Z + DAY - 1) == []
    assert fire_at(backend, clock, WINTER_0800Z + DAY) == [{"cron": "paris", "at": WINTER_0800Z + DAY}]


def test_a_cron_fires_in_its_zone_in_summer(backend, clock):
    clock.set(SUMMER_0600Z)
    backend.timers.schedule_cron(cron("paris", "0 9 * * *", "Europe/Paris"))

    assert fire_at(backend, clock, SUMMER_0600Z + HOUR - 1) == []
    # 09:00 in Paris is 07:00 UTC in July.
    assert fire_at(backend, clock, SUMMER_0600Z + HOUR) == [{"cron": "paris", "at": SUMMER_0600Z + HOUR}]


def test_day_of_week_in_a_zone(backend, clock):
    # 2027-01-15 is a Friday. In Tokyo (UTC+9) it is already 17:00 Friday; Monday 00:30 there
    # is Sunday 15:30 UTC.
    clock.set(WINTER_0800Z)
    backend.timers.schedule_cron(cron("tokyo-monday", "30 0 * * 1", "Asia/Tokyo"))
    sunday_1530z = WINTER_0800Z + 2 * DAY + 7 * HOUR + 30 * MIN

    assert fire_at(backend, clock, sunday_1530z - 1) == []
    assert fire_at(backend, clock, sunday_1530z) == [{"cron": "tokyo-monday", "at": sunday_1530z}]


def test_bad_names_and_crons_are_refused(backend, clock):
    for bad in ["x" * 65, "", "has space", "slash/inside"]:
        with pytest.raises(ValueError):
            backend.timers.schedule_cron(cron(bad, "* * * * *"))
    for bad in ["every minute", "* * *", "61 * * * *"]:
        with pytest.raises(ValueError):
            backend.timers.schedule_cron(cron("bad-cron", bad))
    assert backend.timers.list_crons() == []


# -- the local driver --------------------------------------------------------------------------
# What only the local family promises: the dev server may be stopped for days, and its timer
# thread is the only thing that fires crons.


@pytest.fixture
def local(tmp_path, clock):
    with local_backend(str(tmp_path / "crons.db"), clock) as backend:
        yield backend


def test_sqlite_missed_fire_times_fire_once_as_the_latest(local, clock):
    t = clock.now_ms()
    local.timers.schedule_cron(cron("minutely", "* * * * *"))
    local.timers.schedule_cron(cron("daily", "0 12 * * *"))

    # A week with the dev server stopped, then it comes back at 12:00:30.
    back = t + 7 * DAY + 4 * HOUR + 30 * S
    clock.set(back)
    assert local.timers.fire_due(back) == 2
    assert sorted(take(local.queue), key=lambda b: b["cron"]) == [
        {"cron": "daily", "at": back - 30 * S},
        {"cron": "minutely", "at": back - 30 * S},
    ]
    assert local.timers.get_cron("minutely")[0] == back + 30 * S
    assert local.timers.get_cron("daily")[0] == back - 30 * S + DAY
    assert local.timers.fire_due(back) == 0


def test_sqlite_a_year_of_missed_seconds_is_found_quickly(local, clock):
    t = clock.now_ms()
    local.timers.schedule_cron(cron("every-second", "* * * * * *"))
    year = 365 * DAY
    clock.set(t + year + 500)

    started = time.monotonic()
    assert local.timers.fire_due(t + year + 500) == 1
    assert time.monotonic() - started < 1.0
    assert take(local.queue) == [{"cron": "every-second", "at": t + year}]
    assert local.timers.get_cron("every-second")[0] == t + year + S


def test_sqlite_rescheduling_the_same_cron_keeps_its_due_fire_time(local, clock):
    # Re-syncing an app schedules its crons again; a fire time due but not yet fired survives.
    t = clock.now_ms()
    local.timers.schedule_cron(cron("every-5", "*/5 * * * *", version=1))
    clock.set(t + 5 * MIN + 100)
    local.timers.schedule_cron(cron("every-5", "*/5 * * * *", version=2))

    assert local.timers.get_cron("every-5")[0] == t + 5 * MIN
    assert local.timers.fire_due(clock.now_ms()) == 1
    assert take(local.queue) == [{"version": 2, "at": t + 5 * MIN}]


def test_sqlite_next_fire_at_sees_crons(local, clock):
    t = clock.now_ms()
    assert local.timers.next_fire_at() is None
    local.timers.schedule_cron(cron("hourly", "0 * * * *"))
    assert local.timers.next_fire_at() == t + HOUR
    local.timers.schedule("soon", t + MIN, {"n": 1})
    assert local.timers.next_fire_at() == t + MIN

    clock.set(t + HOUR)
    assert local.timers.fire_due(t + HOUR) == 2
    assert local.timers.next_fire_at() == t + 2 * HOUR
    local.timers.cancel("hourly")
    assert local.timers.next_fire_at() is None


def test_sqlite_cron_zone_comes_from_the_schedule_only(local):
    with pytest.raises(ValueError):
        local.timers.schedule_cron(cron("tz-prefix", "TZ=Europe/Paris 0 9 * * *"))
    with pytest.raises(ValueError):
        local.timers.schedule_cron(cron("bad-zone", "0 9 * * *", "Mars/Olympus_Mons"))
    with pytest.raises(ValueError):
        local.timers.schedule_cron(cron("never", "0 0 30 2 *"))  # 30 February
    assert local.timers.list_crons() == []
