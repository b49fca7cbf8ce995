"""Durations, sleep instants and Retry-After (docs/protocol.md §4.1, §6.1, §6.4)."""

from __future__ import annotations

import datetime

import pytest
from inngest._internal import transforms

from stepline.protocol import (
    ProtocolError,
    format_duration,
    parse_duration_ms,
    parse_retry_after_ms,
    parse_sleep_until_ms,
)

NOW = 1_795_382_807_469  # a captured event timestamp (2026-11-22)
DAY = 86_400_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2h30m10s", (2 * 3600 + 30 * 60 + 10) * 1000),
        ("1d", DAY),
        ("1w", 7 * DAY),
        ("2d", 2 * DAY),
        ("500ms", 500),
        ("1.5h", 5_400_000),
        ("10s", 10_000),
        ("5m", 300_000),
        ("1m30s", 90_000),
        ("1h0m0s", 3_600_000),
        (".5s", 500),
        ("1500us", 1),
        ("1500µs", 1),
        ("1500μs", 1),
        ("999999ns", 0),
        ("1000000ns", 1),
        ("0", 0),
        ("0s", 0),
        ("-5s", -5000),
        ("1w2d3h4m5s6ms", 7 * DAY + 2 * DAY + 3 * 3_600_000 + 4 * 60_000 + 5_000 + 6),
    ],
)
def test_parse_duration(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["", "5", "abc", "1x", "1.5", "h", "5 s", "s5", "1h-5m", "--1s", "1e3s"])
def test_parse_duration_rejects_naming_the_value(bad):
    with pytest.raises(ProtocolError) as info:
        parse_duration_ms(bad)
    assert repr(bad) in info.value.message
    assert info.value.status == 400


def test_parse_duration_rejects_go_overflow():
    with pytest.raises(ProtocolError, match="out of range"):
        parse_duration_ms("300000000h")


@pytest.mark.parametrize(
    ("ms", "text"),
    [(7 * DAY, "1w"), (14 * DAY, "2w"), (2 * DAY, "2d"), (3_600_000, "1h"), (300_000, "5m"),
     (10_000, "10s"), (90_000, "90s"), (8 * DAY, "8d"), (1500, "1500ms"), (0, "0s"), (-60_000, "-1m")],
)
def test_format_duration(ms, text):
    assert format_duration(ms) == text
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("ms", [1000, 59_000, 60_000, 3_600_000, 5_400_000, DAY, 3 * DAY, 7 * DAY, 10 * DAY])
def test_format_duration_matches_python_sdk(ms):
    assert format_duration(ms) == transforms.to_duration_str(ms)


def test_sleep_python_sends_an_absolute_instant():
    wake = parse_sleep_until_ms("2026-11-22T21:27:17.065Z", NOW)
    expected = datetime.datetime(2026, 11, 22, 21, 27, 17, 65_000, tzinfo=datetime.timezone.utc)
    assert wake == int(expected.timestamp() * 1000)


def test_sleep_ts_sends_a_duration():
    assert parse_sleep_until_ms("30s", NOW) == NOW + 30_000


def test_sleep_until_ts_date_and_offsets():
    wake = parse_sleep_until_ms("2030-01-02T03:04:05.000Z", NOW)
    assert wake == int(datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    plus_two = parse_sleep_until_ms("2030-01-02T05:04:05+02:00", NOW)
    assert plus_two == wake
    nanos = parse_sleep_until_ms("2030-01-02T03:04:05.123456789Z", NOW)
    assert nanos == wake + 123


def test_sleep_in_the_past_wakes_now():
    assert parse_sleep_until_ms("2020-01-01T00:00:00Z", NOW) == NOW
    assert parse_sleep_until_ms("-10s", NOW) == NOW


def test_sleep_long_duration_is_not_mistaken_for_a_date():
    # 10+ characters but not a date: it is a duration.
    assert parse_sleep_until_ms("1h30m10s50ms", NOW) == NOW + 5_410_050


def test_sleep_rejects_garbage():
    with pytest.raises(ProtocolError, match="not-a-time"):
        parse_sleep_until_ms("not-a-time", NOW)


def test_retry_after_seconds_ts_form():
    assert parse_retry_after_ms("90", NOW) == NOW + 90_000
    assert parse_retry_after_ms(" 90 ", NOW) == NOW + 90_000


def test_retry_after_python_iso_form():
    at = parse_retry_after_ms("2026-11-22T21:28:24.215Z", NOW)
    expected = datetime.datetime(2026, 11, 22, 21, 28, 24, 215_000, tzinfo=datetime.timezone.utc)
    assert at == int(expected.timestamp() * 1000)


def test_retry_after_http_date():
    now = int(datetime.datetime(2015, 10, 21, 7, 0, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    assert parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now) == now + 28 * 60_000


def test_retry_after_is_clamped():
    assert parse_retry_after_ms("9999999", NOW) == NOW + 7 * DAY
    assert parse_retry_after_ms("2099-01-01T00:00:00Z", NOW) == NOW + 7 * DAY
    assert parse_retry_after_ms("2001-01-01T00:00:00Z", NOW) == NOW
    assert parse_retry_after_ms("-5", NOW) == NOW
    assert parse_retry_after_ms("0", NOW) == NOW


@pytest.mark.parametrize("bad", ["", "soon", "12345678", "1.5", "later please, maybe"])
def test_retry_after_unparsable_is_none(bad):
    assert parse_retry_after_ms(bad, NOW) is None
