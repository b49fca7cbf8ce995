"""Verified webhooks (docs/webhooks.md): ``POST /webhooks/{source}`` for providers, and the
operator's ``GET``/``POST /v1/webhooks`` and ``DELETE /v1/webhooks/{source}`` to configure
sources. The delivery route needs no credential of ours: the provider's signature is the
credential, checked before anything is stored (``stepline.webhooks.receiver``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.errors import ApiError, json_response, parse_json_body
from stepline.api.request import raw_body
from stepline.api.runs_api import iso
from stepline.engine.core import Engine
from stepline.settings import Settings
from stepline.webhooks.counts import RejectionCounts
from stepline.webhooks.model import (
    Delivery,
    DeliveryInvalid,
    DeliveryRejected,
    SecretUnusable,
    SourceConfigError,
    WebhookSource,
    deployed_sources,
    parse_source,
)
from stepline.webhooks.receiver import BodyTooLarge, UnknownSource, WebhookReceiver
from stepline.webhooks.secrets import SecretUnavailable, WebhookSecrets
from stepline.webhooks.sources import SourceReadOnly, WebhookSources


def build_receiver(engine: Engine) -> WebhookReceiver:
    settings, b = engine.settings, engine.backend
    return WebhookReceiver(
        WebhookSources(b.flow_state, engine.clock, deployed_sources(settings.webhook_sources)),
        WebhookSecrets(engine.clock, max_age_ms=int(settings.keys_refresh_s * 1000)),
        b.key_claims,
        RejectionCounts(b.flow_state, engine.clock),
        engine.ingest,
        engine.clock,
        settings,
    )


def check_secret_location(source: WebhookSource, settings: Settings) -> None:
    """Deployed, a secret lives in Secrets Manager under the prefix the API may read."""
    prefix = settings.webhook_secret_prefix
    if not prefix:
        return
    if source.secret is not None:
        raise ApiError(
            400,
            f"secret: deployed, webhook secrets live in Secrets Manager: put it in a secret named "
            f"'{prefix}{source.source}' and give that name as secret_id",
        )
    if not (source.secret_id or "").startswith(prefix):
        raise ApiError(400, f"secret_id: the API reads only the secrets whose name starts with '{prefix}'")


def add_routes(app: APIGatewayHttpResolver, engine: Engine, receiver: WebhookReceiver | None = None) -> None:
    receiver = receiver or build_receiver(engine)

    @app.post("/webhooks/<source>")
    def deliver(source: str) -> Response:
        event = app.current_event
        delivery = Delivery({k.lower(): v for k, v in (event.headers or {}).items()}, raw_body(app))
        try:
            receipt = receiver.receive(source, delivery, sender=engine.telemetry.sender(delivery.headers))
        except UnknownSource as exc:
            raise ApiError(404, exc.message) from None
        except BodyTooLarge as exc:
            raise ApiError(413, exc.message) from None
        except DeliveryRejected as exc:
            raise ApiError(401, exc.message, reason=exc.reason.value) from None
        except DeliveryInvalid as exc:
            raise ApiError(400, exc.message) from None
        except SecretUnusable as exc:
            raise ApiError(500, exc.message) from None
        except SecretUnavailable as exc:
            raise ApiError(503, exc.message) from None
        return json_response(200, {"ids": receipt.ids, "delivery_id": receipt.delivery_id, "status": 200})

    def shown(src: WebhookSource) -> dict[str, Any]:
        return {**src.public(), "rejected": receiver.counts.of(src.source)}

    def reply(status: int, data: Any) -> Response:
        # The REST API's shape: data, and when it was read.
        return json_response(
            status, {"data": data, "metadata": {"fetched_at": iso(engine.clock.now_ms()), "cached_until": None}}
        )

    @app.get("/v1/webhooks")
    def list_sources() -> Response:
        require_operator(app, engine)
        return reply(200, [shown(s) for s in receiver.sources.all()])

    @app.post("/v1/webhooks")
    def put_source() -> Response:
        require_operator(app, engine)
        try:
            src = parse_source(parse_json_body(raw_body(app)))
        except SourceConfigError as exc:
            raise ApiError(400, str(exc)) from None
        check_secret_location(src, engine.settings)
        try:
            created = receiver.sources.put(src)
        except SourceReadOnly:
            raise ApiError(409, f"source: {src.source!r} is set by the deployment (stepline:webhooks)") from None
        return reply(201 if created else 200, shown(src))

    @app.delete("/v1/webhooks/<source>")
    def delete_source(source: str) -> Response:
        require_operator(app, engine)
        try:
            deleted = receiver.sources.delete(source)
        except SourceReadOnly:
            raise ApiError(409, f"source: {source!r} is set by the deployment (stepline:webhooks)") from None
        if not deleted:
            raise ApiError(404, f"webhook source {source!r} is not configured")
        return reply(200, {"source": source, "deleted": True})
