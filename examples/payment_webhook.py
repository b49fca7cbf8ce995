"""Payment webhooks: handle each provider event once, whatever the provider retries.

Payment providers deliver webhooks at least once, so the same event can arrive twice.
``idempotency`` keys runs by the provider's event id: a second delivery within 24 hours starts
nothing. The run then dispatches on the event type; ``concurrency=10`` keeps a burst of webhooks
from flooding the order store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepline import Context, EventData

from examples.client import client
from examples.services import services


class PaymentWebhook(EventData, name="payments/webhook.received"):
    provider_event_id: str
    type: str
    payload: dict[str, Any] = {}


def _succeeded(ctx: Context[PaymentWebhook], hook: PaymentWebhook) -> dict:
    order_id, amount = hook.payload["order_id"], int(hook.payload.get("amount_cents", 0))
    order = ctx.step.run("mark-order-paid", services.mark_order_paid, order_id, amount)
    return {"handled": hook.type, "order": order}


def _failed(ctx: Context[PaymentWebhook], hook: PaymentWebhook) -> dict:
    order_id = hook.payload["order_id"]
    order = ctx.step.run("mark-payment-failed", services.mark_payment_failed, order_id,
                         str(hook.payload.get("reason", "unknown")))
    email = hook.payload.get("customer_email")
    if email:
        ctx.step.run("notify-customer", services.send_email, email, "Your payment did not go through",
                     f"We could not charge your card for order {order_id}.")
    return {"handled": hook.type, "order": order}


def _refunded(ctx: Context[PaymentWebhook], hook: PaymentWebhook) -> dict:
    order_id, amount = hook.payload["order_id"], int(hook.payload.get("amount_cents", 0))
    order = ctx.step.run("record-refund", services.record_refund, order_id, amount)
    return {"handled": hook.type, "order": order}


HANDLERS: dict[str, Callable[[Context[PaymentWebhook], PaymentWebhook], dict]] = {
    "payment_intent.succeeded": _succeeded,
    "payment_intent.payment_failed": _failed,
    "charge.refunded": _refunded,
}


@client.function(
    "payment-webhook",
    trigger=PaymentWebhook,
    idempotency="event.data.provider_event_id",
    concurrency=10,
    retries=5,
)
def payment_webhook(ctx: Context[PaymentWebhook]) -> dict:
    hook = ctx.event.data
    handler = HANDLERS.get(hook.type)
    if handler is None:
        return {"ignored": hook.type}
    return handler(ctx, hook)
