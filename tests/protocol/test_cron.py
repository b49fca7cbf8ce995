"""Cron expressions, parsed and evaluated in one module for triggers and both timer families."""

from __future__ import annotations

import pytest

from stepline.protocol.cron import CronSpec, parse_cron, schedule_spec

NOW = 1_800_000_000_000  # 2027-01-15T08:00:00Z, a Friday


def test_a_trigger_cron_carries_its_zone_apart():
    assert parse_cron("TZ=Europe/Paris 0 9 * * 1") == CronSpec("0 9 * * 1", "Europe/Paris")
    assert parse_cron("CRON_TZ=Asia/Tokyo  */5 * * * *") == CronSpec("*/5 * * * *", "Asia/Tokyo")
    assert parse_cron(" @daily ") == CronSpec("@daily", "UTC")


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("", "non-empty"),
        ("x", "invalid cron expression 'x'"),
        ("* * * *", "expected 5 or 6 fields"),
        ("61 * * * *", "invalid cron expression"),
        ("TZ=Mars/Base 0 9 * * 1", "unknown time zone 'Mars/Base'"),
    ],
)
def test_a_bad_trigger_cron_is_named(cron, problem):
    with pytest.raises(ValueError, match=problem):
        parse_cron(cron)


def test_a_schedule_takes_its_zone_only_apart():
    assert schedule_spec("0 9 * * 1", "Europe/Paris", NOW) == CronSpec("0 9 * * 1", "Europe/Paris")
    assert schedule_spec("0 9 * * 1", "", NOW).timezone == "UTC"
    with pytest.raises(ValueError, match="not a TZ= prefix"):
        schedule_spec("TZ=Europe/Paris 0 9 * * 1", "UTC", NOW)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        schedule_spec("0 9 * * 1", "Mars/Olympus", NOW)
    with pytest.raises(ValueError):
        schedule_spec("0 0 30 2 *", "UTC", NOW)  # parses, never fires


def test_six_fields_have_seconds_first():
    spec = parse_cron("30 0 9 * * *")
    assert spec.six_fields
    assert spec.next_after_ms(NOW) == NOW + 3_600_000 + 30_000  # 09:00:30 UTC


def test_descriptors_spell_out_as_five_fields():
    assert CronSpec("@hourly", "UTC").fields() == ["0", "*", "*", "*", "*"]
    assert CronSpec("@Weekly", "UTC").fields() == ["0", "0", "*", "*", "0"]
    assert CronSpec("0 9 * * 1", "UTC").fields() == ["0", "9", "*", "*", "1"]


def test_latest_fire_time_in_a_zone():
    spec = CronSpec("0 9 * * 5", "Europe/Paris")  # Fridays 09:00 Paris, 08:00 UTC in January
    week = 7 * 24 * 3_600_000
    assert spec.next_after_ms(NOW - 1) == NOW
    assert spec.latest_fire_at(NOW, NOW + week - 1) == NOW
    assert spec.latest_fire_at(NOW, NOW + 10 * week + 5) == NOW + 10 * week


def test_many_missed_fire_times_coalesce_without_walking_them():
    spec = CronSpec("* * * * * *", "UTC")  # every second
    week = 7 * 24 * 3_600_000
    assert spec.latest_fire_at(NOW, NOW + week + 500) == NOW + week
