"""Fails every check but the serve handler's, each the way real apps do."""

from __future__ import annotations

import flask

from stepline import Client, Context, cron, serve_flask, serve_wsgi

client = Client("check-bad", dev=True)
# A second client under the same app id (two modules that each made their own): whatever both
# declare has one id, and each one's sync replaces the other's functions.
twin = Client("check-bad", dev=True)


# Payment-related (the id says "charge"), with no idempotency key, no retries, no concurrency
# limit, and a plain event name instead of a typed event.
@client.function("charge-customer", trigger="billing/charge.requested")
def charge_customer(ctx: Context) -> dict:
    receipt = ctx.step.run("Charge Card", lambda: {"charged": ctx.event.data.get("amount_cents")})
    ctx.step.sleep("s1", 5000)
    ctx.step.wait_for_event("wait-for-receipt", event="billing/receipt.sent")  # type: ignore[call-arg]
    return receipt


@client.function("sync-ledger", trigger=cron("0 * * * *"), retries=1, concurrency=1)
def sync_ledger(ctx: Context) -> str:
    return ctx.step.run("copy-ledger-rows", lambda: "copied")


@twin.function("sync-ledger", trigger=cron("30 * * * *"), retries=1, concurrency=1)
def sync_ledger_again(ctx: Context) -> str:
    return ctx.step.run("copy-ledger-rows", lambda: "copied again")


# Declared, but left out of the serve handler's list below: never registered, never run.
@client.function("weekly-report", trigger=cron("0 9 * * 1"), retries=1, concurrency=1)
def weekly_report(ctx: Context) -> str:
    return ctx.step.run("build-report", lambda: "report")


app = flask.Flask(__name__)
serve_flask(app, client, functions=[charge_customer, sync_ledger])
twin_app = serve_wsgi(twin)
