"""Verified webhooks: ``POST /webhooks/{source}`` turns a provider's signed delivery into events
(docs/webhooks.md).

A delivery goes through four modules, in this order, and nothing is stored before the third:

* ``sources``: the source's configuration (provider, secret, replay window, transform), stored
  through the REST API and the CLI, or set by the deployment (``stepline:webhooks``);
* ``providers``: one verifier per provider scheme (Stripe, GitHub, Standard Webhooks, Shopify,
  a generic HMAC-SHA256 header); a delivery that fails is refused with a 401 and counted;
* ``transform``: a CEL expression or a JSON path mapping turns the payload into events, their
  ids taken from the provider's delivery id, so a redelivery starts nothing twice;
* ``receiver``: the order above, the replay guard, the counts, and the hand-over to ingest.
"""
