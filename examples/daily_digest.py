"""Daily digest: every day at 09:00 UTC, fan out one ``digest/send`` event per subscriber.

Fan-out keeps each user's digest its own run: one slow or failing mailbox retries alone, and
``concurrency=50`` caps how hard the digests hit the email provider. ``digest/run-now``
triggers the same fan-out by hand (handy in `make dev`, where 09:00 may be far away);
``concurrency=1`` keeps a manual run and the cron's from fanning out side by side.
"""

from __future__ import annotations

import datetime

from stepline import Context, EventData, cron, on

from examples.client import client
from examples.services import services


class DigestRunNow(EventData, name="digest/run-now"):
    """Fan out today's digests now (no data)."""


class DigestRequested(EventData, name="digest/send"):
    user_id: str
    day: str  # YYYY-MM-DD


def _day(ts_ms: int | None) -> str:
    # From the triggering event's time, never "now": a replay must see the same day.
    moment = datetime.datetime.fromtimestamp((ts_ms or 0) / 1000, tz=datetime.timezone.utc)
    return moment.date().isoformat()


@client.function("daily-digest", trigger=[cron("0 9 * * *"), on(DigestRunNow)], concurrency=1, retries=3)
def daily_digest(ctx: Context) -> dict:
    day = _day(ctx.event.ts)
    subscribers = ctx.step.run("load-subscribers", services.digest_subscribers)
    if not subscribers:
        return {"day": day, "sent": 0}
    ids = ctx.step.send_event("fan-out", [DigestRequested(user_id=u, day=day) for u in subscribers])
    return {"day": day, "sent": len(ids)}


@client.function("send-digest", trigger=DigestRequested, concurrency=50, retries=5)
def send_digest(ctx: Context[DigestRequested]) -> dict:
    request = ctx.event.data
    user = ctx.step.run("get-user", services.get_user, request.user_id)
    body = ctx.step.run("build-digest", _build_digest, user["name"], request.day)
    sent = ctx.step.run("send-email", services.send_email, user["email"], f"Your digest for {request.day}", body)
    return {"user_id": request.user_id, "day": request.day, "message_id": sent["message_id"]}


def _build_digest(name: str, day: str) -> str:
    return f"Good morning {name}! Here is what happened before {day}: 3 new comments, 1 mention."
