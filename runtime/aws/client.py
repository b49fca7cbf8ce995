"""The DynamoDB calls the store makes, with AWS failures translated and batches completed.

Every method raises ``StoreError`` for anything but success, except ``conditional``, which
reports a failed condition as ``(False, old item)``: the engine's "lost the race". Items read
through ``get``, ``query``, ``batch_get`` and ``conditional`` come back with their S3-offloaded
values already resolved (``stepline.aws.payloads``); raw ``call`` results are left as they are.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stepline.aws.errors import CONDITION_FAILED, describe, error_code
from stepline.aws.items import Item, check_size, chunks, str_attr
from stepline.aws.payloads import PayloadStore
from stepline.engine.ports import StoreError

_BATCH_WRITE_MAX = 25
_BATCH_GET_MAX = 100
# Unprocessed batch entries are DynamoDB shedding load: retry them with backoff this many times.
_UNPROCESSED_RETRIES = 8


def _action(operation: str) -> str:
    return "DynamoDB " + "".join(part.title() for part in operation.split("_"))


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 2.0))


class TableClient:
    """One table through one boto3 client (low-level API: no Decimal, no type guessing)."""

    def __init__(self, client: Any, table_name: str, payloads: PayloadStore | None = None) -> None:
        self.client = client
        self.name = table_name
        # None: no bucket configured, values stay inline up to the item limit.
        self.payloads = payloads

    def offload(self, attr: dict[str, Any], prefix: str) -> dict[str, Any]:
        """The attribute to store for a JSON value: itself, or its S3 reference when large."""
        return attr if self.payloads is None else self.payloads.offload(attr, prefix)

    def _resolved(self, items: list[Item], keep: frozenset[str] = frozenset()) -> list[Item]:
        return items if self.payloads is None else self.payloads.resolve(items, keep)

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(TableName=self.name, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"{_action(operation)} failed: {describe(exc)}") from exc

    def conditional(self, operation: str, **kwargs: Any) -> tuple[bool, Item | None]:
        """A conditional write: (True, the item as ``ReturnValues`` asked for it, unresolved, or
        None) when it happened, (False, the item as it was when
        ``ReturnValuesOnConditionCheckFailure`` asked for it) when the condition failed."""
        try:
            resp = getattr(self.client, operation)(TableName=self.name, **kwargs)
            return True, resp.get("Attributes")
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                old = exc.response.get("Item")
                return False, (self._resolved([old])[0] if old else old)
            raise StoreError(f"{_action(operation)} failed: {describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{_action(operation)} failed: {describe(exc)}") from exc

    def resolve(self, item: Item) -> Item:
        """``item`` with its references to S3 replaced by the values (in place)."""
        return self._resolved([item])[0]

    def get(self, key: Item) -> Item | None:
        item = self.call("get_item", Key=key, ConsistentRead=True).get("Item")
        return self._resolved([item])[0] if item else None

    def query(self, *, keep: frozenset[str] = frozenset(), **kwargs: Any) -> list[Item]:
        """All items of a Query, following pages (a page ends at 1 MB). References in the
        attributes named in ``keep`` are left for the caller to resolve, or not."""
        items: list[Item] = []
        while True:
            resp = self.call("query", **kwargs)
            items.extend(resp.get("Items", []))
            last = resp.get("LastEvaluatedKey")
            if not last:
                return self._resolved(items, keep)
            kwargs["ExclusiveStartKey"] = last

    def query_page(self, limit: int | None, start: Item | None, **kwargs: Any) -> tuple[list[Item], Item | None]:
        """One page of a Query: at most ``limit`` items evaluated (a filter may return fewer),
        from ``start`` (the previous page's last key); and the key to go on from, or None."""
        if limit is not None:
            kwargs["Limit"] = limit
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        resp = self.call("query", **kwargs)
        return self._resolved(resp.get("Items", [])), resp.get("LastEvaluatedKey") or None

    def query_partition(self, pk: str, prefix: str | None = None, keep: frozenset[str] = frozenset()) -> list[Item]:
        """A partition's items in sort-key order, strongly consistent."""
        values = {":pk": str_attr(pk)}
        condition = "pk = :pk"
        if prefix is not None:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = str_attr(prefix)
        return self.query(
            keep=keep, KeyConditionExpression=condition, ExpressionAttributeValues=values, ConsistentRead=True
        )

    def batch_write(self, puts: Any = (), deletes: Any = ()) -> None:
        """Unconditional puts and deletes, 25 per request, in the order given."""
        requests: list[dict[str, Any]] = []
        for item in puts:
            check_size(item, f"item {item['pk']['S']} / {item['sk']['S']}")
            requests.append({"PutRequest": {"Item": item}})
        requests.extend({"DeleteRequest": {"Key": key}} for key in deletes)
        for chunk in chunks(requests, _BATCH_WRITE_MAX):
            pending: dict[str, Any] = {self.name: chunk}
            for attempt in range(_UNPROCESSED_RETRIES):
                try:
                    resp = self.client.batch_write_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise StoreError(f"DynamoDB BatchWriteItem failed: {describe(exc)}") from exc
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise StoreError("DynamoDB BatchWriteItem kept returning unprocessed items")

    def batch_get(self, keys: list[Item], keep: frozenset[str] = frozenset()) -> list[Item]:
        """The items that exist among ``keys`` (any order), 100 keys per request, consistent."""
        found: list[Item] = []
        unique = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())
        for chunk in chunks(unique, _BATCH_GET_MAX):
            pending: dict[str, Any] = {self.name: {"Keys": chunk, "ConsistentRead": True}}
            for attempt in range(_UNPROCESSED_RETRIES):
                try:
                    resp = self.client.batch_get_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise StoreError(f"DynamoDB BatchGetItem failed: {describe(exc)}") from exc
                found.extend(resp.get("Responses", {}).get(self.name, []))
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise StoreError("DynamoDB BatchGetItem kept returning unprocessed keys")
        return self._resolved(found, keep)
