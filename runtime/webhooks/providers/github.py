"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` keyed with the
webhook's secret. ``X-GitHub-Delivery`` names the event (a redelivery keeps it) but is not
signed, and GitHub signs no timestamp: the receiver binds each signature to its delivery id for
the replay window. The legacy SHA-1 ``X-Hub-Signature`` is not accepted."""

from __future__ import annotations

from stepline.webhooks.model import Delivery, DeliveryRejected, Rejection, Verified, WebhookSource
from stepline.webhooks.providers.common import (
    check_digest,
    delivery_id_header,
    from_hex,
    hmac_sha256,
    signature_header,
)

HEADER = "x-hub-signature-256"
DELIVERY_HEADER = "x-github-delivery"
PREFIX = "sha256="


def verify(source: WebhookSource, secret: str, delivery: Delivery, now_ms: int) -> Verified:
    header = signature_header(delivery, HEADER)
    if not header.startswith(PREFIX):
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{HEADER}: expected sha256=<hex>")
    expected = hmac_sha256(secret.encode(), delivery.body)
    check_digest(expected, [from_hex(header[len(PREFIX) :], HEADER)], HEADER)
    return Verified(delivery_id=delivery_id_header(delivery, DELIVERY_HEADER), id_signed=False, digest=expected)
