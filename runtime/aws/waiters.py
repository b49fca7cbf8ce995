"""Waiters on the table, in buckets: the unkeyed ones of an event name share ``WAIT#<name>``, the
keyed ones (stepline.engine.waiter_index) ``WAITKEY#<key>#<name>``, one item per (run, step)
each, so an event reads the buckets it can match with one Query each. ``WAITFIELDS#<name>`` lists
the fields keyed waiters of the name have used: one small Query tells an event which keys to make."""

from __future__ import annotations

from typing import Any

from stepline.aws.client import TableClient
from stepline.aws.items import (
    check_size,
    decode_cursor,
    encode_cursor,
    num_attr,
    str_attr,
    waiter_field_item,
    waiter_from_item,
    waiter_item,
    waiter_key,
    waiter_partition,
)
from stepline.aws.payloads import waiter_prefix
from stepline.engine.records import Waiter, WaiterPage


class WaiterRecords:
    """The waiter half of ``DynamoStore``."""

    _t: TableClient
    # (event name, field) pairs this process has written: the write is idempotent, and a field
    # item is never deleted, so it is made once per process rather than once per waiter.
    _fields_written: set[tuple[str, str]]

    def add_waiter(self, waiter: Waiter) -> bool:
        if waiter.match_key and waiter.match_field:
            self._record_field(waiter.event_name, waiter.match_field)
        item = waiter_item(waiter)
        # The trigger is the waiting run's first event: up to an event's full size.
        prefix = waiter_prefix(waiter.run_id, waiter.step_id)
        item["trigger"] = self._t.offload(item["trigger"], prefix)
        check_size(item, f"waiter {waiter.run_id}/{waiter.step_id} on {waiter.event_name}")
        added, _ = self._t.conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return added

    def _record_field(self, event_name: str, field: str) -> None:
        if (event_name, field) in self._fields_written:
            return
        self._t.call("put_item", Item=waiter_field_item(event_name, field))
        self._fields_written.add((event_name, field))

    def waiter_fields(self, event_name: str) -> list[str]:
        items = self._t.query_partition(f"WAITFIELDS#{event_name}")
        return [i["sk"]["S"] for i in items]

    def waiters_for_event(
        self,
        event_name: str,
        now_ms: int,
        match_key: str | None = None,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> WaiterPage:
        partition = str_attr(waiter_partition(event_name, match_key))
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            # Expired waiters stay until their timeout removes them (or TTL, long after).
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":pk": partition, ":now": num_attr(now_ms)},
            "ConsistentRead": True,
        }
        if limit is None:
            items, last = self._t.query(**query), None
        else:
            start = None if after is None else {"pk": partition, "sk": str_attr(decode_cursor(after))}
            items, last = self._t.query_page(limit, start, **query)
        waiters = sorted((waiter_from_item(i) for i in items), key=lambda w: (w.created_at, w.run_id, w.step_id))
        return WaiterPage(waiters, encode_cursor(last["sk"]["S"]) if last else None)

    def remove_waiter(self, event_name: str, run_id: str, step_id: str, match_key: str | None = None) -> bool:
        # The condition makes deletion a race with one winner: a plain DeleteItem succeeds for
        # every caller, including those that found nothing to delete.
        removed, _ = self._t.conditional(
            "delete_item",
            Key=waiter_key(event_name, run_id, step_id, match_key),
            ConditionExpression="attribute_exists(pk)",
        )
        return removed
