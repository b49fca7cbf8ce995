"""A delivery's payload as events: a CEL expression, a JSON path mapping, or the default (one
event ``webhook/<source>`` with the payload as its data). No code runs: CEL is evaluated by the
same library, with the same limits on size and cost, as triggers and waits
(``stepline.protocol.expressions``), and a mapping only reads paths.

CEL sees the delivery as ``event``: ``event.body`` (the payload), ``event.headers`` (names
lower-cased), ``event.source`` and ``event.id`` (the delivery id). It returns one event
(``{"name": ..., "data": {...}}``, optionally ``user`` and ``ts``), a list of them, or an empty
list for a delivery that should start nothing (a ping).

Event ids: ``<source>:<delivery id>`` for a single event, ``<source>:<delivery id>:<index>`` for
each of a list. Deterministic from the delivery, so a redelivery sends the same ids and the
Event API's idempotency by id starts nothing twice; the source in front keeps two providers'
ids apart.
"""

from __future__ import annotations

import json
from typing import Any

from stepline.protocol.errors import ProtocolError
from stepline.protocol.events import EventPayload, parse_event_batch
from stepline.protocol.expressions import EvaluationError, ExpressionError, evaluate
from stepline.webhooks.model import DeliveryInvalid, JsonPathMapping, Verified, WebhookSource
from stepline.webhooks.paths import read_path

# Fields an event produced by a transform may carry (the id is always ours).
EVENT_FIELDS = frozenset({"name", "data", "user", "ts"})


def to_events(
    source: WebhookSource,
    verified: Verified,
    headers: dict[str, str],
    body: bytes,
    *,
    max_event_bytes: int,
) -> list[EventPayload]:
    """The events the delivery becomes, validated as the Event API validates a batch;
    ``DeliveryInvalid`` naming what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise DeliveryInvalid("body: not JSON; webhooks are read as JSON payloads") from None
    transform = source.transform
    single = True
    if transform.cel is not None:
        produced, single = _by_cel(transform.cel, source, verified, headers, payload)
    elif transform.mapping is not None:
        produced = [_by_mapping(transform.mapping, payload)]
    else:
        produced = [
            {"name": f"webhook/{source.source}", "data": payload if isinstance(payload, dict) else {"payload": payload}}
        ]
    prefix = f"{source.source}:{verified.delivery_id}"
    events = []
    for index, event in enumerate(produced):
        if not isinstance(event, dict):
            raise DeliveryInvalid(f"transform: events[{index}] is {type(event).__name__}, expected a map")
        extra = sorted(set(event) - EVENT_FIELDS)
        if extra:
            raise DeliveryInvalid(f"transform: events[{index}].{extra[0]}: not an event field (name, data, user, ts)")
        events.append({**event, "id": prefix if single else f"{prefix}:{index}"})
    if not events:
        return []
    try:
        return parse_event_batch(
            json.dumps(events).encode(),
            max_events=1000,
            max_bytes=len(body) * 4 + 1_000_000,
            max_event_bytes=max_event_bytes,
        )
    except ProtocolError as exc:
        raise DeliveryInvalid(f"transform produced {exc.message}") from None


def _by_cel(
    expression: str, source: WebhookSource, verified: Verified, headers: dict[str, str], payload: Any
) -> tuple[list[Any], bool]:
    context = {"event": {"body": payload, "headers": headers, "source": source.source, "id": verified.delivery_id}}
    try:
        result = evaluate(expression, context)
    except (ExpressionError, EvaluationError) as exc:
        raise DeliveryInvalid(f"transform.cel: {exc}") from None
    if isinstance(result, dict):
        return [result], True
    if isinstance(result, list):
        return result, False
    raise DeliveryInvalid(f"transform.cel: returned {type(result).__name__}; expected an event map or a list of them")


def _by_mapping(mapping: JsonPathMapping, payload: Any) -> dict[str, Any]:
    name = mapping.name
    if mapping.name_path is not None:
        name = read_path(payload, mapping.name_path)
        if not isinstance(name, str) or not name:
            raise DeliveryInvalid(f"transform.mapping.name_path: {mapping.name_path} is not a string in the payload")
    return {"name": name, "data": {field: read_path(payload, path) for field, path in mapping.data.items()}}
