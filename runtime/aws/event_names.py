"""Events by name and time on the table, for a wait's look-back (``EventStore.recent_events``).

Each stored event also gets a small index item in the base table (not a GSI: a GSI is read
eventually consistent, and the look-back exists to close a race of milliseconds):

    item              pk                           sk
    ----------------  ---------------------------  -------------------------------------
    event name index  EVNAME#<shard>#<event name>  <received_at:015d>#<internal_id>

written in the same BatchWriteItem as the event, with a TTL two days after it was received (a
look-back reaches back 24 hours at most). ``shard`` is crc32 of the internal id mod
``NAME_SHARDS``, so one busy name spreads its writes over that many partitions; a look-back reads
one Query page per shard, newest first, and one BatchGetItem of the events it keeps.
"""

from __future__ import annotations

import zlib
from typing import Any

from stepline.aws.client import TableClient
from stepline.aws.items import Item, event_from_item, event_key, num_attr, str_attr
from stepline.engine.records import DAY_MS, StoredEvent

NAME_SHARDS = 4
# How long an index item outlives its event's arrival: past any look-back.
NAME_INDEX_TTL_MS = 2 * DAY_MS


def _sort_key(received_at: int, internal_id: str) -> str:
    return f"{received_at:015d}#{internal_id}"


def name_index_key(name: str, received_at: int, internal_id: str) -> Item:
    shard = zlib.crc32(internal_id.encode()) % NAME_SHARDS
    return {"pk": str_attr(f"EVNAME#{shard}#{name}"), "sk": str_attr(_sort_key(received_at, internal_id))}


def name_index_item(event: StoredEvent) -> Item:
    return {
        **name_index_key(event.name, event.received_at, event.internal_id),
        "ttl": num_attr((event.received_at + NAME_INDEX_TTL_MS) // 1000),
    }


class EventNameIndex:
    """The look-back half of ``DynamoStore``'s events."""

    _t: TableClient

    def recent_events(self, name: str, since_ms: int, until_ms: int, *, limit: int) -> list[StoredEvent]:
        if limit < 1 or since_ms > until_ms:
            return []
        # Sort keys are fixed-width times, so a string range is a time range; "~" sorts after
        # every internal id.
        low, high = _sort_key(since_ms, ""), _sort_key(until_ms, "~")
        keys: list[str] = []
        for shard in range(NAME_SHARDS):
            query: dict[str, Any] = dict(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": str_attr(f"EVNAME#{shard}#{name}"),
                    ":lo": str_attr(low),
                    ":hi": str_attr(high),
                },
                ScanIndexForward=False,
                ConsistentRead=True,
                Limit=limit,
            )
            keys += [i["sk"]["S"] for i in self._t.call("query", **query).get("Items", [])]
        newest = sorted(keys, reverse=True)[:limit]
        ids = [k.partition("#")[2] for k in newest]
        found = {e.internal_id: e for e in map(event_from_item, self._t.batch_get([event_key(i) for i in ids]))}
        # An index item whose event was erased (or expired by TTL first) is skipped.
        return [found[i] for i in ids if i in found]
