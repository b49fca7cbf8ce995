"""One signed delivery per provider, as each provider would send it now, for the end-to-end
tests: the source configuration, and a way to sign a body (with a chosen secret, so a forgery is
the same delivery signed with the wrong one)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.webhooks.signing import github_header, hmac_hex, shopify_header, standard_headers, stripe_header


@dataclass(frozen=True)
class Provider:
    name: str
    secret: str
    # (secret, body, delivery id) -> headers
    sign: Callable[[str, bytes, str], dict[str, str]]
    # Where the delivery id travels: Stripe's is in the body.
    id_in_body: bool = False
    config: dict[str, Any] | None = None

    def body(self, key: str, delivery_id: str) -> bytes:
        payload: dict[str, Any] = {"type": "order.paid", "order": {"key": key, "amount": 3}}
        if self.id_in_body:
            payload["id"] = delivery_id
        return json.dumps(payload).encode()


def now_s() -> int:
    return int(time.time())


PROVIDERS = [
    Provider("stripe", "whsec_e2e", lambda s, b, _id: {"Stripe-Signature": stripe_header(s, b, now_s())}, True),
    Provider(
        "github",
        "gh-e2e",
        lambda s, b, i: {"X-Hub-Signature-256": github_header(s, b), "X-GitHub-Delivery": i, "X-GitHub-Event": "order"},
    ),  # fmt: skip
    Provider("standard", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", lambda s, b, i: standard_headers(s, i, b, now_s())),
    Provider(
        "shopify",
        "shop-e2e",
        lambda s, b, i: {"X-Shopify-Hmac-Sha256": shopify_header(s, b), "X-Shopify-Webhook-Id": i},
    ),  # fmt: skip
    Provider(
        "hmac",
        "shared-e2e",
        lambda s, b, i: {
            "X-Acme-Signature": "sha256=" + hmac_hex(s, f"{now_s()}.".encode() + b),
            "X-Acme-Timestamp": str(now_s()),
            "X-Acme-Id": i,
        },  # fmt: skip
        config={
            "hmac": {
                "signature_header": "x-acme-signature",
                "signature_prefix": "sha256=",
                "id_header": "x-acme-id",
                "timestamp_header": "x-acme-timestamp",
            }
        },  # fmt: skip
    ),
]

# Every provider's payload becomes the e2e app's three-step function's event, its key from the
# payload: the app counts each step's executions by key.
CEL = '{"name": "test/multi", "data": {"key": event.body.order.key, "x": event.body.order.amount, "via": event.source}}'
MAPPING = {"name": "test/multi", "data": {"key": "$.order.key", "x": "$.order.amount"}}
