"""A generic scheme for senders with no standard of their own: HMAC-SHA256 keyed with the shared
secret, hex or base64, in a header the source names (``x-signature`` unless told), after an
optional prefix (``sha256=``). With a timestamp header, the signed content is
``<timestamp>.<body>`` and the timestamp must be within the replay window. The delivery id comes
from ``id_header``; it is not signed, so the receiver binds each signature to it."""

from __future__ import annotations

from stepline.webhooks.model import Delivery, DeliveryRejected, Encoding, Rejection, Verified, WebhookSource
from stepline.webhooks.providers.common import (
    check_digest,
    check_window,
    delivery_id_header,
    from_base64,
    from_hex,
    hmac_sha256,
    signature_header,
    unix_seconds,
)


def verify(source: WebhookSource, secret: str, delivery: Delivery, now_ms: int) -> Verified:
    scheme = source.scheme
    header = signature_header(delivery, scheme.signature_header)
    if not header.startswith(scheme.signature_prefix):
        raise DeliveryRejected(
            Rejection.BAD_SIGNATURE, f"{scheme.signature_header}: expected {scheme.signature_prefix!r} first"
        )
    text = header[len(scheme.signature_prefix) :]
    presented = (
        from_hex(text, scheme.signature_header)
        if scheme.encoding == Encoding.HEX
        else from_base64(text, scheme.signature_header)
    )
    signed = delivery.body
    signed_at: int | None = None
    if scheme.timestamp_header:
        stamp = signature_header(delivery, scheme.timestamp_header)
        signed_at = unix_seconds(stamp, scheme.timestamp_header)
        signed = stamp.encode() + b"." + delivery.body
    expected = hmac_sha256(secret.encode(), signed)
    check_digest(expected, [presented], scheme.signature_header)
    if signed_at is not None and scheme.timestamp_header:
        check_window(signed_at, now_ms, source.window_s, scheme.timestamp_header)
    return Verified(delivery_id=delivery_id_header(delivery, scheme.id_header), id_signed=False, digest=expected)
