"""Declares a function and never serves it."""

from __future__ import annotations

from stepline import Client, Context

client = Client("check-unserved", dev=True)


@client.function("send-welcome", trigger="user/signed.up", retries=2, concurrency=5)
def send_welcome(ctx: Context) -> str:
    return ctx.step.run("send-email", lambda: "sent")
