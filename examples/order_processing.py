"""Order processing: check stock and authorize payment side by side, then charge and ship.

Out of stock, the order is put on backorder by an event (whoever handles backorders listens to
it) and the authorization is voided. ``retries=3`` covers a flaky payment processor;
``concurrency=10`` keeps a sale from flooding the warehouse API.
"""

from __future__ import annotations

from pydantic import Field

from stepline import Context, EventData

from examples.client import client
from examples.services import services


class OrderPlaced(EventData, name="shop/order.placed"):
    order_id: str
    user_id: str
    sku: str
    quantity: int = Field(default=1, ge=1)
    amount_cents: int = Field(ge=0)


class OrderBackordered(EventData, name="shop/order.backordered"):
    order_id: str
    sku: str
    quantity: int
    available: int


@client.function("process-order", trigger=OrderPlaced, retries=3, concurrency=10)
def process_order(ctx: Context[OrderPlaced]) -> dict:
    order = ctx.event.data
    stock, auth = ctx.step.parallel(
        lambda: ctx.step.run("check-inventory", services.check_inventory, order.sku, order.quantity),
        lambda: ctx.step.run("authorize-payment", services.authorize_payment, order.order_id, order.amount_cents),
    )

    if not stock["in_stock"]:
        if auth["approved"]:
            ctx.step.run("void-authorization", services.void_authorization, auth["authorization_id"])
        ctx.step.send_event("request-backorder", OrderBackordered(
            order_id=order.order_id, sku=order.sku, quantity=order.quantity, available=stock["available"],
        ))
        return {"order_id": order.order_id, "status": "backordered"}

    if not auth["approved"]:
        return {"order_id": order.order_id, "status": "payment_declined"}

    charge = ctx.step.run("charge", services.capture_payment, order.order_id, auth["authorization_id"],
                          order.amount_cents)
    shipment = ctx.step.run("ship", services.create_shipment, order.order_id, order.sku, order.quantity)
    return {"order_id": order.order_id, "status": "shipped", "charge_id": charge["charge_id"],
            "tracking_number": shipment["tracking_number"]}
