"""Local timers and cron schedules: rows with a fire time, moved into the queue table by
``fire_due``.

A one-time timer is deleted when it fires. A cron keeps one row whose ``next_fire_at`` is the
fire time still to deliver; firing moves it to the first fire time after the firing ``now``.
Fire times missed while nothing called ``fire_due`` (the dev server was stopped, the machine
slept) are not replayed one by one: the latest of them fires once, as a cron daemon coming back
would, rather than a minutely cron flooding the queue with a week of runs.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import zoneinfo
from typing import Any

from stepline.engine.ports import Clock
from stepline.engine.records import CronSchedule
from stepline.local.db import Database, dumps, loads
from stepline.local.queue import SqliteWorkQueue, insert_messages
from stepline.protocol.cron import CronSpec, schedule_spec

log = logging.getLogger(__name__)

# The EventBridge Scheduler name rule, enforced here too so a name that works locally cannot
# fail on AWS.
TIMER_NAME = re.compile(r"[0-9A-Za-z_.\-]{1,64}")


class SqliteTimers:
    def __init__(self, db: Database, queue: SqliteWorkQueue, clock: Clock) -> None:
        self._db = db
        self._queue = queue
        self._clock = clock

    # -- one-time timers ---------------------------------------------------------------------
    def schedule(self, name: str, fire_at_ms: int, body: dict[str, Any]) -> None:
        _check_name(name)
        _check_body(body)
        with self._db.connection() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO timers (name, fire_at, body) VALUES (?, ?, ?)",
                (name, int(fire_at_ms), dumps(body)),
            )

    def cancel(self, name: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM timers WHERE name = ?", (name,))
            conn.execute("DELETE FROM crons WHERE name = ?", (name,))

    # -- crons -------------------------------------------------------------------------------
    def schedule_cron(self, schedule: CronSchedule) -> None:
        _check_name(schedule.name)
        _check_body(schedule.body)
        now = self._clock.now_ms()
        spec = schedule_spec(schedule.cron, schedule.timezone, now)  # ValueError naming what is wrong
        first = spec.next_after_ms(now)
        # Scheduling the same cron again (every sync may) keeps the fire time it is waiting
        # for, so a re-sync neither skips nor repeats one; a changed cron or zone starts over.
        # SET expressions read the row as it was before this update.
        with self._db.connection() as conn:
            conn.execute(
                """
                INSERT INTO crons (name, cron, timezone, body, next_fire_at)
                VALUES (:name, :cron, :tz, :body, :first)
                ON CONFLICT (name) DO UPDATE SET
                    next_fire_at = CASE
                        WHEN cron = excluded.cron AND timezone = excluded.timezone
                        THEN next_fire_at ELSE excluded.next_fire_at END,
                    cron = excluded.cron,
                    timezone = excluded.timezone,
                    body = excluded.body
                """,
                {
                    "name": schedule.name,
                    "cron": spec.expression,
                    "tz": spec.timezone,
                    "body": dumps(schedule.body),
                    "first": first,
                },
            )

    def list_crons(self) -> list[str]:
        with self._db.connection() as conn:
            return [r["name"] for r in conn.execute("SELECT name FROM crons ORDER BY name")]

    # -- the driver --------------------------------------------------------------------------
    def fire_due(self, now_ms: int) -> int:
        # A due message becomes visible at its own fire time, so it queues in due order among
        # other messages, but never later than the queue clock's now: a caller that passes a
        # ``now_ms`` ahead of the clock still gets messages it can receive at once, as SQS does.
        visible_cap = self._clock.now_ms()
        # One IMMEDIATE transaction: two drivers on one file serialize here, and the second
        # finds the timers gone and the crons moved on, so nothing fires twice.
        with self._db.write() as conn:
            timers = conn.execute(
                "SELECT name, fire_at, body FROM timers WHERE fire_at <= ? ORDER BY fire_at, name",
                (now_ms,),
            ).fetchall()
            crons = conn.execute(
                "SELECT * FROM crons WHERE next_fire_at <= ? ORDER BY next_fire_at, name",
                (now_ms,),
            ).fetchall()
            if not timers and not crons:
                return 0
            due: list[tuple[int, str, str]] = [(t["fire_at"], t["name"], t["body"]) for t in timers]
            for row in crons:
                fired = _fire_cron(conn, row, now_ms)
                if fired is not None:
                    due.append((fired[0], row["name"], fired[1]))
            due.sort(key=lambda d: (d[0], d[1]))
            insert_messages(conn, [(body, min(at, visible_cap)) for at, _, body in due])
            conn.executemany("DELETE FROM timers WHERE name = ?", [(t["name"],) for t in timers])
        if due:
            self._queue.notify()
        return len(due)

    def next_fire_at(self) -> int | None:
        """When the earliest timer or cron is due, for the local driver's sleep; None when
        nothing is scheduled."""
        with self._db.connection() as conn:
            return conn.execute(
                "SELECT MIN(t) FROM (SELECT MIN(fire_at) AS t FROM timers "
                "UNION ALL SELECT MIN(next_fire_at) FROM crons)"
            ).fetchone()[0]

    # -- inspection (dashboard, tests) -------------------------------------------------------
    def get(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """A scheduled timer's fire time and body."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT fire_at, body FROM timers WHERE name = ?", (name,)).fetchone()
        return (row["fire_at"], loads(row["body"])) if row else None

    def get_cron(self, name: str) -> tuple[int, CronSchedule] | None:
        """A cron schedule and the fire time it delivers next."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM crons WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        schedule = CronSchedule(row["name"], row["cron"], row["timezone"], loads(row["body"]))
        return row["next_fire_at"], schedule


def _fire_cron(conn: sqlite3.Connection, row: sqlite3.Row, now_ms: int) -> tuple[int, str] | None:
    """Move a due cron past ``now_ms`` and return (fire time, message body) to enqueue."""
    try:
        spec = CronSpec(expression=row["cron"], timezone=row["timezone"])
        at = spec.latest_fire_at(row["next_fire_at"], now_ms)
        following = spec.next_after_ms(now_ms)
    except (ValueError, KeyError, zoneinfo.ZoneInfoNotFoundError):
        # Checked when scheduled, so only a changed tz database gets here. A cron whose times
        # cannot be computed cannot fire; leaving it due would fail every fire_due after it.
        log.exception(
            "cron %r (%r in %r) can no longer be evaluated; removing it", row["name"], row["cron"], row["timezone"]
        )
        conn.execute("DELETE FROM crons WHERE name = ?", (row["name"],))
        return None
    conn.execute("UPDATE crons SET next_fire_at = ? WHERE name = ?", (following, row["name"]))
    # The body stays opaque here: the Timers port puts any JSON object on the queue, and stamps
    # the fire time as "at" (its contract, tests/contract/test_crons.py, holds bodies that are
    # no work message). The engine's crons schedule a CronFire body, which reads "at" back.
    return at, dumps({**loads(row["body"]), "at": at})


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not TIMER_NAME.fullmatch(name):
        raise ValueError(f"timer name must be 1-64 characters of [0-9A-Za-z_.-]: {name!r}")


def _check_body(body: dict[str, Any]) -> None:
    if not isinstance(body, dict):
        raise TypeError("timer body must be a JSON object")
