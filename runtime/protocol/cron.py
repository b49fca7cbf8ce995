"""Cron expressions: the one place they are parsed and evaluated.

Triggers as the SDKs register them (``parse_cron``), the schedules the engine hands its
``Timers`` (``schedule_spec``), and the fire times both timer families compute
(``CronSpec.next_after_ms``, ``CronSpec.latest_fire_at``) all go through here, so a cron
accepted in dev is accepted on AWS and fires at the same times. ``stepline.aws.cron`` only
rewrites a parsed cron in EventBridge Scheduler's dialect.

A cron may start with ``TZ=Zone `` (or ``CRON_TZ=Zone ``), passed through verbatim by both
SDKs. The Go server parses crons with robfig/cron in "seconds optional" mode, so a six-field
cron has its seconds *first*; croniter needs to be told so.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from dataclasses import dataclass

_TZ_PREFIX = re.compile(r"^(?:CRON_)?TZ=(\S+)\s+")
# Any zone prefix at all, however malformed: refused where the zone is given apart.
_ANY_TZ_PREFIX = re.compile(r"^\s*(?:CRON_)?TZ=")
# The descriptors croniter accepts, as the five fields they stand for.
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSpec:
    expression: str  # five or six fields (seconds first), or a descriptor such as @daily
    timezone: str  # IANA name; "UTC" when the cron names none

    @property
    def six_fields(self) -> bool:
        return len(self.expression.split()) == 6

    def fields(self) -> list[str]:
        """The expression's fields, a descriptor spelled out as its five."""
        text = self.expression.strip()
        return _MACROS.get(text.lower(), text).split()

    def next_after_ms(self, after_ms: int) -> int:
        """The first fire time strictly after ``after_ms`` (epoch ms), in the cron's zone."""
        zone = zoneinfo.ZoneInfo(self.timezone)
        start = datetime.datetime.fromtimestamp(after_ms / 1000, tz=zone)
        from croniter import croniter  # see parse_cron

        it = croniter(self.expression, start, second_at_beginning=self.six_fields)
        nxt: datetime.datetime = it.get_next(datetime.datetime)
        return int(nxt.timestamp() * 1000)

    def latest_fire_at(self, first_due: int, now_ms: int) -> int:
        """The last fire time in ``[first_due, now_ms]``, where ``first_due`` is a fire time.

        Both timer families coalesce fire times missed while nothing fired them (the dev server
        was stopped, the machine slept) into this one, as a cron daemon coming back would."""
        if self.next_after_ms(first_due) > now_ms:
            return first_due  # the usual case: the timers fired since the previous fire time
        # Several were missed. Rather than walk through them (a per-second cron over a stopped
        # week is 600k steps), bisect on "the next fire time after x is still due": true at
        # first_due, false at now_ms; where it turns false, the next fire time after the last
        # true x is the latest one due.
        lo, hi = first_due, now_ms
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.next_after_ms(mid) <= now_ms:
                lo = mid
            else:
                hi = mid
        return self.next_after_ms(lo)


def _check_zone(zone: str, cron: str) -> None:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r} in cron {cron!r}") from None


def parse_cron(cron: str) -> CronSpec:
    """A trigger's cron as registered: split off the zone and check the expression. Raises
    ValueError naming what is wrong."""
    if not isinstance(cron, str) or not cron.strip():
        raise ValueError("must be a non-empty cron expression")
    text = cron.strip()
    timezone = "UTC"
    match = _TZ_PREFIX.match(text)
    if match:
        timezone = match.group(1)
        text = text[match.end() :].strip()
        _check_zone(timezone, cron)
    fields = text.split()
    descriptor = text.startswith("@")
    if not descriptor and len(fields) not in (5, 6):
        raise ValueError(f"invalid cron expression {cron!r}: expected 5 or 6 fields")
    # Imported on the first cron, not with the module: the sync models import this module, and
    # croniter (with dateutil) is a cost every process would pay whether it meets a cron or not.
    from croniter import croniter

    if not croniter.is_valid(text, second_at_beginning=len(fields) == 6):
        raise ValueError(f"invalid cron expression {cron!r}")
    return CronSpec(expression=text, timezone=timezone)


def schedule_spec(cron: str, timezone: str, now_ms: int) -> CronSpec:
    """The checked cron of a ``CronSchedule`` (the zone apart, as the engine hands it to its
    ``Timers``); ValueError naming what is wrong. The zone comes only from ``timezone``: a
    ``TZ=`` prefix is refused rather than silently overriding it. A cron that parses but never
    fires after ``now_ms`` (30 February) is refused too."""
    if isinstance(cron, str) and _ANY_TZ_PREFIX.match(cron):
        raise ValueError(f"cron {cron!r}: give the zone in CronSchedule.timezone, not a TZ= prefix")
    parsed = parse_cron(cron)
    zone = timezone or "UTC"
    _check_zone(zone, cron)
    spec = CronSpec(expression=parsed.expression, timezone=zone)
    spec.next_after_ms(now_ms)
    return spec
