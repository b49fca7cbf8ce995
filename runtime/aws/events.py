"""Events on the table: claims for 24-hour dedupe, event items, day-bucketed listing."""

from __future__ import annotations

import time
from typing import Any

from stepline.aws.client import TableClient
from stepline.aws.items import (
    GSI1,
    Item,
    check_size,
    claim_key,
    day_of,
    encode_cursor,
    event_from_item,
    event_item,
    event_key,
    get_str,
    num_attr,
    str_attr,
    time_key_window,
)
from stepline.aws.payloads import event_prefix
from stepline.engine.ports import StoreError
from stepline.engine.records import EVENT_DEDUPE_WINDOW_MS, StoredEvent

# How long a duplicate waits for the first writer's event item before deciding that writer died
# between its claim and its event write (and taking the id over).
ORPHAN_WAITS_S = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
# The event attributes that hold user JSON, and so may be offloaded to S3.
_EVENT_JSON_ATTRS = ("data", "user")


class EventRecords:
    """The event half of ``DynamoStore``."""

    _t: TableClient
    # Days already registered in EVENTDAYS by this process: one write per day, not per event.
    _known_days: set[str]
    # With a retention period, an event expires that long after it was received, by TTL.
    retention_ms: int | None

    def save_events(self, events: list[StoredEvent], now_ms: int) -> list[StoredEvent]:
        # Encode, offload and size-check everything before the first write: a claim whose
        # event then fails to store would block its id until the orphan take-over below.
        items = [self._event_item(e) for e in events]
        for event, item in zip(events, items, strict=True):
            check_size(item, f"event {event.internal_id} ({event.name})")
        results: list[StoredEvent | None] = [None] * len(events)
        first_with_id: dict[str, int] = {}
        duplicates_in_batch: list[tuple[int, int]] = []
        earlier: dict[int, str] = {}  # index -> internal id the id's claim already points at
        claimed: list[int] = []
        for index, event in enumerate(events):
            if event.id in first_with_id:
                duplicates_in_batch.append((index, first_with_id[event.id]))
                continue
            first_with_id[event.id] = index
            if event.id == event.internal_id:
                # An id we minted has nothing to claim, but the same internal id sent again (a
                # retried request with seeded ids) is the same event: create-only put.
                results[index] = self._put_event_once(event, items[index])
                continue
            won, holder = self._claim_event_id(event, now_ms)
            if won:
                claimed.append(index)
                results[index] = event
            else:
                earlier[index] = holder
        # Claims decided which events are new, so their items need no condition: one batch.
        self._write_events([events[i] for i in claimed], [items[i] for i in claimed])
        if earlier:
            self._resolve_earlier(events, earlier, results, now_ms)
        for index, first in duplicates_in_batch:
            results[index] = results[first]
        return [r for r in results if r is not None]

    def _event_item(self, event: StoredEvent) -> Item:
        item = event_item(event)
        for name in _EVENT_JSON_ATTRS:
            item[name] = self._t.offload(item[name], event_prefix(event.internal_id, name))
        if self.retention_ms:
            expires_at = event.received_at + self.retention_ms
            item["expires_at"] = num_attr(expires_at)
            item["ttl"] = num_attr(-(-expires_at // 1000))
        return item

    def _put_event_once(self, event: StoredEvent, item: Item) -> StoredEvent:
        self._register_days([event])
        created, old = self._t.conditional(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not created:
            return event_from_item(old) if old else self.get_event(event.internal_id) or event
        return event

    def _claim_event_id(self, event: StoredEvent, now_ms: int, *, replacing: str | None = None) -> tuple[bool, str]:
        """Claim ``event.id`` for 24 h. (True, "") when ours, else (False, holder's internal id)."""
        expires_at = now_ms + EVENT_DEDUPE_WINDOW_MS
        item = {
            **claim_key(event.id),
            "internal_id": str_attr(event.internal_id),
            "expires_at": num_attr(expires_at),
            "ttl": num_attr(-(-expires_at // 1000)),
        }
        if replacing is None:
            condition = "attribute_not_exists(pk) OR expires_at <= :now"
            values = {":now": num_attr(now_ms)}
        else:
            condition = "internal_id = :holder"
            values = {":holder": str_attr(replacing)}
        won, old = self._t.conditional(
            "put_item",
            Item=item,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if won:
            return True, ""
        return False, get_str(old or {}, "internal_id", "") or ""

    def _write_events(self, events: list[StoredEvent], items: list[Item] | None = None) -> None:
        # Day items go first (and in the same batch when it fits): an event whose day is not
        # registered would be stored but never listed.
        if events:
            items = items if items is not None else [self._event_item(e) for e in events]
            self._t.batch_write(puts=self._new_day_items(events) + items)
            self._known_days |= {day_of(e.received_at) for e in events}

    def _register_days(self, events: list[StoredEvent]) -> None:
        items = self._new_day_items(events)
        if items:
            self._t.batch_write(puts=items)
            self._known_days |= {day_of(e.received_at) for e in events}

    def _new_day_items(self, events: list[StoredEvent]) -> list[Item]:
        days = {day_of(e.received_at) for e in events} - self._known_days
        return [{"pk": str_attr("EVENTDAYS"), "sk": str_attr(day)} for day in sorted(days)]

    def _resolve_earlier(
        self,
        events: list[StoredEvent],
        earlier: dict[int, str],
        results: list[StoredEvent | None],
        now_ms: int,
    ) -> None:
        items = self._t.batch_get([event_key(i) for i in earlier.values()])
        stored = {e.internal_id: e for e in map(event_from_item, items)}
        for index, holder in earlier.items():
            results[index] = stored.get(holder) or self._wait_or_take_over(events[index], holder, now_ms)

    def _wait_or_take_over(self, event: StoredEvent, holder: str, now_ms: int) -> StoredEvent:
        """The claim's event item is missing: its writer is either mid-write or died between
        claim and write. Wait briefly for the first; on silence take the id over, so an event
        whose first acceptance never completed is not lost to its own retry."""
        for _attempt in range(3):
            for pause in ORPHAN_WAITS_S:
                time.sleep(pause)
                found = self.get_event(holder) if holder else None
                if found is not None:
                    return found
            won, holder = self._claim_event_id(event, now_ms, replacing=holder)
            if won:
                self._write_events([event])
                return event
            if not holder:  # the claim vanished (TTL): claim afresh
                won, holder = self._claim_event_id(event, now_ms)
                if won:
                    self._write_events([event])
                    return event
        raise StoreError(f"event id {event.id!r} is claimed by an event that cannot be read")

    def get_event(self, internal_id: str) -> StoredEvent | None:
        item = self._t.get(event_key(internal_id))
        return event_from_item(item) if item else None

    def list_events(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        name: str | None = None,
        received_after: int | None = None,
        received_before: int | None = None,
    ) -> tuple[list[StoredEvent], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Sort keys are "<received_at:015d>#<internal_id>".
        window = time_key_window(received_after, received_before, cursor)
        if window is None:
            return [], None
        low, high, after_key = window
        keys = self._newest_event_keys(low, high, after_key, name, want=limit + 1)
        page_keys = keys[:limit]
        items = {
            get_str(i, "internal_id"): i for i in self._t.batch_get([{"pk": k["pk"], "sk": k["sk"]} for k in page_keys])
        }
        page = [
            event_from_item(items[iid])
            for iid in (k["pk"]["S"].removeprefix("EVENT#") for k in page_keys)
            if iid in items
        ]
        next_cursor = encode_cursor(page_keys[-1]["gsi1sk"]["S"]) if len(keys) > limit else None
        return page, next_cursor

    def _newest_event_keys(self, low: str, high: str, exclude: str | None, name: str | None, want: int) -> list[Item]:
        days = self._t.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": str_attr("EVENTDAYS"),
                ":lo": str_attr(day_of(int(low[:15])) if low != "0" else "0000-00-00"),
                ":hi": str_attr(day_of(int(high[:15])) if high != "~" else "9999-99-99"),
            },
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        found: list[Item] = []
        for day_item in days:
            extra: dict[str, Any] = {}
            if name is not None:
                extra = {
                    "FilterExpression": "#name = :name",
                    "ExpressionAttributeNames": {"#name": "name"},
                }
            values = {
                ":pk": str_attr(f"EVENTS#{day_item['sk']['S']}"),
                ":lo": str_attr(low),
                ":hi": str_attr(high),
            }
            if name is not None:
                values[":name"] = str_attr(name)
            start: Item | None = None
            while len(found) < want:
                kwargs: dict[str, Any] = dict(
                    IndexName=GSI1,
                    KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi",
                    ExpressionAttributeValues=values,
                    ScanIndexForward=False,
                    # One spare for the cursor's own row, which BETWEEN includes. A name
                    # filter reads wider pages: Limit counts the rows read, not those that match.
                    Limit=want - len(found) + 1 if name is None else max(want + 1, 100),
                    **extra,
                )
                if start is not None:
                    kwargs["ExclusiveStartKey"] = start
                resp = self._t.call("query", **kwargs)
                found.extend(i for i in resp.get("Items", []) if i["gsi1sk"]["S"] != exclude)
                start = resp.get("LastEvaluatedKey")
                if not start:
                    break
            if len(found) >= want:
                break
        return found[:want]
