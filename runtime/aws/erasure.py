"""Erasure and expiry on the table (``stepline.engine.stores.RunEraser``).

A run is its partition (``RUN#<run_id>``: the run item and its step items), the link items its
events hold (``EVENT#<event>`` / ``RUN#<run_id>``) and its payload objects (``runs/<run_id>/``);
erasing it deletes all three, keys read with a keys-only Query (no value is read or fetched
from S3 to delete it). An event is its partition (``EVENT#<id>``: the event item and its links),
its dedupe claim, its entry in the index by name (``stepline.aws.event_names``) and
``events/<id>/``.

Expiry: the write that ends a run, when the store has a retention period, moves the run's
``gsi2`` keys from the sweeper's partitions to the expiry index's (``EXPIRE#<shard>`` /
``<expires_at:015d>#<run_id>``) and sets a TTL ``RUN_TTL_GRACE_MS`` after the expiry, a
backstop: the engine erases each run at its expiry (``expired_runs``, one Query per shard),
taking its steps, links and payloads with it, which TTL alone (one item at a time) would leave
behind. Events carry their own TTL from the moment they are stored, and their payload objects
a lifecycle rule of the same length, so ``expired_events`` lists none.
"""

from __future__ import annotations

import json
from typing import Any

from stepline.aws.client import TableClient
from stepline.aws.event_names import name_index_key
from stepline.aws.items import (
    GSI2,
    SWEEP_SHARDS,
    Item,
    claim_key,
    event_key,
    get_int,
    get_str,
    run_key,
    str_attr,
    sweep_shard,
)
from stepline.engine.records import NOTHING, Erased

# The run item's TTL comes this long after its expiry: the engine erases the whole run at the
# expiry, and TTL only removes a run item the engine could not get to in a week.
RUN_TTL_GRACE_MS = 7 * 24 * 3600 * 1000
EXPIRE_PREFIX = "EXPIRE#"


def expiry_index_keys(run_id: str, expires_at: int) -> Item:
    """Where an ended run sits in ``gsi2`` until it is erased: its shard's expiry partition."""
    return {
        "gsi2pk": str_attr(f"{EXPIRE_PREFIX}{sweep_shard(run_id)}"),
        "gsi2sk": str_attr(f"{expires_at:015d}#{run_id}"),
    }


class ErasureRecords:
    """The erasure half of ``DynamoRunStore``."""

    _t: TableClient
    retention_ms: int | None

    def erase_run(self, run_id: str) -> Erased:
        head = self._t.call(
            "get_item",
            Key=run_key(run_id),
            ConsistentRead=True,
            ProjectionExpression="event_ids",
        ).get("Item")
        keys = self._partition_keys(f"RUN#{run_id}")
        links: list[Item] = []
        if head is not None:
            # The event ids as stored; an offloaded list (a batch of thousands) is resolved.
            resolved = self._t.payloads.resolve([head]) if self._t.payloads is not None else [head]
            event_ids = _json_list(get_str(resolved[0], "event_ids", "[]"))
            links = [{"pk": str_attr(f"EVENT#{e}"), "sk": str_attr(f"RUN#{run_id}")} for e in dict.fromkeys(event_ids)]
        # Payloads first: once the items are gone nothing would name the objects again.
        payloads = self._t.payloads.delete_prefix(f"runs/{run_id}/") if self._t.payloads is not None else 0
        self._t.batch_write(deletes=links + keys)
        if not keys and not payloads:
            return NOTHING
        steps = sum(1 for k in keys if k["sk"]["S"].startswith("STEP#"))
        return Erased(runs=1 if head is not None else 0, steps=steps, links=len(links), payloads=payloads)

    def erase_event(self, internal_id: str) -> Erased:
        item = self._t.call(
            "get_item",
            Key=event_key(internal_id),
            ConsistentRead=True,
            ProjectionExpression="#id, #name, received_at",
            ExpressionAttributeNames={"#id": "id", "#name": "name"},
        ).get("Item")
        if item is not None:
            # The dedupe claim, only while it still names this event (the id may be reused).
            self._t.conditional(
                "delete_item",
                Key=claim_key(get_str(item, "id") or ""),
                ConditionExpression="internal_id = :mine",
                ExpressionAttributeValues={":mine": str_attr(internal_id)},
            )
        keys = self._partition_keys(f"EVENT#{internal_id}")
        payloads = self._t.payloads.delete_prefix(f"events/{internal_id}/") if self._t.payloads is not None else 0
        index = []
        if item is not None:  # its entry in the index by name (stepline.aws.event_names)
            index = [name_index_key(get_str(item, "name") or "", get_int(item, "received_at") or 0, internal_id)]
        self._t.batch_write(deletes=keys + index)
        return Erased(events=1 if item is not None else 0, links=len(keys) - (item is not None), payloads=payloads)

    def expired_runs(self, now_ms: int, *, limit: int) -> list[str]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        found: list[tuple[str, str]] = []  # (gsi2sk, run id)
        for shard in range(SWEEP_SHARDS):
            resp = self._t.call(
                "query",
                IndexName=GSI2,
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
                ExpressionAttributeValues={
                    ":pk": str_attr(f"{EXPIRE_PREFIX}{shard}"),
                    ":before": str_attr(f"{now_ms:015d}#"),
                },
                Limit=limit,
            )
            found += [(i["gsi2sk"]["S"], i["gsi2sk"]["S"].split("#", 1)[1]) for i in resp.get("Items", [])]
        return [run_id for _, run_id in sorted(found)[:limit]]

    def expired_events(self, now_ms: int, *, limit: int) -> list[str]:
        return []  # TTL deletes them (and a lifecycle rule their payload objects)

    def _partition_keys(self, pk: str) -> list[Item]:
        keys: list[Item] = []
        kwargs: dict[str, Any] = dict(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": str_attr(pk)},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        while True:
            resp = self._t.call("query", **kwargs)
            keys += [{"pk": i["pk"], "sk": i["sk"]} for i in resp.get("Items", [])]
            if not resp.get("LastEvaluatedKey"):
                return keys
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _json_list(text: str | None) -> list[str]:
    value = json.loads(text or "[]")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
