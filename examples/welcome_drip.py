"""Welcome email drip: greet a new user at once, follow up with tips a day later.

The 24-hour pause is a durable sleep: the run holds no process, no thread and no connection
while it waits, and survives restarts and deploys.
"""

from __future__ import annotations

from stepline import Context, EventData

from examples.client import client
from examples.services import services


class UserSignedUp(EventData, name="user/signed.up"):
    user_id: str


@client.function("welcome-drip", trigger=UserSignedUp, concurrency=20, retries=3)
def welcome_drip(ctx: Context[UserSignedUp]) -> dict:
    user = ctx.step.run("get-user", services.get_user, ctx.event.data.user_id)
    ctx.step.run("send-welcome", services.send_email, user["email"], f"Welcome, {user['name']}!",
                 "Thanks for signing up. Here is how to get going...")
    ctx.step.sleep("wait-a-day", "24h")
    ctx.step.run("send-tips", services.send_email, user["email"], "3 tips to get started",
                 "1. Invite your team. 2. Connect your data. 3. Automate one thing.")
    return {"user_id": user["id"], "emails_sent": 2}
