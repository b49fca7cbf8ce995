"""A run's step items read back as the engine's records, with memo values left in S3 until used.

A memo value over the inline limit is stored in S3 and the step item holds a reference to it
(``stepline.aws.payloads``). ``load_run`` does not fetch those: each such memo comes back as a
``DeferredMemo``; the first time one of them is read, the values of all those of the same read
are fetched, in parallel, once. A call that lets the
SDK fetch the run's state itself (``use_api``, docs/protocol.md §5.3) never reads the values, so
it costs no S3 GET here; the size limits read the size the reference records instead.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from stepline.aws.items import Item, get_int, get_json, get_str
from stepline.aws.payloads import PayloadStore, is_ref, ref_key
from stepline.engine.payload_policy import remember_size
from stepline.engine.records import JSON, Memo, PendingOp
from stepline.protocol.opcodes import Op

# Memo values in S3 are fetched when used, not when the run is read.
DEFERRED_ATTRS = frozenset({"memo_value"})
_UNSET: Any = object()


class DeferredValues:
    """The memos of one read whose values are in S3. The first value used fetches every one
    not fetched yet, in parallel: whoever reads one value (the call's memo map, the REST API's
    step list, a rerun's copy) reads them all, and one at a time would cost a round trip each."""

    def __init__(self, payloads: PayloadStore) -> None:
        self.payloads = payloads
        self.memos: list[DeferredMemo] = []
        self._lock = threading.Lock()  # the dev server's threads may share a run's state

    def fetch(self) -> None:
        with self._lock:
            wanted = [m for m in self.memos if not m.fetched]
            if not wanted:
                return
            texts = self.payloads.get_many([m.key for m in wanted])
            for memo, data in zip(wanted, texts, strict=True):
                memo.value = json.loads(data.decode("utf-8", "surrogatepass"))


class DeferredMemo(Memo):
    """A memo whose value is still in S3: fetched (once, with the others of its read) when
    first used."""

    def __init__(
        self, step_id: str, *, key: str, size: int, group: DeferredValues, seq: str, name: str, detail: dict[str, JSON]
    ) -> None:
        self.key = key
        self._group = group
        self._value: dict[str, JSON] | None = None
        super().__init__(step_id=step_id, value=_UNSET, seq=seq, name=name, detail=detail)
        remember_size(self, size)  # what the size limits need, without the value
        group.memos.append(self)

    @property
    def value(self) -> dict[str, JSON]:
        if self._value is None:
            self._group.fetch()
        assert self._value is not None
        return self._value

    @value.setter
    def value(self, value: dict[str, JSON]) -> None:
        if value is not _UNSET:
            self._value = value

    @property
    def fetched(self) -> bool:
        return self._value is not None


def memo_from_item(step_id: str, item: Item, deferred: DeferredValues | None) -> Memo | None:
    """The memo a step item holds, if any: a ``DeferredMemo`` (one of ``deferred``, the read's)
    when its value is in S3."""
    attr = item.get("memo_value")
    if attr is None:
        return None
    seq = get_str(item, "memo_seq", "") or ""
    name = get_str(item, "memo_name", "") or ""
    detail = get_json(item, "memo_detail", {}) or {}
    if is_ref(attr) and deferred is not None:
        size = int(attr["M"].get("bytes", {}).get("N", "0"))
        return DeferredMemo(step_id, key=ref_key(attr), size=size, group=deferred, seq=seq, name=name, detail=detail)
    return Memo(step_id=step_id, value=get_json(item, "memo_value"), seq=seq, name=name, detail=detail)


def pending_from_item(step_id: str, item: Item) -> PendingOp | None:
    """The op a step item says the run waits on, if any (its detail already resolved)."""
    if "pending_op" not in item:
        return None
    return PendingOp(
        step_id=step_id,
        op=Op.read(get_str(item, "pending_op") or ""),
        created_at=get_int(item, "pending_at") or 0,
        name=get_str(item, "pending_name", "") or "",
        detail=get_json(item, "pending_detail", {}),
    )
