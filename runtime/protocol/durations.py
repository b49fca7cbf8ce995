"""Durations and instants as the SDKs write them.

Python writes single-unit durations (``"1w"``, ``"10s"``), TS compound ones (``"2h30m10s"``),
and the Go server parses both with ``str2duration``: Go's ``time.ParseDuration`` plus the ``d``
and ``w`` units. Sleeps carry either such a duration or an absolute ISO instant in the op's
``name`` (docs/protocol.md §6.4), and error responses may carry ``Retry-After`` as seconds or a date.
"""

from __future__ import annotations

import datetime
import re
from fractions import Fraction

from stepline.protocol.errors import ProtocolError

_NS_PER_MS = 1_000_000
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU: Go accepts both spellings
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
# Longer unit spellings first so that "ms" is never read as "m" followed by a stray "s".
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d|w)")
# Go durations are int64 nanoseconds; anything longer is an overflow there, so refuse it here too.
_MAX_NS = (1 << 63) - 1

_SECONDS = re.compile(r"-?[0-9]+")
_WEEK_MS = 7 * 86_400_000
MAX_RETRY_AFTER_MS = _WEEK_MS

# How far back a wait may look for an event that arrived before it began (Stepline's
# ``opts.lookback`` on WaitForEvent, docs/steps/wait-for-event.md#look-back).
MAX_LOOKBACK_MS = 24 * 60 * 60 * 1000


def parse_duration_ms(s: str) -> int:
    """Milliseconds in a Go-style duration (``"2h30m10s"``, ``"1.5h"``, ``"500ms"``, ``"1w"``).

    A leading sign is allowed as in Go; the result is truncated toward zero to whole ms.
    """
    if not isinstance(s, str):
        raise ProtocolError(f"duration: must be a string, got {type(s).__name__}")
    text = s
    sign = 1
    if text.startswith(("+", "-")):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ProtocolError(f"invalid duration {s!r}")
    total = Fraction(0)
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ProtocolError(f"invalid duration {s!r}: expected <number><unit> with units w d h m s ms us ns")
        total += Fraction(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if total > _MAX_NS:
        raise ProtocolError(f"invalid duration {s!r}: out of range")
    ns = int(total)  # int() truncates toward zero, like Go's integer nanoseconds
    return sign * (ns // _NS_PER_MS)


def format_duration(ms: int) -> str:
    """``ms`` in the largest single unit that divides it evenly, as the Python SDK writes it.

    Values that are not whole seconds fall back to ``"<n>ms"`` (the Python SDK would refuse them;
    we still need to print them).
    """
    if ms < 0:
        return "-" + format_duration(-ms)
    if ms == 0:
        return "0s"
    for unit_ms, suffix in (
        (_WEEK_MS, "w"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ):
        if ms % unit_ms == 0:
            return f"{ms // unit_ms}{suffix}"
    return f"{ms}ms"


def parse_instant_ms(value: str) -> int | None:
    """Epoch ms of an RFC 3339 / ISO 8601 date or an HTTP date, or None if ``value`` is neither.

    A date without a zone is taken as UTC, which is what the Go server's ``dateutil`` does.
    """
    text = value.strip()
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        import email.utils  # an HTTP date: rare, and the module brings socket and calendar with it

        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    delta = parsed - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return delta // datetime.timedelta(milliseconds=1)


def parse_sleep_until_ms(value: str, now_ms: int) -> int:
    """The absolute wake time of a Sleep op whose ``name`` (or ``opts.duration``) is ``value``.

    Go's rule: a value of at least 10 characters that parses as a date is that instant (Python
    always sends one: ``"2026-11-22T21:27:17.065Z"``); anything else is a duration from now
    (TS: ``"30s"``). A past instant or a negative duration means "wake now".
    """
    if not isinstance(value, str):
        raise ProtocolError(f"sleep: must be a string duration or date, got {type(value).__name__}")
    if len(value) >= 10:
        instant = parse_instant_ms(value)
        if instant is not None:
            return max(instant, now_ms)
    try:
        duration = parse_duration_ms(value)
    except ProtocolError:
        raise ProtocolError(f"sleep: invalid duration or date {value!r}") from None
    return now_ms + max(duration, 0)


def parse_retry_after_ms(value: str, now_ms: int) -> int | None:
    """The absolute time a ``Retry-After`` header asks for, clamped to [now, now + 7 days].

    Go's rule: up to 7 characters is an integer number of seconds (TS sends ``"90"``), anything
    longer a date (Python sends ISO 8601 with ms). None when it is neither, so the caller falls
    back to its own backoff.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    at: int | None = None
    if len(text) <= 7 and _SECONDS.fullmatch(text):
        at = now_ms + int(text) * 1000
    if at is None:
        at = parse_instant_ms(text)
    if at is None:
        return None
    return min(max(at, now_ms), now_ms + MAX_RETRY_AFTER_MS)
