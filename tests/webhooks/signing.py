"""Deliveries signed the way each provider signs them, for the tests (the examples the providers
publish are in test_providers.py, as published)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from standardwebhooks import Webhook


def stripe_header(secret: str, body: bytes, t: int) -> str:
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def github_header(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shopify_header(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def standard_headers(secret: str, msg_id: str, body: bytes, t: int) -> dict[str, str]:
    from datetime import UTC, datetime

    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(t, UTC), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": signature}


def hmac_hex(secret: str, signed: bytes) -> str:
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
