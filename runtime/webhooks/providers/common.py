"""What the verifiers share: HMAC-SHA256, constant-time comparison, reading the parts of a
signature header without letting a malformed one raise anything but a rejection."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

from stepline.webhooks.model import Delivery, DeliveryInvalid, DeliveryRejected, Rejection


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def signature_header(delivery: Delivery, name: str) -> str:
    """The header's value; ``UNSIGNED`` when it is missing or empty."""
    value = delivery.header(name)
    if not value:
        raise DeliveryRejected(Rejection.UNSIGNED, f"{name}: missing; the delivery is not signed")
    return value


def from_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{what}: not hex") from None


def from_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{what}: not base64") from None


def readable(decode: Callable[[str, str], bytes], texts: list[str], what: str) -> list[bytes]:
    """The signatures among ``texts`` that decode; one that does not is skipped, as the
    providers' libraries skip it (it cannot match), so a valid one beside it still counts."""
    decoded = []
    for text in texts:
        try:
            decoded.append(decode(text, what))
        except DeliveryRejected:
            continue
    if not decoded:
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{what}: no signature that can be read")
    return decoded


def check_digest(expected: bytes, presented: list[bytes], what: str) -> None:
    """Accept when any presented signature is the expected one (compared in constant time)."""
    if not any(hmac.compare_digest(expected, candidate) for candidate in presented):
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{what}: does not match the payload")


def check_window(signed_at_s: int, now_ms: int, window_s: int, what: str) -> None:
    """Refuse a signed timestamp further than the window from now, either way (a clock ahead of
    ours by more than the window is as suspect as an old delivery)."""
    off_s = abs(now_ms / 1000 - signed_at_s)
    if off_s > window_s:
        raise DeliveryRejected(
            Rejection.OUTSIDE_WINDOW, f"{what}: signed {int(off_s)} s from now; the replay window is {window_s} s"
        )


def unix_seconds(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise DeliveryRejected(Rejection.BAD_SIGNATURE, f"{what}: expected Unix seconds, got {text[:40]!r}")
    return int(text)


def delivery_id_header(delivery: Delivery, name: str) -> str:
    """The provider's delivery id from its header; a signed delivery without one is a 400."""
    value = delivery.header(name)
    if not value:
        raise DeliveryInvalid(f"{name}: missing; it names the delivery (the event id)")
    if len(value) > 200:
        raise DeliveryInvalid(f"{name}: {len(value)} characters; at most 200")
    return value
