"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`` keyed with the app's
client secret. ``X-Shopify-Webhook-Id`` names the delivery (Shopify's retries keep it) but is not
signed, and no timestamp is: the receiver binds each signature to its delivery id for the
replay window."""

from __future__ import annotations

from stepline.webhooks.model import Delivery, Verified, WebhookSource
from stepline.webhooks.providers.common import (
    check_digest,
    delivery_id_header,
    from_base64,
    hmac_sha256,
    signature_header,
)

HEADER = "x-shopify-hmac-sha256"
DELIVERY_HEADER = "x-shopify-webhook-id"


def verify(source: WebhookSource, secret: str, delivery: Delivery, now_ms: int) -> Verified:
    presented = from_base64(signature_header(delivery, HEADER), HEADER)
    expected = hmac_sha256(secret.encode(), delivery.body)
    check_digest(expected, [presented], HEADER)
    return Verified(delivery_id=delivery_id_header(delivery, DELIVERY_HEADER), id_signed=False, digest=expected)
