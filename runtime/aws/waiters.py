"""Waiters on the table: one item per (event name, run, step) in the event name's partition, so
the events that may resume or cancel runs find their waiters with one Query."""

from __future__ import annotations

from stepline.aws.client import TableClient
from stepline.aws.items import (
    check_size,
    num_attr,
    str_attr,
    waiter_from_item,
    waiter_item,
    waiter_key,
)
from stepline.aws.payloads import waiter_prefix
from stepline.engine.records import Waiter


class WaiterRecords:
    """The waiter half of ``DynamoStore``."""

    _t: TableClient

    def add_waiter(self, waiter: Waiter) -> bool:
        item = waiter_item(waiter)
        # The trigger is the waiting run's first event: up to an event's full size.
        prefix = waiter_prefix(waiter.run_id, waiter.step_id)
        item["trigger"] = self._t.offload(item["trigger"], prefix)
        check_size(item, f"waiter {waiter.run_id}/{waiter.step_id} on {waiter.event_name}")
        added, _ = self._t.conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return added

    def waiters_for_event(self, event_name: str, now_ms: int) -> list[Waiter]:
        items = self._t.query(
            KeyConditionExpression="pk = :pk",
            # Expired waiters stay until their timeout removes them (or TTL, long after).
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": str_attr(f"WAIT#{event_name}"),
                ":now": num_attr(now_ms),
            },
            ConsistentRead=True,
        )
        waiters = [waiter_from_item(i) for i in items]
        return sorted(waiters, key=lambda w: (w.created_at, w.run_id, w.step_id))

    def remove_waiter(self, event_name: str, run_id: str, step_id: str) -> bool:
        # The condition makes deletion a race with one winner: a plain DeleteItem succeeds for
        # every caller, including those that found nothing to delete.
        removed, _ = self._t.conditional(
            "delete_item",
            Key=waiter_key(event_name, run_id, step_id),
            ConditionExpression="attribute_exists(pk)",
        )
        return removed
