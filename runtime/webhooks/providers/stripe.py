"""Stripe: ``Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...][,v0=...]``, each ``v1`` the
HMAC-SHA256 of ``"<t>.<body>"`` keyed with the endpoint's secret (``whsec_...``, used as it is).
Several ``v1`` appear while a secret is being rolled; any one matching is enough. The event's
``id`` (``evt_...``) is in the signed body: it is the delivery id."""

from __future__ import annotations

import json

from stepline.webhooks.model import Delivery, DeliveryInvalid, DeliveryRejected, Rejection, Verified, WebhookSource
from stepline.webhooks.providers.common import (
    check_digest,
    check_window,
    from_hex,
    hmac_sha256,
    readable,
    signature_header,
    unix_seconds,
)

HEADER = "stripe-signature"


def verify(source: WebhookSource, secret: str, delivery: Delivery, now_ms: int) -> Verified:
    header = signature_header(delivery, HEADER)
    timestamp: str | None = None
    texts: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value
        elif key == "v1":
            texts.append(value)
    if timestamp is None or not texts:
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{HEADER}: expected t=<timestamp> and v1=<signature>")
    signed_at = unix_seconds(timestamp, f"{HEADER} t")
    signatures = readable(from_hex, texts, f"{HEADER} v1")
    expected = hmac_sha256(secret.encode(), timestamp.encode() + b"." + delivery.body)
    check_digest(expected, signatures, HEADER)
    check_window(signed_at, now_ms, source.window_s, HEADER)
    return Verified(delivery_id=_event_id(delivery.body), id_signed=True, digest=expected)


def _event_id(body: bytes) -> str:
    try:
        event = json.loads(body)
    except ValueError:
        raise DeliveryInvalid("body: not JSON (a Stripe event is)") from None
    event_id = event.get("id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not event_id:
        raise DeliveryInvalid("body.id: missing; a Stripe event carries its id (evt_...)")
    return event_id
