"""Reading a run on DynamoDB (``DynamoStore.load_run``): the whole partition, or, by a container
that kept the run, only the items of the ops it waits on: right after the lease's take, or for a
planned step's job while nobody took the run since (``stepline.aws.run_cache`` says why that is
enough). Also where the container's own step writes keep its copy in step, or drop it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stepline.aws.client import TableClient
from stepline.aws.items import Item, get_int, item_bytes, run_from_item, run_key, step_key
from stepline.aws.payloads import is_ref
from stepline.aws.run_cache import Copy, RunCache
from stepline.aws.step_items import DEFERRED_ATTRS, DeferredValues, memo_from_item, pending_from_item
from stepline.engine.records import PendingOp, RunState


def _kept_bytes(item: Item) -> int:
    """What keeping a step item may come to: the item, and its memo's value in S3 once fetched."""
    attr = item.get("memo_value")
    offloaded = int(attr["M"].get("bytes", {}).get("N", "0")) if attr is not None and is_ref(attr) else 0
    return item_bytes(item) + offloaded


class RunReads:
    """The run-reading half of ``DynamoStore``."""

    _t: TableClient
    _kept: RunCache

    def load_run(self, run_id: str, *, lease_owner: str | None = None, claimed: str | None = None) -> RunState | None:
        if lease_owner is not None:
            kept = self._kept.copy(run_id, lease_owner)
            if kept is not None and not kept.cheaper_whole(len(kept.pending)):
                return self._from_copy(run_id, kept, lease_owner=lease_owner)
        elif claimed is not None:
            state = self._for_planned_step(run_id, claimed)
            if state is not None:
                return state
        taken = None if lease_owner is None else self._kept.head(run_id, lease_owner)
        # Memo values in S3 are fetched when first used (stepline.aws.step_items).
        items = self._t.query_partition(f"RUN#{run_id}", keep=DEFERRED_ATTRS)
        head = next((i for i in items if i["sk"]["S"] == "RUN"), None)
        if head is None:
            return None
        state = RunState(run=run_from_item(head))
        deferred = self._deferred()
        size = 0
        for item in items:
            sk = item["sk"]["S"]
            if not sk.startswith("STEP#"):
                continue
            size += _kept_bytes(item)
            step_id = sk.removeprefix("STEP#")
            memo = memo_from_item(step_id, item, deferred)
            if memo is not None:
                state.memos.append(memo)
            pending = pending_from_item(step_id, item)
            if pending is not None:
                state.pending[step_id] = pending
        state.memos.sort(key=lambda m: m.seq)
        if taken is not None and lease_owner is not None:
            self._kept.keep(run_id, lease_owner, taken[0], state, size)
        return state

    def _for_planned_step(self, run_id: str, step_id: str) -> RunState | None:
        """For the job of a planned step (no lease, no take): when this container keeps a copy
        of the run, the run item and the step's own item, in one BatchGetItem; the copy answers
        for the rest if the run item says nobody took the run since the take the copy follows
        (stepline.aws.run_cache says why that is as good as a whole read). None: read it whole."""
        at_hand = self._kept.at_hand(run_id)
        if at_hand is None or at_hand[1].cheaper_whole(2):
            return None
        gen, kept = at_hand
        items = self._t.batch_get([run_key(run_id), step_key(run_id, step_id)], keep=DEFERRED_ATTRS)
        head = next((i for i in items if i["sk"]["S"] == "RUN"), None)
        if head is None or (get_int(head, "sgen") or 0) != gen:
            return None
        kept.head = head
        return self._from_copy(run_id, kept, items=items, waiting=[step_id])

    def _from_copy(
        self,
        run_id: str,
        kept: Copy,
        *,
        lease_owner: str | None = None,
        items: list[Item] | None = None,
        waiting: list[str] | None = None,
    ) -> RunState:
        """The run as kept here since this container last held it, with the items of the ops it
        waits on read again: only writers without the lease touch them (stepline.aws.run_cache).
        By the take's ``lease_owner``, what was read is kept too. A planned step's job, holding
        no lease, passes the ``items`` it read already (of its ``waiting`` step) and keeps nothing."""
        memos = {m.step_id: m for m in kept.memos}
        pending = dict(kept.pending)
        waiting = list(kept.pending) if waiting is None else waiting
        if waiting:
            if items is None:
                items = self._t.batch_get([step_key(run_id, s) for s in waiting], keep=DEFERRED_ATTRS)
            found = {i["sk"]["S"].removeprefix("STEP#"): i for i in items if i["sk"]["S"].startswith("STEP#")}
            deferred = self._deferred()
            read: dict[str, PendingOp | None] = {}
            for step_id in waiting:
                item = found.get(step_id)
                memo = None if item is None else memo_from_item(step_id, item, deferred)
                if memo is not None:
                    memos.setdefault(step_id, memo)
                op = read[step_id] = None if item is None else pending_from_item(step_id, item)
                if op is None:
                    pending.pop(step_id, None)
                else:
                    pending[step_id] = op
            if lease_owner is not None:
                self._kept.reread(run_id, lease_owner, [memos[s] for s in waiting if s in memos], read)
        run = run_from_item(self._t.resolve(kept.head))
        return RunState(run=run, memos=sorted(memos.values(), key=lambda m: m.seq), pending=pending)

    def _deferred(self) -> DeferredValues | None:
        return None if self._t.payloads is None else DeferredValues(self._t.payloads)

    def forget_run(self, run_id: str) -> None:
        self._kept.drop(run_id)

    @contextmanager
    def _keeping(self, run_id: str) -> Iterator[list[bool]]:
        """Around a step write of this container: a write that failed, or whose condition failed
        (another writer was first), leaves the run's kept copy out of date: it is dropped."""
        written: list[bool] = []
        try:
            yield written
        except Exception:
            self._kept.drop(run_id)
            raise
        if not all(written):
            self._kept.drop(run_id)
