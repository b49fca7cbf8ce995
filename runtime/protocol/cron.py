"""Cron triggers as the SDKs register them.

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


@dataclass(frozen=True)
class CronSpec:
    expression: str
    timezone: str  # IANA name; "UTC" when the cron names none

    @property
    def six_fields(self) -> bool:
        return len(self.expression.split()) == 6

    def next_after_ms(self, after_ms: int) -> int:
        """The first fire time strictly after ``after_ms`` (epoch ms), in the cron's zone."""
        zone = zoneinfo.ZoneInfo(self.timezone)
        start = datetime.datetime.fromtimestamp(after_ms / 1000, tz=zone)
        from croniter import croniter  # see parse_cron

        it = croniter(self.expression, start, second_at_beginning=self.six_fields)
        nxt: datetime.datetime = it.get_next(datetime.datetime)
        return int(nxt.timestamp() * 1000)


def parse_cron(cron: str) -> CronSpec:
    """Split off the zone and check the expression. Raises ValueError naming what is wrong."""
    if not isinstance(cron, str) or not cron.strip():
        raise ValueError("must be a non-empty cron expression")
    text = cron.strip()
    timezone = "UTC"
    match = _TZ_PREFIX.match(text)
    if match:
        timezone = match.group(1)
        text = text[match.end() :].strip()
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r} in cron {cron!r}") from None
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
