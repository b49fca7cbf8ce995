"""What a container keeps of the runs it holds, so that taking a run again does not read it again.

The executor reads a run right after taking its lease, on every invocation. Reading the whole
partition each time (memos up to 64 KiB inline, strongly consistent) makes a run of N steps that
goes one invocation at a time cost O(N²) read units. Instead:

* the run item carries ``sgen``, a generation that every ``acquire_lease`` adds one to (a take
  or a renewal, both already one UpdateItem; the write returns the new item, ``ALL_NEW``, at no
  extra write unit). ``sgen`` counts takes, not writes: no other writer touches it;
* a container that took a run and read it keeps the run's step records here, tagged with the
  generation its take returned, and applies its own step writes to that copy (``DynamoStore``:
  a memo written, an op added or removed; a write whose condition failed, or that failed, drops
  the copy, and so does a write that ends the run);
* when its next take returns the tag plus one, no other container took the run since: the copy
  holds every memo and op those holders wrote. What writers without the lease may have written
  since is confined to the items of the ops the run waits on: a resume (a sleep's end, an event
  or signal, a timeout, an invoke's result, a model call's answer) writes the memo of its op's
  step and removes the op, the sweeper removes ops whose step has a memo, and a planned parallel
  step's job, under the claim on its step, writes that step's item: its memo, its op removed,
  its claim (a job acts on no step the run does not wait on: new steps its call names are the
  discovery's, ``engine.plan``; a failure that ends the run writes the run item, which every
  take returns). Only lease holders add ops, and every lease is a take. Those items are read
  again, one strongly consistent BatchGetItem (one read unit each), and nothing else is; the run
  item comes back from the take itself. A run with nothing pending costs no read at all. This
  holds while planned steps are out as for any op: the take of the discovery after each branch
  (``Leases.upgrade``, a take like the others) reads the group's ops it has not seen settle,
  which is what it needs to know exactly whether the group is done.
* a planned step's job takes no lease. It reads the run item and its own step's item (one
  BatchGetItem); when the run item's ``sgen`` is the generation of this container's copy,
  nobody took the run since the copy's take, and the copy answers for the rest. That is as good
  as a whole read for the job: every memo the code needs to reach its step was written before
  the step was planned, so before the copy's take or by that take's holder (the copy has them);
  its own item is read; what siblings wrote since (their results, their ops gone) the job
  could have missed by reading a moment earlier, and its call does not need it (the SDK skips a
  branch without a result; the join's take reads them). The job keeps nothing of what it read:
  only its own writes reach the copy, as any writer's in this container do. An op removed by a
  writer whose memo the copy lacks (the sweeper, a job finishing what one that died left) stays
  in the copy, so the next take reads its item and finds the memo.

Read whole instead (one partition Query, as before) when the copy cannot be trusted: the
container has not held the run before (Lambda may route a run's invocations to different
containers), another container took it since (the tag is behind by more than one; for a job,
the run item's ``sgen`` is not the copy's: a group whose branches run in several containers
makes each one's copy stale whenever another's join takes the run), the copy was dropped or
evicted, or reading it whole costs no more read units than reading its ops' items one by one
(``Copy.cheaper_whole``: each item of a BatchGetItem is billed at least a unit, a Query by the
4 KB of all it returns; a short run with a wide group is cheaper whole). An invocation whose
calls may checkpoint through ``POST /v1/checkpoint`` (the TypeScript SDK's; Stepline's with
checkpointing on) drops the copy as it starts (``forget_run``, ``engine.checkpointed``): those
memos are written by another process, which does not count takes (that would cost a write per
step), so such runs are read whole once per invocation; they have few.

Why the generation is bumped by takes rather than by every writer: a writer that bumped before
writing its memo could be overtaken by a holder whose take sees the bump and whose read misses
the memo still in flight, and whose copy would then be trusted; one that bumped after could die
in between. The ops' items read again on every take have neither hole.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from stepline.aws.items import Item, item_bytes
from stepline.engine.records import Memo, PendingOp, RunState

# What one container keeps of the runs it holds (the items' sizes, approximately), and of how many.
KEPT_MAX_BYTES = 16 * 1024 * 1024
KEPT_MAX_RUNS = 4096
# Waiting on more ops than this, a run is read whole rather than op by op (one BatchGetItem).
POINT_READS_MAX = 100
# What a strongly consistent read unit covers.
READ_UNIT_BYTES = 4096


@dataclass
class KeptRun:
    """A run as this container last took it: who took it, the generation the take returned,
    the run item it returned, and the step records read since and kept in step with its writes
    (None until the run is read after the take)."""

    owner: str
    gen: int
    head: Item
    memos: dict[str, Memo] | None = None
    pending: dict[str, PendingOp] = field(default_factory=dict)
    bytes: int = 0
    # Taken at the copy's generation plus one: nobody else took the run since the copy was made.
    current: bool = False


@dataclass
class Copy:
    """What a take that found its copy current (or a planned step's job) reads from it: the run
    item the take returned, the memos and the ops (new containers: the caller owns them)."""

    head: Item
    memos: list[Memo]
    pending: dict[str, PendingOp]
    # What the run's items come to, about (values in S3 counted in full: never less).
    bytes: int = 0

    def cheaper_whole(self, items: int) -> bool:
        """Whether reading the run whole costs no more than reading ``items`` of it point by
        point: each item a BatchGetItem returns is billed at least one read unit, a Query by the
        4 KB of everything it returns (a short run, a wide group); and past ``POINT_READS_MAX``."""
        return items > POINT_READS_MAX or items > math.ceil(self.bytes / READ_UNIT_BYTES)


class RunCache:
    """Kept runs by id, the least recently taken dropped first past ``max_bytes``. Thread-safe:
    the dev server's executor threads share one store."""

    def __init__(self, max_bytes: int = KEPT_MAX_BYTES, max_runs: int = KEPT_MAX_RUNS) -> None:
        self.max_bytes = max_bytes
        self.max_runs = max_runs
        self._runs: OrderedDict[str, KeptRun] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    # -- takes ---------------------------------------------------------------------------------
    def taken(self, run_id: str, owner: str, gen: int, head: Item) -> None:
        """``owner`` took the run and the take returned ``gen`` and the run item ``head``."""
        size = item_bytes(head)
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is not None and kept.memos is not None and gen == kept.gen + 1:
                kept.owner, kept.gen, kept.current = owner, gen, True
                self._resize(kept, kept.bytes - item_bytes(kept.head) + size)
                kept.head = head
                self._runs.move_to_end(run_id)
            else:
                self._pop(run_id)
                self._runs[run_id] = KeptRun(owner, gen, head, bytes=size)
                self._bytes += size
            self._evict()

    def copy(self, run_id: str, owner: str) -> Copy | None:
        """The kept run, when ``owner``'s take found it current; else None (read it whole)."""
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is None or kept.owner != owner or not kept.current or kept.memos is None:
                return None
            return Copy(kept.head, list(kept.memos.values()), dict(kept.pending), kept.bytes)

    def at_hand(self, run_id: str) -> tuple[int, Copy] | None:
        """The kept run, whoever took it, with the generation of the take it follows: for a
        planned step's job, which holds no lease and trusts it only if the run item it reads
        says no take came since (``RunReads.load_run``). None when there is no copy."""
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is None or kept.memos is None:
                return None
            return kept.gen, Copy(kept.head, list(kept.memos.values()), dict(kept.pending), kept.bytes)

    def head(self, run_id: str, owner: str) -> tuple[int, Item] | None:
        """The generation and run item of ``owner``'s take, for the whole read that follows it."""
        with self._lock:
            kept = self._runs.get(run_id)
            return None if kept is None or kept.owner != owner else (kept.gen, kept.head)

    def keep(self, run_id: str, owner: str, gen: int, state: RunState, size: int) -> None:
        """The run as read whole after ``owner``'s take at ``gen``: kept, unless the take is no
        longer the last one seen here."""
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is None or kept.owner != owner or kept.gen != gen:
                return
            kept.memos = {m.step_id: m for m in state.memos}
            kept.pending = dict(state.pending)
            kept.current = True
            self._resize(kept, item_bytes(kept.head) + size)
            self._evict()

    def reread(self, run_id: str, owner: str, memos: list[Memo], pending: dict[str, PendingOp | None]) -> None:
        """The ops' items as read again after ``owner``'s take: their memos, and their ops (None:
        gone)."""
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is None or kept.owner != owner or kept.memos is None:
                return
            for memo in memos:
                kept.memos.setdefault(memo.step_id, memo)
            for step_id, op in pending.items():
                if op is None:
                    kept.pending.pop(step_id, None)
                else:
                    kept.pending[step_id] = op

    # -- this container's writes -----------------------------------------------------------
    def memo_written(self, run_id: str, memo: Memo, size: int) -> None:
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is not None and kept.memos is not None:
                kept.memos.setdefault(memo.step_id, memo)
                self._resize(kept, kept.bytes + size)
                self._evict()

    def pending_added(self, run_id: str, op: PendingOp) -> None:
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is not None and kept.memos is not None:
                kept.pending[op.step_id] = op

    def pending_removed(self, run_id: str, step_id: str) -> None:
        """An op is removed only once its step has a memo. When the copy lacks that memo (another
        writer's: the sweeper, or a job finishing what a job that died left), the op stays in the
        copy, so that the next take reads its item again and finds the memo."""
        with self._lock:
            kept = self._runs.get(run_id)
            if kept is not None and (kept.memos is None or step_id in kept.memos):
                kept.pending.pop(step_id, None)

    def drop(self, run_id: str) -> None:
        """Nothing kept of the run can be trusted: its next take reads it whole."""
        with self._lock:
            self._pop(run_id)

    def __len__(self) -> int:
        return len(self._runs)

    # -- under the lock ------------------------------------------------------------------------
    def _pop(self, run_id: str) -> None:
        kept = self._runs.pop(run_id, None)
        if kept is not None:
            self._bytes -= kept.bytes

    def _resize(self, kept: KeptRun, size: int) -> None:
        self._bytes += size - kept.bytes
        kept.bytes = size

    def _evict(self) -> None:
        while (self._bytes > self.max_bytes or len(self._runs) > self.max_runs) and self._runs:
            _, kept = self._runs.popitem(last=False)
            self._bytes -= kept.bytes
