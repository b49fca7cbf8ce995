"""Cron expressions as Inngest writes them, rewritten in EventBridge Scheduler's dialect.

Inngest crons are standard five-field crons (``min hour dom month dow``, Sunday = 0 or 7), or six
fields with seconds first. Scheduler wants ``cron(min hour dom month dow year)`` with Sunday = 1,
minute precision, and ``?`` in one of the two day fields. Parsing and fire times are
``stepline.protocol.cron``'s (the pump that stands in for Scheduler on moto evaluates the
original expression there, by the local driver's rules); this module only rewrites.
"""

from __future__ import annotations

import re

from stepline.protocol.cron import CronSpec

_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_FIELD = re.compile(r"[0-9A-Za-z,\-*/?#L]+")


def _fields(expr: str) -> list[str]:
    """Five fields, seconds dropped (Scheduler has minute precision: only second 0 fits)."""
    fields = CronSpec(expression=expr, timezone="UTC").fields()
    if len(fields) == 6:
        if fields[0] != "0":
            raise ValueError(f"cron {expr!r}: EventBridge Scheduler cannot fire at second {fields[0]}")
        fields = fields[1:]
    if len(fields) != 5 or not all(_FIELD.fullmatch(f) for f in fields):
        raise ValueError(f"cron {expr!r}: expected five or six fields")
    return fields


def _from_star(field: str, first: str) -> str:
    # Scheduler writes "every n from the start" as "0/n" (minutes, hours) or "1/n" (days, months).
    return f"{first}/{field[2:]}" if field.startswith("*/") else field


def _day_name(token: str) -> str:
    token = token.upper()
    if token in _DAYS:
        return token
    if token.isdigit() and int(token) <= 7:
        return _DAYS[int(token) % 7]
    raise ValueError(f"bad day of week {token!r}")


def _days_of_week(field: str) -> str:
    """Standard day-of-week (0-7, names, ranges, steps) as Scheduler names, expanded so that
    no range wraps around the week (Scheduler numbers Sunday 1, not 0)."""
    if field in ("*", "?"):
        return field
    if "#" in field:  # the n-th such day of the month
        day, nth = field.split("#", 1)
        return f"{_DAYS.index(_day_name(day)) + 1}#{nth}"
    if len(field) > 1 and field.upper().endswith("L"):  # the last such day of the month
        return f"{_DAYS.index(_day_name(field[:-1])) + 1}L"
    days: list[str] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            start, end = 0, 6
        elif "-" in span:
            lo, hi = span.split("-", 1)
            start = _DAYS.index(_day_name(lo))
            end = int(hi) if hi.isdigit() else _DAYS.index(_day_name(hi))  # 7 is Sunday too
            if end < start:  # FRI-MON runs through the weekend
                end += 7
        else:
            start = end = _DAYS.index(_day_name(span))
        for n in range(start, end + 1, int(step) if step else 1):
            if _DAYS[n % 7] not in days:
                days.append(_DAYS[n % 7])
    return ",".join(days)


def to_aws_cron(expr: str) -> str:
    """``cron(...)`` for EventBridge Scheduler; ValueError for what it cannot express."""
    minute, hour, dom, month, dow = _fields(expr)
    dow = _days_of_week(dow)
    if dow in ("*", "?"):
        dom, dow = ("*" if dom == "?" else dom), "?"
    elif dom in ("*", "?"):
        dom = "?"
    else:
        raise ValueError(f"cron {expr!r}: EventBridge Scheduler cannot restrict both day of month and day of week")
    fields = [
        _from_star(minute, "0"),
        _from_star(hour, "0"),
        _from_star(dom, "1"),
        _from_star(month, "1").upper(),
        dow,
        "*",
    ]
    return f"cron({' '.join(fields)})"
