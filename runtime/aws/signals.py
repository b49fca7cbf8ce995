"""Runs waiting for a signal (``SignalStore``) on the table: one item per signal,
``SIGNAL#<signal>`` / ``SIGNAL``, holding the waiting run and step. Every write is one conditional
PutItem, every read one consistent GetItem. The item's TTL deletes it a while after it expires;
until then a read skips it by ``expires_at``."""

from __future__ import annotations

from stepline.aws.client import TableClient
from stepline.aws.items import WAITER_TTL_GRACE_MS, Item, get_int, get_str, num_attr, str_attr
from stepline.engine.records import SignalWait


def _key(signal: str) -> Item:
    return {"pk": str_attr(f"SIGNAL#{signal}"), "sk": str_attr("SIGNAL")}


def _item(wait: SignalWait) -> Item:
    return {
        **_key(wait.signal),
        "run_id": str_attr(wait.run_id),
        "step_id": str_attr(wait.step_id),
        "expires_at": num_attr(wait.expires_at),
        "created_at": num_attr(wait.created_at),
        "ttl": num_attr((wait.expires_at + WAITER_TTL_GRACE_MS) // 1000),
    }


def _wait(signal: str, item: Item) -> SignalWait:
    return SignalWait(
        signal,
        get_str(item, "run_id") or "",
        get_str(item, "step_id") or "",
        get_int(item, "expires_at") or 0,
        get_int(item, "created_at") or 0,
    )


class SignalRecords:
    """The signal half of ``DynamoStore``."""

    _t: TableClient

    def put_signal_wait(self, wait: SignalWait, now_ms: int, *, replace: bool = False) -> SignalWait:
        # Free (none, or expired) is always taken; with replace, so is any live wait but this
        # very one (a re-report keeps its first times). A refusal returns the wait that stands.
        condition = "attribute_not_exists(pk) OR expires_at <= :now"
        values = {":now": num_attr(now_ms)}
        if replace:
            condition += " OR run_id <> :run OR step_id <> :step"
            values.update({":run": str_attr(wait.run_id), ":step": str_attr(wait.step_id)})
        written, old = self._t.conditional(
            "put_item",
            Item=_item(wait),
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if written or not old:
            return wait
        return _wait(wait.signal, old)

    def get_signal_wait(self, signal: str, now_ms: int) -> SignalWait | None:
        item = self._t.get(_key(signal))
        if item is None or (get_int(item, "expires_at") or 0) <= now_ms:
            return None
        return _wait(signal, item)

    def remove_signal_wait(self, signal: str, run_id: str, step_id: str) -> bool:
        removed, _ = self._t.conditional(
            "delete_item",
            Key=_key(signal),
            ConditionExpression="run_id = :run AND step_id = :step",
            ExpressionAttributeValues={":run": str_attr(run_id), ":step": str_attr(step_id)},
        )
        return removed
