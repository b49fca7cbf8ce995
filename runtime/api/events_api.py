"""The Event API: `POST /e/{key}` (docs/protocol.md §11)."""

from __future__ import annotations

import base64
import hmac

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.errors import ApiError, json_response
from stepline.api.request import header, headers, raw_body
from stepline.engine.core import Engine
from stepline.protocol.errors import ProtocolError
from stepline.protocol.events import read_event_batch
from stepline.protocol.signing import hash_event_key


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    settings = engine.settings

    def key_allowed(key: str) -> bool:
        if settings.mode == "dev":
            return True  # as Inngest's dev server: any key, including NO_EVENT_KEY_SET
        presented = hash_event_key(key)
        # The keys as the ring holds them now: a key removed from the secret stops working once
        # the ring re-reads it.
        return any(hmac.compare_digest(presented, known) for known in engine.keys.current().event_key_hashes)

    if settings.mode != "dev":
        # An SDK configured with an empty key posts here: in cloud mode that is a missing
        # credential (401), not an unknown route.
        @app.post("/e")
        @app.post("/e/")
        def send_without_key() -> Response:
            raise ApiError(401, "event key: missing from the path (POST /e/<event key>)", ids=[])

    @app.post("/e/<key>")
    def send_events(key: str) -> Response:
        if not key_allowed(key):
            raise ApiError(401, "event key not found", ids=[])
        seed = _parse_seed(header(app, "x-inngest-event-id-seed"))
        return accept_events(engine, raw_body(app), seed, sender=engine.telemetry.sender(headers(app)))


def accept_events(
    engine: Engine, body: bytes, seed: tuple[int, bytes] | None = None, *, sender: dict[str, str] | None = None
) -> Response:
    """Store a body's events and answer with their ids, the way Inngest's Event API does: the
    events before the first one that cannot be accepted are stored, and the reply is that
    event's 4xx with their ids beside the error, which the SDKs raise as a send error carrying
    the ids (docs/protocol.md §11). A body wrong as a whole stores nothing. ``sender``: the
    request's W3C trace context, which the runs the events start continue."""
    settings = engine.settings
    try:
        batch = read_event_batch(
            body,
            max_events=settings.max_events_per_request,
            max_bytes=settings.max_event_body_bytes,
            max_event_bytes=settings.max_event_bytes,
        )
    except ProtocolError as whole:
        raise ApiError(whole.status, whole.message, ids=[]) from None
    payloads = [p.model_dump() for p in batch.accepted]
    try:
        ids = (
            engine.ingest.accept(payloads, seed=seed, max_runs=settings.max_runs_per_request, sender=sender)
            if payloads
            else []
        )
    except ProtocolError as too_many:  # more runs than one request may start: nothing stored
        raise ApiError(too_many.status, too_many.message, ids=[]) from None
    if batch.refusal is not None:
        refusal = batch.refusal
        return json_response(refusal.status, {"ids": ids, "error": refusal.message, "status": refusal.status})
    # "status" is required: the TypeScript SDK treats a reply without it as a failure.
    return json_response(200, {"ids": ids, "status": 200})


def _parse_seed(value: str | None) -> tuple[int, bytes] | None:
    """``<ms>,<base64 of 10 bytes>``; anything else is ignored (ids are then random)."""
    if not value:
        return None
    try:
        ms_text, b64 = value.split(",", 1)
        entropy = base64.b64decode(b64, validate=True)
        ms = int(ms_text)
    except ValueError:
        return None
    if len(entropy) != 10 or not 0 <= ms < 2**48:
        return None
    return ms, entropy
