"""Events on the table: claims for 24-hour dedupe, event items, day-bucketed listing."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stepline.aws.client import TableClient
from stepline.aws.errors import describe, error_code
from stepline.aws.event_names import name_index_item
from stepline.aws.items import (
    EVENT_SHARDS,
    GSI1,
    Item,
    check_size,
    chunks,
    claim_key,
    day_of,
    encode_cursor,
    event_from_item,
    event_item,
    event_key,
    event_partition,
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


# DynamoDB: a transaction holds at most 100 actions.
TRANSACT_MAX_ITEMS = 100
# Transactions of claims tried again after others cancelled them, before claiming one by one.
_CLAIM_ROUNDS = 3


def _claim_item(event: StoredEvent, now_ms: int) -> Item:
    expires_at = now_ms + EVENT_DEDUPE_WINDOW_MS
    return {
        **claim_key(event.id),
        "internal_id": str_attr(event.internal_id),
        "expires_at": num_attr(expires_at),
        "ttl": num_attr(-(-expires_at // 1000)),
    }


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
        minted: list[int] = []
        to_claim: list[int] = []
        for index, event in enumerate(events):
            if event.id in first_with_id:
                duplicates_in_batch.append((index, first_with_id[event.id]))
                continue
            first_with_id[event.id] = index
            if event.id == event.internal_id:
                minted.append(index)
                continue
            to_claim.append(index)
        # Each user id is claimed for 24 h, 100 claims per transaction (a request may hold 5,000).
        claims = self._claim_event_ids([events[i] for i in to_claim], now_ms)
        for index, (won, holder) in zip(to_claim, claims, strict=True):
            if won:
                claimed.append(index)
                results[index] = events[index]
            else:
                earlier[index] = holder
        # An id we minted has nothing to claim, but the same internal id sent again (a retried
        # request with seeded ids) is the same event: the stored one is kept. Read in batches
        # of 100, not one conditional put each (a request may hold 5,000). Two retries racing
        # between the read and the write both write the same event, seeded from the same request.
        if minted:
            found = self._t.batch_get([event_key(events[i].internal_id) for i in minted])
            stored = {e.internal_id: e for e in map(event_from_item, found)}
            for index in minted:
                results[index] = stored.get(events[index].internal_id)
                if results[index] is None:
                    claimed.append(index)
                    results[index] = events[index]
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

    def _claim_event_ids(self, events: list[StoredEvent], now_ms: int) -> list[tuple[bool, str]]:
        """``_claim_event_id`` for each of ``events`` (distinct ids), in transactions of up to
        100 conditional puts. A cancelled transaction names the claims whose condition failed
        (held by another event: the holder comes back); the rest are tried again."""
        outcome: dict[int, tuple[bool, str]] = {}
        todo = list(range(len(events)))
        for _round in range(_CLAIM_ROUNDS):
            if not todo:
                break
            retry: list[int] = []
            for chunk in chunks(todo, TRANSACT_MAX_ITEMS):
                if len(chunk) == 1:  # a transaction of one costs twice a plain conditional put
                    outcome[chunk[0]] = self._claim_event_id(events[chunk[0]], now_ms)
                    continue
                puts = [
                    {
                        "Put": {
                            "TableName": self._t.name,
                            "Item": _claim_item(events[i], now_ms),
                            "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                            "ExpressionAttributeValues": {":now": num_attr(now_ms)},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                    for i in chunk
                ]
                try:
                    self._t.client.transact_write_items(TransactItems=puts)
                except ClientError as exc:
                    if error_code(exc) != "TransactionCanceledException":
                        raise StoreError(f"DynamoDB TransactWriteItems failed: {describe(exc)}") from exc
                    reasons = exc.response.get("CancellationReasons") or []
                    for i, reason in zip(chunk, reasons, strict=False):
                        if reason.get("Code") == "ConditionalCheckFailed":
                            outcome[i] = (False, get_str(reason.get("Item") or {}, "internal_id", "") or "")
                        else:
                            retry.append(i)  # rolled back with the others (or in conflict)
                    retry += chunk[len(reasons) :]
                    continue
                except BotoCoreError as exc:
                    raise StoreError(f"DynamoDB TransactWriteItems failed: {describe(exc)}") from exc
                outcome.update((i, (True, "")) for i in chunk)
            todo = retry
        for i in todo:  # still contended after the rounds: one at a time
            outcome[i] = self._claim_event_id(events[i], now_ms)
        return [outcome[i] for i in range(len(events))]

    def _claim_event_id(self, event: StoredEvent, now_ms: int, *, replacing: str | None = None) -> tuple[bool, str]:
        """Claim ``event.id`` for 24 h. (True, "") when ours, else (False, holder's internal id)."""
        item = _claim_item(event, now_ms)
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
            # Each event's index item by name and time (stepline.aws.event_names) rides along.
            names = [name_index_item(e) for e in events]
            self._t.batch_write(puts=self._new_day_items(events) + items + names)
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
            # Each shard's newest ``want`` rows, merged: the day's newest ``want`` are among them.
            day = day_item["sk"]["S"]
            merged: list[Item] = []
            for shard in [*range(EVENT_SHARDS), None]:
                merged += self._event_index_keys(
                    event_partition(day, shard), low, high, exclude, name, want - len(found)
                )
            merged.sort(key=lambda i: i["gsi1sk"]["S"], reverse=True)
            found += merged[: want - len(found)]
            if len(found) >= want:
                break
        return found[:want]

    def _event_index_keys(
        self, partition: str, low: str, high: str, exclude: str | None, name: str | None, want: int
    ) -> list[Item]:
        """Up to ``want`` newest index rows of one ``gsi1`` partition in ``[low, high]``."""
        extra: dict[str, Any] = {}
        values = {":pk": str_attr(partition), ":lo": str_attr(low), ":hi": str_attr(high)}
        if name is not None:
            extra = {"FilterExpression": "#name = :name", "ExpressionAttributeNames": {"#name": "name"}}
            values[":name"] = str_attr(name)
        found: list[Item] = []
        start: Item | None = None
        while len(found) < want:
            kwargs: dict[str, Any] = dict(
                IndexName=GSI1,
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                # One spare for the cursor's own row, which BETWEEN includes. A name filter
                # reads wider pages: Limit counts the rows read, not those that match.
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
        return found[:want]
