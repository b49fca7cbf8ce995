"""Flow-control records on the table: versioned state, key claims, concurrency slots and their
waiting line. Every write is one conditional request; reads are strongly consistent; nothing
scans.

    item                pk                  sk                  attributes
    ------------------  ------------------  ------------------  --------------------------------
    flow state          FLOW#<key>          STATE               version, data, expires_at, ttl
    key claim           FLOWKEY#<key>       CLAIM               holder, expires_at, ttl
    concurrency slot    CONC#<key>          SLOT#<index:06d>    owner, until, token, ttl
    line entry          CONC#<key>          WAIT#<position>     body, created_at

A key's slots and its line share one partition, so ``slot_view`` is one Query: slot items sort
before line entries ("SLOT#" < "WAIT#"), and the line comes back in position order. ``ttl`` only
tidies up: moto never applies it and AWS applies it days late, so every condition tests the
times (``expires_at``, ``until``) itself.
"""

from __future__ import annotations

from typing import Any

from stepline.aws.client import TableClient
from stepline.aws.items import Item, check_size, get_int, get_json, get_str, json_attr, num_attr, str_attr
from stepline.aws.payloads import flow_prefix
from stepline.engine.flow_records import FlowState, LineEntry, SlotHolder, SlotView

# A slot item outlives its expiry this long before TTL may delete it (an expired slot is free
# anyway; this only keeps the table tidy).
_SLOT_TTL_GRACE_S = 24 * 3600
# Line entries read per Query page beyond the ones asked for: room for the slot items that
# sort before them.
_SLOT_PAGE_ROOM = 32


def _state_key(key: str) -> Item:
    return {"pk": str_attr(f"FLOW#{key}"), "sk": str_attr("STATE")}


def _claim_key(key: str) -> Item:
    return {"pk": str_attr(f"FLOWKEY#{key}"), "sk": str_attr("CLAIM")}


def _slot_key(key: str, index: int) -> Item:
    return {"pk": str_attr(f"CONC#{key}"), "sk": str_attr(f"SLOT#{index:06d}")}


def _line_key(key: str, position: str) -> Item:
    return {"pk": str_attr(f"CONC#{key}"), "sk": str_attr(f"WAIT#{position}")}


def _ttl(ms: int) -> dict[str, Any]:
    return num_attr(-(-ms // 1000))


def _line_from_item(item: Item) -> LineEntry:
    return LineEntry(
        position=item["sk"]["S"].removeprefix("WAIT#"),
        body=get_json(item, "body", {}),
        created_at=get_int(item, "created_at") or 0,
    )


class FlowRecords:
    """The flow-control half of ``DynamoStore``."""

    _t: TableClient

    # -- versioned state ---------------------------------------------------------------------
    def get_flow_state(self, key: str, now_ms: int) -> FlowState | None:
        item = self._t.get(_state_key(key))
        if item is None:
            return None
        expires_at = get_int(item, "expires_at") or 0
        if expires_at <= now_ms:
            return None
        return FlowState(key, get_int(item, "version") or 0, get_json(item, "data", {}), expires_at)

    def put_flow_state(
        self,
        key: str,
        data: dict[str, Any],
        *,
        expect_version: int | None,
        expires_at: int,
        now_ms: int,
    ) -> bool:
        values: dict[str, Any] = {
            # A batch or a debounce holds whole events: as large as an event may be.
            ":data": self._t.offload(json_attr(data), flow_prefix(key)),
            ":exp": num_attr(expires_at),
            ":ttl": _ttl(expires_at),
            ":one": num_attr(1),
        }
        check_size({**_state_key(key), "data": values[":data"]}, f"flow state {key}")
        if expect_version is None:
            # Create, or take over an expired item; the version keeps rising either way.
            update = "SET #v = if_not_exists(#v, :zero) + :one"
            condition = "attribute_not_exists(pk) OR expires_at <= :now"
            values[":zero"] = num_attr(0)
            values[":now"] = num_attr(now_ms)
        else:
            update = "SET #v = #v + :one"
            condition = "#v = :expect"
            values[":expect"] = num_attr(expect_version)
        ok, _ = self._t.conditional(
            "update_item",
            Key=_state_key(key),
            UpdateExpression=update + ", #d = :data, expires_at = :exp, #ttl = :ttl",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#v": "version", "#d": "data", "#ttl": "ttl"},
            ExpressionAttributeValues=values,
        )
        return ok

    def delete_flow_state(self, key: str, expect_version: int) -> bool:
        ok, _ = self._t.conditional(
            "delete_item",
            Key=_state_key(key),
            ConditionExpression="#v = :expect",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":expect": num_attr(expect_version)},
        )
        return ok

    # -- key claims --------------------------------------------------------------------------
    def claim_key(
        self,
        key: str,
        holder: str,
        expires_at: int,
        now_ms: int,
        *,
        replacing: str | None = None,
    ) -> str:
        condition = "attribute_not_exists(pk) OR expires_at <= :now OR #h = :holder"
        values = {":now": num_attr(now_ms), ":holder": str_attr(holder)}
        if replacing is not None:
            condition += " OR #h = :replacing"
            values[":replacing"] = str_attr(replacing)
        won, old = self._t.conditional(
            "put_item",
            Item={
                **_claim_key(key),
                "holder": str_attr(holder),
                "expires_at": num_attr(expires_at),
                "ttl": _ttl(expires_at),
            },
            ConditionExpression=condition,
            ExpressionAttributeNames={"#h": "holder"},
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if won:
            return holder
        return get_str(old or {}, "holder", "") or ""

    def release_key(self, key: str, holder: str) -> bool:
        ok, _ = self._t.conditional(
            "delete_item",
            Key=_claim_key(key),
            ConditionExpression="#h = :holder",
            ExpressionAttributeNames={"#h": "holder"},
            ExpressionAttributeValues={":holder": str_attr(holder)},
        )
        return ok

    # -- concurrency slots and their line ----------------------------------------------------
    def slot_view(self, key: str, line_limit: int) -> SlotView:
        view = SlotView()
        kwargs: dict[str, Any] = dict(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": str_attr(f"CONC#{key}")},
            ConsistentRead=True,
            # Slots come first: room for them (a limit's worth, expired ones aside) and the
            # line head in one page; a Query is billed for what it reads, not for its Limit.
            Limit=2 * max(line_limit, 0) + _SLOT_PAGE_ROOM,
        )
        while True:
            resp = self._t.call("query", **kwargs)
            for item in resp.get("Items", []):
                sk = item["sk"]["S"]
                if sk.startswith("SLOT#"):
                    view.holders.append(
                        SlotHolder(
                            index=int(sk.removeprefix("SLOT#")),
                            owner=get_str(item, "owner", "") or "",
                            until=get_int(item, "until") or 0,
                            token=get_str(item, "token", "") or "",
                        )
                    )
                elif sk.startswith("WAIT#") and len(view.line) < line_limit:
                    view.line.append(_line_from_item(item))
            last = resp.get("LastEvaluatedKey")
            if not last or len(view.line) >= line_limit:
                return view
            kwargs["ExclusiveStartKey"] = last

    def take_slot(self, key: str, index: int, owner: str, until_ms: int, now_ms: int, token: str = "") -> bool:
        ok, _ = self._t.conditional(
            "put_item",
            Item={
                **_slot_key(key, index),
                "owner": str_attr(owner),
                "until": num_attr(until_ms),
                "token": str_attr(token),
                "ttl": num_attr(-(-until_ms // 1000) + _SLOT_TTL_GRACE_S),
            },
            ConditionExpression="attribute_not_exists(pk) OR #until < :now OR #owner = :owner",
            ExpressionAttributeNames={"#until": "until", "#owner": "owner"},
            ExpressionAttributeValues={":now": num_attr(now_ms), ":owner": str_attr(owner)},
        )
        return ok

    def release_slot(self, key: str, index: int, owner: str) -> bool:
        ok, _ = self._t.conditional(
            "delete_item",
            Key=_slot_key(key, index),
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": str_attr(owner)},
        )
        return ok

    def join_line(self, key: str, entry: LineEntry) -> bool:
        item = {
            **_line_key(key, entry.position),
            "body": json_attr(entry.body),
            "created_at": num_attr(entry.created_at),
        }
        check_size(item, f"line entry {entry.position} of {key}")
        ok, _ = self._t.conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return ok

    def leave_line(self, key: str, position: str) -> bool:
        ok, _ = self._t.conditional(
            "delete_item",
            Key=_line_key(key, position),
            ConditionExpression="attribute_exists(pk)",
        )
        return ok

    def line_entry(self, key: str, position: str) -> LineEntry | None:
        item = self._t.get(_line_key(key, position))
        return _line_from_item(item) if item else None
