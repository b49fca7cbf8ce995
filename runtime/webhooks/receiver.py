"""``POST /webhooks/{source}``, the engine side: verify, guard against replays, transform, then
hand the events to ingest. Nothing is stored before the signature checks out.

Replays. Where the signature covers the delivery id (Stripe's is in the signed body, Standard
Webhooks signs ``webhook-id``) a replayed delivery has the same event ids as the original, and
the Event API's idempotency by id starts nothing twice; its signed timestamp must also be within
the source's window. GitHub, Shopify and the generic scheme sign the body alone: the id header
could be changed by whoever captured a delivery. So the first delivery id a signature arrives
with holds it (a key claim) for the replay window: the provider's own redeliveries, which keep
the id, pass, and the same signed body under another id is refused as replayed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stepline.engine.ingest import Ingest
from stepline.engine.ports import Clock
from stepline.engine.stores import KeyClaims
from stepline.settings import Settings
from stepline.webhooks import providers
from stepline.webhooks.counts import RejectionCounts
from stepline.webhooks.model import Delivery, DeliveryRejected, Rejection, Verified, WebhookSource
from stepline.webhooks.secrets import WebhookSecrets
from stepline.webhooks.sources import WebhookSources
from stepline.webhooks.transform import to_events

REPLAY_KEY = "webhooks/signature/"


class UnknownSource(Exception):
    def __init__(self, source: str) -> None:
        super().__init__(f"webhook source {source!r} is not configured (stepline webhooks set, or POST /v1/webhooks)")
        self.message = str(self)


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"body: {size} bytes exceeds the limit of {limit}")
        self.message = str(self)


@dataclass(frozen=True)
class Receipt:
    delivery_id: str
    ids: list[str]  # the stored events' internal ids, as the Event API answers them


class WebhookReceiver:
    def __init__(
        self,
        sources: WebhookSources,
        secrets: WebhookSecrets,
        claims: KeyClaims,
        counts: RejectionCounts,
        ingest: Ingest,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.sources = sources
        self.secrets = secrets
        self.claims = claims
        self.counts = counts
        self.ingest = ingest
        self.clock = clock
        self.settings = settings

    def receive(self, name: str, delivery: Delivery, *, sender: dict[str, str] | None = None) -> Receipt:
        """Raises ``UnknownSource`` (404), ``BodyTooLarge`` (413), ``DeliveryRejected`` (401,
        counted), ``DeliveryInvalid`` (400), ``SecretUnusable`` (500), ``SecretUnavailable``
        (503); the events are stored only when it returns, with ``sender`` (the delivery's W3C
        trace context) kept beside each."""
        source = self.sources.get(name)
        if source is None:
            raise UnknownSource(name)
        limit = self.settings.max_event_body_bytes
        if len(delivery.body) > limit:
            raise BodyTooLarge(len(delivery.body), limit)
        now = self.clock.now_ms()
        try:
            verified = providers.verify(source, self.secrets.secret_for(source), delivery, now)
            if not verified.id_signed:
                self._bind_signature(source, verified, now)
        except DeliveryRejected as refused:
            self.counts.count(source.source, refused.reason)
            raise
        events = to_events(
            source, verified, dict(delivery.headers), delivery.body, max_event_bytes=self.settings.max_event_bytes
        )
        ids = (
            self.ingest.accept(
                [e.model_dump() for e in events], max_runs=self.settings.max_runs_per_request, sender=sender
            )
            if events
            else []
        )
        return Receipt(verified.delivery_id, ids)

    def _bind_signature(self, source: WebhookSource, verified: Verified, now: int) -> None:
        key = REPLAY_KEY + source.source + "/" + hashlib.sha256(verified.digest).hexdigest()
        holder = self.claims.claim_key(key, verified.delivery_id, now + source.window_s * 1000, now)
        if holder != verified.delivery_id:
            raise DeliveryRejected(
                Rejection.REPLAYED,
                f"this signed payload came with another delivery id within the replay window "
                f"({source.window_s} s); a new delivery id does not make it new",
            )
