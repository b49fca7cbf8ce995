"""Large JSON values in S3, referenced from the table.

DynamoDB refuses items over 400 KB, and every byte of a run's partition is read (and paid for)
by the one Query that loads the run. So any JSON attribute larger than ``INLINE_MAX_BYTES`` is
written to S3 first, and the item holds a small reference instead: a map attribute
``{"s3": <key>, "bytes": <size>}`` where the inline form is a string. Reads swap references
back for the JSON text before any record is decoded, so nothing above ``TableClient`` can tell
where a value lived; only offloaded values cost an S3 GET.

Keys name the owning record, then the attribute, then the SHA-256 of the content::

    runs/<run_id>/<field>/<sha256>.json                      run events, event_ids, output, error
    runs/<run_id>/steps/<step_id>/<attribute>/<sha256>.json  memo value, pending op detail
    runs/<run_id>/waiters/<step_id>/trigger/<sha256>.json    a waiter's trigger event
    events/<internal_id>/<field>/<sha256>.json               an event's data or user
    flow/<key>/data/<sha256>.json                            flow-control state (a batch's or
                                                             a debounce's events)

Content addressing lets each container keep the objects it wrote or read (``ObjectCache``, a
bounded LRU): an object's key names its content, so a cached copy can never be stale, and a
run loaded again on every invocation fetches its offloaded values once per container.

Content addressing keeps the conditional writes' semantics: the object is written before the
item, and a writer that then loses the item's condition leaves either the very object the winner
wrote (same content, same key) or an object nothing references (harmless). Everything of a run
shares the ``runs/<run_id>/`` prefix, so it can be expired or deleted with the run.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stepline.aws.errors import translated
from stepline.engine.ports import StoreError

Item = dict[str, dict[str, Any]]

# Values up to this size stay in the item. Well under the 400 KB item limit, so a run item or a
# step item never nears it, and a run with many steps stays cheap to load in one Query (reads
# are billed per 4 KB, and a Query page ends at 1 MB).
INLINE_MAX_BYTES = 64 * 1024
# Every object is encrypted at rest by the bucket's default: SSE-S3 (this), or the customer
# managed KMS key the stack may be given. The writes name no algorithm, so that a key the bucket
# is configured with is the one used.
SERVER_SIDE_ENCRYPTION = "AES256"
# A run loads its offloaded values in parallel; boto3 clients are safe to share across threads.
_FETCH_THREADS = 8
_REF = "s3"
# What one container keeps of the objects it wrote or read (a Lambda has 128 MB and up).
CACHE_MAX_BYTES = 32 * 1024 * 1024


def content_key(prefix: str, data: bytes) -> str:
    return f"{prefix.rstrip('/')}/{hashlib.sha256(data).hexdigest()}.json"


def run_prefix(run_id: str, field: str) -> str:
    return f"runs/{run_id}/{field}"


def step_prefix(run_id: str, step_id: str, attribute: str) -> str:
    return f"runs/{run_id}/steps/{step_id}/{attribute}"


def waiter_prefix(run_id: str, step_id: str) -> str:
    return f"runs/{run_id}/waiters/{step_id}/trigger"


def event_prefix(internal_id: str, field: str) -> str:
    return f"events/{internal_id}/{field}"


def flow_prefix(key: str) -> str:
    return f"flow/{key}/data"


def is_ref(attr: Any) -> bool:
    return isinstance(attr, dict) and "M" in attr and _REF in attr["M"]


def ref_key(attr: dict[str, Any]) -> str:
    return attr["M"][_REF]["S"]


class ObjectCache:
    """Content-addressed objects by key, least recently used dropped first past ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._objects: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._objects.get(key)
            if data is not None:
                self._objects.move_to_end(key)
            return data

    def drop_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._objects if k.startswith(prefix)]:
                self._bytes -= len(self._objects.pop(key))

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes // 4:
            return  # one huge value would push out everything else
        with self._lock:
            if key in self._objects:
                self._objects.move_to_end(key)
                return
            self._objects[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, dropped = self._objects.popitem(last=False)
                self._bytes -= len(dropped)


class PayloadStore:
    """One bucket through one boto3 S3 client. Every failure is a ``StoreError``."""

    def __init__(self, client: Any, bucket: str, cache: ObjectCache | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.cache = cache if cache is not None else ObjectCache()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- objects -------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        with translated(f"S3 PutObject {key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")
        self.cache.put(key, data)

    def get(self, key: str) -> bytes:
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        # A reference to a missing object is a broken store, not a lost race: StoreError.
        with translated(f"S3 GetObject {key}"):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        self.cache.put(key, body)
        return body

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (a run's or an event's); how many there were.
        A thousand per request, as S3 lists and deletes them."""
        self.cache.drop_prefix(prefix)  # erased here too, not only in S3
        deleted = 0
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            with translated(f"S3 ListObjectsV2 {prefix}"):
                page = self.client.list_objects_v2(**kwargs)
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                with translated(f"S3 DeleteObjects {prefix}"):
                    result = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                if result.get("Errors"):
                    first = result["Errors"][0]
                    raise StoreError(f"S3 DeleteObjects {prefix} failed: {first.get('Code')}: {first.get('Message')}")
                deleted += len(keys)
            if not page.get("IsTruncated"):
                return deleted
            token = page.get("NextContinuationToken")

    # -- attributes ----------------------------------------------------------------------------

    def offload(self, attr: dict[str, Any], prefix: str) -> dict[str, Any]:
        """``attr`` itself when it is small enough to stay inline; otherwise its text is
        written to S3 under ``prefix`` and the reference to put in the item is returned."""
        text = attr.get("S")
        if text is None:
            return attr
        data = text.encode("utf-8", "surrogatepass")
        if len(data) <= INLINE_MAX_BYTES:
            return attr
        key = content_key(prefix, data)
        self.put(key, data)
        return {"M": {_REF: {"S": key}, "bytes": {"N": str(len(data))}}}

    def resolve(self, items: list[Item], keep: frozenset[str] = frozenset()) -> list[Item]:
        """Replace every reference in ``items`` (in place) by the JSON text it points at, but
        those of the attributes named in ``keep``, fetched later if at all."""
        refs = [(item, name) for item in items for name, attr in item.items() if is_ref(attr) and name not in keep]
        if not refs:
            return items
        texts = self.get_many([ref_key(item[name]) for item, name in refs])
        for (item, name), data in zip(refs, texts, strict=True):
            item[name] = {"S": data.decode("utf-8", "surrogatepass")}
        return items

    def get_many(self, keys: list[str]) -> list[bytes]:
        """The objects at ``keys``, in order, fetched in parallel (those not cached)."""
        if len(keys) == 1:
            return [self.get(keys[0])]
        return list(self._threads().map(self.get, keys))

    def _threads(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_FETCH_THREADS, thread_name_prefix="stepline-s3")
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
