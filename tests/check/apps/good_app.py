"""Passes every check: typed events, explicit retries and concurrency, an idempotent payment
function, descriptive kebab-case step ids, a bounded wait and a sleep written as a duration."""

from __future__ import annotations

import flask

from stepline import Client, Concurrency, Context, EventData, serve_flask

client = Client("check-good", dev=True)


class OrderPlaced(EventData, name="shop/order.placed"):
    order_id: str
    amount_cents: int


class PaymentCaptured(EventData, name="shop/payment.captured"):
    order_id: str


@client.function("fulfil-order", trigger=OrderPlaced, retries=3, concurrency=10)
def fulfil_order(ctx: Context[OrderPlaced]) -> dict:
    order = ctx.event.data
    ctx.step.run("reserve-stock", lambda: {"reserved": order.order_id})
    paid = ctx.step.wait_for_event("wait-for-payment", event=PaymentCaptured, timeout="1h",
                                   if_="async.data.order_id == event.data.order_id")
    if paid is None:
        return {"status": "unpaid"}
    ctx.step.sleep("cool-off", "10m")
    return ctx.step.run("ship-order", lambda: {"shipped": order.order_id})


@client.function("charge-card", trigger=OrderPlaced, retries=2,
                 concurrency=Concurrency(limit=5, key="event.data.order_id"), idempotency="event.data.order_id")
def charge_card(ctx: Context[OrderPlaced]) -> dict:
    order = ctx.event.data
    return ctx.step.run("capture-payment", lambda: {"captured": order.amount_cents})


app = flask.Flask(__name__)
serve_flask(app, client)
