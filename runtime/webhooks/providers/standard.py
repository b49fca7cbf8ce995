"""Standard Webhooks (what Svix sends): ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature`` (space-separated ``v1,<base64>``), each ``v1`` the HMAC-SHA256 of
``"<id>.<timestamp>.<body>"`` keyed with the base64 after ``whsec_``. Svix's older ``svix-*``
header names are read too. The id and the timestamp are both signed.

The signature is computed by the scheme's own Python library (``standardwebhooks``, from the
specification's repository; no dependencies). Its ``Webhook.verify`` is not used: its window is
fixed at five minutes and read from the wall clock, where each source has its own window and the
engine's clock is the one to trust (tests move it). The comparison and the window are therefore
done here, as the library's verify does them.
"""

from __future__ import annotations

import binascii
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from stepline.webhooks.model import Delivery, DeliveryRejected, Rejection, SecretUnusable, Verified, WebhookSource
from stepline.webhooks.providers.common import (
    check_digest,
    check_window,
    from_base64,
    readable,
    signature_header,
    unix_seconds,
)

ID, TIMESTAMP, SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"
SVIX_PREFIX = "svix-"


def verify(source: WebhookSource, secret: str, delivery: Delivery, now_ms: int) -> Verified:
    names = (ID, TIMESTAMP, SIGNATURE)
    if delivery.header(SIGNATURE) is None and delivery.header(SVIX_PREFIX + "signature") is not None:
        names = tuple(SVIX_PREFIX + n.removeprefix("webhook-") for n in names)  # type: ignore[assignment]
    id_name, timestamp_name, signature_name = names
    header = signature_header(delivery, signature_name)
    msg_id = signature_header(delivery, id_name)
    stamp = signature_header(delivery, timestamp_name)
    signed_at = unix_seconds(stamp, timestamp_name)
    texts = [value for version, sep, value in (v.partition(",") for v in header.split()) if sep and version == "v1"]
    if not texts:
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{signature_name}: no v1,<base64> signature")
    presented = readable(from_base64, texts, signature_name)
    when = datetime.fromtimestamp(signed_at, UTC)
    signed = signer(secret, source.source).sign(msg_id=msg_id, timestamp=when, data=delivery.body)
    expected = from_base64(signed.split(",", 1)[1], "expected signature")
    check_digest(expected, presented, signature_name)
    check_window(signed_at, now_ms, source.window_s, timestamp_name)
    return Verified(delivery_id=msg_id, id_signed=True, digest=expected)


def signer(secret: str, source: str) -> Webhook:
    """The library's signer for ``whsec_<base64>`` (the prefix optional); ``SecretUnusable``
    when the secret is not in that form."""
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError):
        raise SecretUnusable(source, "a Standard Webhooks secret is whsec_ followed by base64") from None
