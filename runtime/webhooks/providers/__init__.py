"""One verifier per provider scheme, each a function ``verify(source, secret, delivery, now_ms)``
that returns ``Verified`` or raises ``DeliveryRejected`` (401, counted) or ``DeliveryInvalid``
(a signed delivery without the id the provider always sends: 400)."""

from __future__ import annotations

from collections.abc import Callable

from stepline.webhooks.model import Delivery, Provider, Verified, WebhookSource
from stepline.webhooks.providers import generic_hmac, github, shopify, standard, stripe

Verifier = Callable[[WebhookSource, str, Delivery, int], Verified]

VERIFIERS: dict[Provider, Verifier] = {
    Provider.STRIPE: stripe.verify,
    Provider.GITHUB: github.verify,
    Provider.STANDARD: standard.verify,
    Provider.SHOPIFY: shopify.verify,
    Provider.HMAC: generic_hmac.verify,
}


def verify(source: WebhookSource, secret: str, delivery: Delivery, now_ms: int) -> Verified:
    return VERIFIERS[source.provider](source, secret, delivery, now_ms)
