"""How Stepline's records are laid out as DynamoDB items: keys, attribute encoding, and the
conversions both ways. The key design itself is drawn at the top of ``stepline.aws.table``.

JSON values are stored as JSON text so DynamoDB numbers (Decimal) never reach the engine;
integers the engine owns (times, versions) are numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from stepline.engine.ports import StoreError
from stepline.engine.records import (
    AppRecord,
    FunctionRecord,
    Run,
    RunStatus,
    StoredEvent,
    Waiter,
    WaiterKind,
)

Item = dict[str, dict[str, Any]]

# DynamoDB rejects items over 400 KB (moto at 405,000 B); stay under both with a clear message.
MAX_ITEM_BYTES = 400_000
# The listing index, shared by event listing (by day) and run listing (by function).
GSI1 = "gsi1"
# The sweeper's index: live runs by wake_at, spread over a fixed number of partitions so that
# releases (each one moves its run's key) never crowd one partition. The count is part of the
# key design: changing it would strand the keys already written under the old spread.
GSI2 = "gsi2"
SWEEP_SHARDS = 8
# The event listing's day partitions, spread the same way: every event of a day would otherwise
# write one gsi1 partition, and a partition takes about 1,000 writes/s (a throttled GSI throttles
# the table's writes too). Listing reads every shard of a day and merges. Part of the key design:
# events written before sharding sit in the day's unsharded partition, which listing still reads.
EVENT_SHARDS = 16
# A waiter outlives its expiry by this much before TTL may delete it: its timeout timer, which
# fires at expiry, must still find it to win it (remove_waiter) and resume the run.
WAITER_TTL_GRACE_MS = 7 * 24 * 3600 * 1000


# -- attribute codec ---------------------------------------------------------------------------


def str_attr(value: str) -> dict[str, Any]:
    return {"S": value}


def num_attr(value: int) -> dict[str, Any]:
    return {"N": str(int(value))}


def json_attr(value: Any) -> dict[str, Any]:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (legal in parsed JSON, not in UTF-8): fall back to \u escapes.
        text = json.dumps(value, separators=(",", ":"))
    return {"S": text}


def get_str(item: Item, name: str, default: str | None = None) -> str | None:
    attr = item.get(name)
    return attr["S"] if attr and "S" in attr else default


def get_int(item: Item, name: str) -> int | None:
    attr = item.get(name)
    return int(attr["N"]) if attr and "N" in attr else None


def get_json(item: Item, name: str, default: Any = None) -> Any:
    attr = item.get(name)
    return json.loads(attr["S"]) if attr and "S" in attr else default


def item_bytes(item: Item) -> int:
    """DynamoDB's size of an item: attribute names plus values (numbers and others estimated)."""
    total = 0
    for name, attr in item.items():
        total += len(name.encode("utf-8"))
        for kind, value in attr.items():
            if kind == "S":
                total += len(value.encode("utf-8", "surrogatepass"))
            elif kind == "N":
                total += len(value)
            else:
                total += 1
    return total


def check_size(item: Item, what: str) -> None:
    """Refuse an item DynamoDB would refuse, before anything is written. Large JSON values are
    offloaded to S3 first (``stepline.aws.payloads``), so with a payload bucket this only trips
    on records whose non-JSON attributes are huge."""
    size = item_bytes(item)
    if size > MAX_ITEM_BYTES:
        raise StoreError(
            f"{what} is {size} bytes, over the {MAX_ITEM_BYTES}-byte DynamoDB item limit "
            "(large values go to S3 only when a payload bucket is set: STEPLINE_PAYLOAD_BUCKET)"
        )


def chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


# -- keys --------------------------------------------------------------------------------------


def run_key(run_id: str) -> Item:
    return {"pk": str_attr(f"RUN#{run_id}"), "sk": str_attr("RUN")}


def step_key(run_id: str, step_id: str) -> Item:
    return {"pk": str_attr(f"RUN#{run_id}"), "sk": str_attr(f"STEP#{step_id}")}


def event_key(internal_id: str) -> Item:
    return {"pk": str_attr(f"EVENT#{internal_id}"), "sk": str_attr("EVENT")}


def claim_key(event_id: str) -> Item:
    return {"pk": str_attr(f"EVID#{event_id}"), "sk": str_attr("EVID")}


def event_sort_key(received_at: int, internal_id: str) -> str:
    return f"{received_at:015d}#{internal_id}"


def run_index_keys(fn_id: str, created_at: int, run_id: str) -> Item:
    """Where a run sits in ``gsi1``: its function's partition, by creation time."""
    return {
        "gsi1pk": str_attr(f"FNRUNS#{fn_id}"),
        "gsi1sk": str_attr(f"{created_at:015d}#{run_id}"),
    }


def sweep_shard(run_id: str) -> int:
    # CRC-32, not hash(): the same shard in every process, whatever PYTHONHASHSEED says.
    return zlib.crc32(run_id.encode()) % SWEEP_SHARDS


def sweep_index_keys(run_id: str, wake_at: int) -> Item:
    """Where a live run sits in ``gsi2``: its shard's partition, by wake_at."""
    return {
        "gsi2pk": str_attr(f"SWEEP#{sweep_shard(run_id)}"),
        "gsi2sk": str_attr(f"{wake_at:015d}#{run_id}"),
    }


def waiter_partition(event_name: str, match_key: str | None) -> str:
    """A bucket of waiters: the event name's unkeyed one, or that of a key on the event name."""
    return f"WAITKEY#{match_key}#{event_name}" if match_key else f"WAIT#{event_name}"


def waiter_key(event_name: str, run_id: str, step_id: str, match_key: str | None = None) -> Item:
    return {"pk": str_attr(waiter_partition(event_name, match_key)), "sk": str_attr(f"{run_id}#{step_id}")}


def waiter_field_item(event_name: str, field: str) -> Item:
    return {"pk": str_attr(f"WAITFIELDS#{event_name}"), "sk": str_attr(field)}


# -- records <-> items -------------------------------------------------------------------------

# How each Run field is stored: "s" string, "n" integer, "b" bool, "j" JSON text, "status",
# "o" JSON text absent when None (small: never offloaded).
_RUN_FIELDS: dict[str, str] = {
    "fn_id": "s",
    "app_id": "s",
    "status": "status",
    "events": "j",
    "event_ids": "j",
    "created_at": "n",
    "started_at": "n",
    "ended_at": "n",
    "output": "j",
    "error": "j",
    "req_version": "n",
    "lease_owner": "s",
    "lease_until": "n",
    "origin": "o",
    "wake_at": "n",
    "app_version": "s",
    "trace": "s",
}


# The Run fields held as JSON text: the ones that may be large, and so offloaded to S3.
RUN_JSON_FIELDS = frozenset(name for name, kind in _RUN_FIELDS.items() if kind == "j")


def encode_run_field(name: str, value: Any) -> dict[str, Any] | None:
    """The attribute value for a Run field, or None when the attribute should be absent."""
    kind = _RUN_FIELDS.get(name)
    if kind is None:
        raise ValueError(f"unknown or read-only Run field: {name!r}")
    if kind == "j":
        return json_attr(value)
    if value is None:
        return None
    if kind == "o":
        return json_attr(value)
    if kind == "status":
        return str_attr(RunStatus(value).value)
    if kind == "n":
        return num_attr(value)
    if kind == "b":
        return {"BOOL": bool(value)}
    return str_attr(str(value))


def run_item(run: Run) -> Item:
    item: Item = {
        **run_key(run.run_id),
        **run_index_keys(run.fn_id, run.created_at, run.run_id),
        "run_id": str_attr(run.run_id),
    }
    for name in _RUN_FIELDS:
        encoded = encode_run_field(name, getattr(run, name))
        if encoded is not None:
            item[name] = encoded
    if run.wake_at is not None and not run.status.terminal:
        item.update(sweep_index_keys(run.run_id, run.wake_at))
    return item


def run_from_item(item: Item) -> Run:
    return Run(
        run_id=get_str(item, "run_id") or "",
        fn_id=get_str(item, "fn_id") or "",
        app_id=get_str(item, "app_id") or "",
        status=RunStatus(get_str(item, "status")),
        events=get_json(item, "events", []),
        event_ids=get_json(item, "event_ids", []),
        created_at=get_int(item, "created_at") or 0,
        started_at=get_int(item, "started_at"),
        ended_at=get_int(item, "ended_at"),
        output=get_json(item, "output"),
        error=get_json(item, "error"),
        req_version=_req_version(item),
        lease_owner=get_str(item, "lease_owner"),
        lease_until=get_int(item, "lease_until"),
        origin=get_json(item, "origin"),
        wake_at=get_int(item, "wake_at"),
        app_version=get_str(item, "app_version"),
        trace=get_str(item, "trace"),
    )


def event_shard(internal_id: str) -> int:
    return zlib.crc32(internal_id.encode()) % EVENT_SHARDS


def event_partition(day: str, shard: int | None) -> str:
    """An event day's ``gsi1`` partition: ``EVENTS#<day>#<shard>`` (None: the unsharded one
    events were written to before sharding)."""
    return f"EVENTS#{day}" if shard is None else f"EVENTS#{day}#{shard}"


def event_item(event: StoredEvent) -> Item:
    item: Item = {
        **event_key(event.internal_id),
        "gsi1pk": str_attr(event_partition(day_of(event.received_at), event_shard(event.internal_id))),
        "gsi1sk": str_attr(event_sort_key(event.received_at, event.internal_id)),
        "internal_id": str_attr(event.internal_id),
        "id": str_attr(event.id),
        "name": str_attr(event.name),
        "data": json_attr(event.data),
        "ts": num_attr(event.ts),
        "received_at": num_attr(event.received_at),
        "user": json_attr(event.user),
    }
    if event.v is not None:
        item["v"] = str_attr(event.v)
    if event.trace:
        item["trace"] = json_attr(event.trace)
    return item


def event_from_item(item: Item) -> StoredEvent:
    return StoredEvent(
        internal_id=get_str(item, "internal_id") or "",
        id=get_str(item, "id") or "",
        name=get_str(item, "name") or "",
        data=get_json(item, "data", {}),
        ts=get_int(item, "ts") or 0,
        received_at=get_int(item, "received_at") or 0,
        user=get_json(item, "user", {}),
        v=get_str(item, "v"),
        trace=get_json(item, "trace", None),
    )


def app_item(app: AppRecord) -> Item:
    return {
        "pk": str_attr("CATALOG"),
        "sk": str_attr(f"APP#{app.app_id}"),
        "app_id": str_attr(app.app_id),
        "url": str_attr(app.url),
        "synced_at": num_attr(app.synced_at),
        "sdk": str_attr(app.sdk),
        "framework": str_attr(app.framework),
        "app_version": str_attr(app.app_version),
        "function_ids": json_attr(list(app.function_ids)),
    }


def app_from_item(item: Item) -> AppRecord:
    return AppRecord(
        app_id=get_str(item, "app_id") or "",
        url=get_str(item, "url") or "",
        synced_at=get_int(item, "synced_at") or 0,
        sdk=get_str(item, "sdk", "") or "",
        framework=get_str(item, "framework", "") or "",
        app_version=get_str(item, "app_version", "") or "",
        function_ids=get_json(item, "function_ids", []),
    )


def _function_json(fn: FunctionRecord) -> dict[str, Any]:
    return {
        "fn_id": fn.fn_id,
        "app_id": fn.app_id,
        "name": fn.name,
        "url": fn.url,
        "config": fn.config,
        "event_triggers": list(fn.event_triggers),
    }


def function_from_json(doc: dict[str, Any]) -> FunctionRecord:
    return FunctionRecord(
        fn_id=doc["fn_id"],
        app_id=doc["app_id"],
        name=doc["name"],
        url=doc["url"],
        config=doc["config"],
        event_triggers=list(doc.get("event_triggers") or []),
    )


def function_item(fn: FunctionRecord) -> Item:
    return {
        "pk": str_attr("CATALOG"),
        "sk": str_attr(f"FN#{fn.fn_id}"),
        "fn": json_attr(_function_json(fn)),
    }


def trigger_item(event_name: str, fn: FunctionRecord) -> Item:
    return {
        "pk": str_attr(f"TRIGGER#{event_name}"),
        "sk": str_attr(f"FN#{fn.fn_id}"),
        "fn": json_attr(_function_json(fn)),
    }


def waiter_item(waiter: Waiter) -> Item:
    item: Item = {
        **waiter_key(waiter.event_name, waiter.run_id, waiter.step_id, waiter.match_key),
        "event_name": str_attr(waiter.event_name),
        "run_id": str_attr(waiter.run_id),
        "step_id": str_attr(waiter.step_id),
        "kind": str_attr(WaiterKind(waiter.kind).value),
        "expires_at": num_attr(waiter.expires_at),
        "created_at": num_attr(waiter.created_at),
        "trigger": json_attr(waiter.trigger),
        "ttl": num_attr((waiter.expires_at + WAITER_TTL_GRACE_MS) // 1000),
    }
    if waiter.expression is not None:
        item["expression"] = str_attr(waiter.expression)
    if waiter.match_key and waiter.match_field:
        item["match_field"] = str_attr(waiter.match_field)
        item["match_key"] = str_attr(waiter.match_key)
    return item


def waiter_from_item(item: Item) -> Waiter:
    return Waiter(
        event_name=get_str(item, "event_name") or "",
        run_id=get_str(item, "run_id") or "",
        step_id=get_str(item, "step_id") or "",
        kind=WaiterKind(get_str(item, "kind")),
        expires_at=get_int(item, "expires_at") or 0,
        created_at=get_int(item, "created_at") or 0,
        expression=get_str(item, "expression"),
        trigger=get_json(item, "trigger", {}),
        match_field=get_str(item, "match_field"),
        match_key=get_str(item, "match_key"),
    )


def time_key_window(after: int | None, before: int | None, cursor: str | None) -> tuple[str, str, str | None] | None:
    """The index sort-key range for a newest-first listing of ``<time:015d>#<id>`` keys.

    Time bounds are exclusive; a cursor (the last key already returned) lowers the top. "0"
    sorts below and "~" above every key. Returns (low, high, cursor key), or None when the
    window is empty.
    """
    low = "0" if after is None else f"{after + 1:015d}#"
    high = "~" if before is None else f"{before - 1:015d}#~"
    after_key = decode_cursor(cursor) if cursor else None
    if after_key is not None:
        high = min(high, after_key)
    if low > high:
        return None
    return low, high, after_key


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": sort_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))["k"]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
        raise ValueError(f"invalid cursor: {cursor[:64]!r}") from exc
    # Every key we write fits DynamoDB's 1024-byte sort key; a longer one would fail the query.
    if not isinstance(key, str) or len(key.encode("utf-8", "surrogatepass")) > 1024:
        raise ValueError(f"invalid cursor: {cursor[:64]!r}")
    return key


def _req_version(item: dict[str, Any]) -> int:
    """The SDK's request version; -1 until the SDK has told us (docs/protocol.md §5.4)."""
    version = get_int(item, "req_version")
    return -1 if version is None else version
