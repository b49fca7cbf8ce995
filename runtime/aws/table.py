"""The storage ports (``stepline.engine.stores``) on one DynamoDB table.

Keys (all strings). ``gsi1`` is sparse and overloaded: only event and run items carry its keys;
it projects ``name`` and ``status`` besides the keys. ``gsi2`` is sparse too: only run items
that have not ended carry its keys (the sweeper's index; keys only)::

    item              pk                    sk                 gsi1pk / gsi1sk
    ----------------  --------------------  -----------------  ---------------------------------
    run               RUN#<run_id>          RUN                FNRUNS#<fn_id> /
                                                               <created_at:015d>#<run_id>
                                                               gsi2pk / gsi2sk (while live)
                                                               SWEEP#<crc32(run_id) % 8> /
                                                               <wake_at:015d>#<run_id>
    step              RUN#<run_id>          STEP#<step_id>
    event             EVENT#<internal_id>   EVENT              EVENTS#<yyyy-mm-dd>#<crc32(id) % 16>
                                                               / <received_at:015d>#<internal_id>
    event -> run link EVENT#<internal_id>   RUN#<run_id>
    event id claim    EVID#<event.id>       EVID               (ttl: 24 h after the claim)
    event day         EVENTDAYS             <yyyy-mm-dd>
    event by name     EVNAME#<n>#<name>     <received_at:015d>#<internal_id>   (ttl: 2 days; event_names.py)
    waiter (unkeyed)  WAIT#<event name>     <run_id>#<step_id> (ttl: 7 days after expires_at)
    waiter (keyed)    WAITKEY#<key>#<name>  <run_id>#<step_id> (ttl: as above)
    waiter fields     WAITFIELDS#<name>     <match field>
    signal wait       SIGNAL#<signal>       SIGNAL             (ttl: 7 days after expires_at)
    app               CATALOG               APP#<app_id>
    function          CATALOG               FN#<fn_id>
    trigger           TRIGGER#<event name>  FN#<fn_id>

Access patterns and their cost:

* ``load_run``: one Query on ``RUN#<run_id>`` (run item, then step items). Strongly consistent.
  Right after ``acquire_lease``, by the lease's owner, a container that held the run last and
  kept it (``stepline.aws.run_cache``) reads only the items of the ops the run waits on (one
  BatchGetItem; nothing when it waits on none): the take returned the run item. A planned
  step's job in a container that kept the run reads the run item and its step's item (one
  BatchGetItem), and the rest from the copy if nobody took the run since. Either reads whole
  where that costs fewer read units (a short run).
* ``commit_memo``: one conditional UpdateItem on the step item (``attribute_not_exists``).
  A step item holds its memo (``memo_*``) and/or its pending op (``pending_*``, and the op's
  ``claim_*``), so ``add_pending``'s "no op and no memo for this step" is one conditional write
  too, and a memo can land while the op is still recorded (they are independent, as the port
  says). ``claim_pending`` and ``remove_pending`` are one UpdateItem each.
* ``update_run`` / ``acquire_lease`` / ``release_lease``: one conditional UpdateItem on the run
  item, touching only the named attributes (status is written only when the caller changes it;
  lease writes never touch ``gsi1``, which does not project them). ``acquire_lease`` also adds
  one to ``sgen``, the run's count of takes, and returns the new item. A write of ``wake_at`` moves
  the run's ``gsi2`` keys in the same request; a terminal status removes them (and ``wake_at``),
  so ended runs leave the sweeper's index. ``acquire_lease`` never touches ``gsi2``.
* ``stalled_runs``: one Query per ``gsi2`` shard (``gsi2sk`` below the cut-off, oldest first),
  then one BatchGetItem of the run items, which decide (status, lease, current ``wake_at``).
* ``save_events``: the claims of the request's user ids, 100 conditional puts to one
  TransactWriteItems (a cancelled one names the claims already held; the rest are tried again;
  a lone claim is one conditional PutItem), each
  (``attribute_not_exists(pk) OR expires_at <= now``: moto never applies TTL, and real TTL
  deletes lag by up to days, so an expired claim must read as absent); then the event items
  in one BatchWriteItem (they need no condition: the claims already decided who is new), each
  with its small index item by name and time (``event_names.py``, for look-backs).
  Events without a user id are looked up in BatchGetItems of 100 (a retried request with
  seeded ids sends the same internal ids) and the new ones join that BatchWriteItem.
* ``recent_events`` (a wait's look-back): one Query page per name shard (4), newest first,
  then one BatchGetItem of the events kept.
* ``list_events``: one Query on the day registry, then per day one Query on each of its 16
  ``gsi1`` shards (and its unsharded partition, from before sharding), merged newest first, and
  one BatchGetItem for the page.
* ``list_runs``: Queries on ``gsi1`` in the function's partition, one BatchGetItem per page.
* ``runs_for_event``: one Query on the event partition's link items, one BatchGetItem of runs.
* ``functions_for_event``: one Query on ``TRIGGER#<name>``; trigger items carry the function.
* Waiters are in buckets: a waiter whose expression states an equality with the incoming
  event (``event.data.id == async.data.id``) is keyed by the event name, the field and the
  value (``stepline.engine.waiter_index``); the others share their event name's partition. An
  event reads ``WAITFIELDS#<name>`` (one small Query), then one Query page per bucket its values
  give and one on ``WAIT#<name>``: the reads grow with the waiters it can match, not with all
  waiters of its name. ``add_waiter`` is one conditional PutItem (plus, once per process and
  field, a PutItem on the field); ``remove_waiter`` one conditional delete.
* Apps and functions live in the ``CATALOG`` partition: listing is one consistent Query.
* Flow control (throttle, rate limit, debounce, batching, idempotency, singleton, concurrency)
  has its own items, drawn in ``stepline.aws.flow``: one conditional write per primitive and one
  Query per concurrency key.

No Scan anywhere. JSON values are stored as JSON text so DynamoDB numbers (Decimal) never reach
the engine; integers the engine owns (times, versions) are numbers.

Large values: a JSON attribute over ``payloads.INLINE_MAX_BYTES`` (memo values, pending op
details, run ``events``/``event_ids``/``output``/``error``, event ``data``/``user``, waiter
triggers) is written to S3 first and the item holds a reference; reads resolve references,
but ``load_run`` is one Query that leaves memo values in S3 until first used
(``stepline.aws.step_items``): a call whose state the SDK fetches itself (``use_api``) fetches
none, a call that sends the memos one S3 GET per offloaded value not yet in this container.
Conditions are unchanged: they test the item, and S3 keys are content-addressed, so a writer
that loses a race leaves at most an unreferenced object.

Known limits: a function's runs share one ``gsi1`` partition and an event name's unkeyed waiters
one table partition (about 1,000 writes/s each before DynamoDB throttles). Without a payload bucket,
items over 400 KB are refused with ``StoreError``.
"""

from __future__ import annotations

from typing import Any

from stepline.aws.apps import AppRecords
from stepline.aws.client import TableClient
from stepline.aws.erasure import RUN_TTL_GRACE_MS, ErasureRecords, expiry_index_keys
from stepline.aws.event_names import EventNameIndex
from stepline.aws.events import EventRecords
from stepline.aws.flow import FlowRecords
from stepline.aws.items import (
    GSI1,
    GSI2,
    RUN_JSON_FIELDS,
    SWEEP_SHARDS,
    Item,
    check_size,
    decode_cursor,
    encode_cursor,
    encode_run_field,
    get_int,
    item_bytes,
    json_attr,
    num_attr,
    run_from_item,
    run_index_keys,
    run_item,
    run_key,
    step_key,
    str_attr,
    sweep_index_keys,
    time_key_window,
)
from stepline.aws.payloads import PayloadStore, run_prefix, step_prefix
from stepline.aws.run_cache import RunCache
from stepline.aws.run_reads import RunReads
from stepline.aws.signals import SignalRecords
from stepline.aws.step_items import pending_from_item
from stepline.aws.waiters import WaiterRecords
from stepline.engine.records import Memo, PendingOp, Run, RunStatus

# Everything of a pending op, including its claim, goes when the op is removed.
_PENDING_ATTRS = (
    "pending_op",
    "pending_at",
    "pending_name",
    "pending_detail",
    "claim_owner",
    "claim_until",
)
# A status-filtered listing reads at most this many index pages per call, then returns what it
# has with a cursor (the port allows short pages), so one call's cost stays bounded.
_LIST_RUNS_MAX_QUERIES = 5
_FILTERED_PAGE = 100
_SWEEP_KEYS = ("gsi2pk", "gsi2sk")
_LIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def _sweep_position(cursor: str | None) -> tuple[int, str | None]:
    """(shard, last index key read) from a ``stalled_runs`` cursor; (0, None) without one."""
    if cursor is None:
        return 0, None
    shard, sep, key = decode_cursor(cursor).partition("|")
    if not sep or not shard.isdigit() or not key:
        raise ValueError(f"invalid cursor: {cursor!r}")
    return int(shard), key


class DynamoStore(
    RunReads, EventRecords, EventNameIndex, AppRecords, WaiterRecords, SignalRecords, FlowRecords, ErasureRecords
):
    """Every storage port (``Store``) on one DynamoDB table (see the module docstring for keys):
    runs, steps, leases and claims here, reading runs and the other ports in the mixins, one
    module each."""

    def __init__(
        self, client: Any, table_name: str, payloads: PayloadStore | None = None, *, retention_ms: int | None = None
    ) -> None:
        self._t = TableClient(client, table_name, payloads)
        self._known_days = set()
        # How long ended runs and stored events are kept (None: for ever); see stores.RunEraser.
        self.retention_ms = retention_ms
        self._fields_written = set()
        # The runs this container holds, as it last read and wrote them (stepline.aws.run_cache).
        self._kept = RunCache()

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, run: Run) -> bool:
        item = run_item(run)
        for name in RUN_JSON_FIELDS & item.keys():
            item[name] = self._t.offload(item[name], run_prefix(run.run_id, name))
        check_size(item, f"run {run.run_id}")
        # Links first: a crash after them leaves links to a run that is not there (skipped on
        # read), never a run its events cannot find.
        self._link_events(run.run_id, run.event_ids)
        created, _ = self._t.conditional(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        )
        return created

    def _link_events(self, run_id: str, event_ids: list[str]) -> None:
        self._t.batch_write(
            puts=[{"pk": str_attr(f"EVENT#{eid}"), "sk": str_attr(f"RUN#{run_id}")} for eid in dict.fromkeys(event_ids)]
        )

    def get_run(self, run_id: str) -> Run | None:
        item = self._t.get(run_key(run_id))
        return run_from_item(item) if item else None

    def runs_for_event(self, internal_event_id: str) -> list[Run]:
        links = self._t.query_partition(f"EVENT#{internal_event_id}", "RUN#")
        run_ids = [link["sk"]["S"].removeprefix("RUN#") for link in links]
        runs = [run_from_item(i) for i in self._t.batch_get([run_key(r) for r in run_ids])]
        # A link is a hint; the run item decides (links may outlive a failed create).
        runs = [r for r in runs if internal_event_id in r.event_ids]
        return sorted(runs, key=lambda r: (r.created_at, r.run_id))

    def list_runs(
        self,
        fn_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        status: RunStatus | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
    ) -> tuple[list[Run], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Index sort keys are "<created_at:015d>#<run_id>".
        window = time_key_window(created_after, created_before, cursor)
        if window is None:
            return [], None
        low, high, after = window
        values: dict[str, Any] = {
            ":pk": str_attr(f"FNRUNS#{fn_id}"),
            ":lo": str_attr(low),
            ":hi": str_attr(high),
        }
        extra: dict[str, Any] = {}
        if status is not None:
            values[":status"] = str_attr(RunStatus(status).value)
            extra = {"FilterExpression": "#status = :status", "ExpressionAttributeNames": {"#status": "status"}}
        found: list[str] = []  # index sort keys, newest first
        start: dict[str, Any] | None = None
        for _ in range(_LIST_RUNS_MAX_QUERIES):
            kwargs: dict[str, Any] = dict(
                IndexName=GSI1,
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                # One past the page and one for the cursor's row; a filter reads wider pages,
                # as Limit counts the rows read, not the rows that match.
                Limit=limit + 2 - len(found) if status is None else max(limit + 2, _FILTERED_PAGE),
                **extra,
            )
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            resp = self._t.call("query", **kwargs)
            found += [i["gsi1sk"]["S"] for i in resp.get("Items", []) if i["gsi1sk"]["S"] != after]
            start = resp.get("LastEvaluatedKey")
            if start is None or len(found) > limit:
                break
        page_keys = found[:limit]
        if len(found) > limit:
            next_cursor: str | None = encode_cursor(page_keys[-1])
        elif start is not None:
            # Out of query budget before the end: resume below the last row looked at.
            next_cursor = encode_cursor(start["gsi1sk"]["S"])
        else:
            next_cursor = None
        run_ids = [key.split("#", 1)[1] for key in page_keys]
        items = self._t.batch_get([run_key(r) for r in run_ids])
        runs = {run.run_id: run for run in map(run_from_item, items)}
        # The index lags the table a little on AWS: the run item has the final say on status.
        return [runs[r] for r in run_ids if r in runs and (status is None or runs[r].status == status)], next_cursor

    def update_run(
        self,
        run_id: str,
        changes: dict[str, Any],
        *,
        expect_status: set[RunStatus] | None = None,
        expect_lease_owner: str | None = None,
        expect_wake_at: int | None = None,
    ) -> bool:
        if expect_status is not None and not expect_status:
            return False
        ending = "status" in changes and RunStatus(changes["status"]).terminal
        if ending:
            changes = {**changes, "wake_at": None}  # an ended run leaves the sweeper's index
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        removes: list[str] = []
        for index, (field, value) in enumerate(changes.items()):
            encoded = encode_run_field(field, value)
            if encoded is not None and field in RUN_JSON_FIELDS:
                encoded = self._t.offload(encoded, run_prefix(run_id, field))
            names[f"#f{index}"] = field
            if encoded is None:
                removes.append(f"#f{index}")
            else:
                values[f":f{index}"] = encoded
                sets.append(f"#f{index} = :f{index}")
        if not sets and not removes:
            return self._run_matches(run_id, expect_status, expect_lease_owner, expect_wake_at)
        expiry = self._expiry(run_id, changes) if ending else {}
        if expiry:
            # The retention's clock starts on the ending write: the run moves from the sweeper's
            # index to the expiry index (the same gsi2, other partitions) and gets its TTL.
            for name, value in expiry.items():
                names[f"#{name}"] = name
                values[f":{name}"] = value
                sets.append(f"#{name} = :{name}")
        elif "wake_at" in changes:
            # The sweeper's index key is made of it: move the key with it, or drop it.
            wake_at = changes["wake_at"]
            if wake_at is None:
                for name in _SWEEP_KEYS:
                    names[f"#{name}"] = name
                    removes.append(f"#{name}")
            else:
                for name, value in sweep_index_keys(run_id, wake_at).items():
                    names[f"#{name}"] = name
                    values[f":{name}"] = value
                    sets.append(f"#{name} = :{name}")
        if "fn_id" in changes or "created_at" in changes:
            # The listing index key is made of both: keep it in step with the run.
            current = self.get_run(run_id)
            if current is None:
                return False
            keys = run_index_keys(
                changes.get("fn_id", current.fn_id),
                changes.get("created_at", current.created_at),
                run_id,
            )
            for name, value in keys.items():
                names[f"#{name}"] = name
                values[f":{name}"] = value
                sets.append(f"#{name} = :{name}")
        if "event_ids" in changes:
            # Links first, as in create_run: links of a failed update are only hints.
            self._link_events(run_id, list(changes["event_ids"] or []))
        conditions = ["attribute_exists(pk)"]
        if expect_status:
            names["#status"] = "status"
            placeholders = []
            for index, status in enumerate(sorted(RunStatus(s).value for s in expect_status)):
                values[f":st{index}"] = str_attr(status)
                placeholders.append(f":st{index}")
            conditions.append(f"#status IN ({', '.join(placeholders)})")
        if expect_lease_owner is not None:
            names["#lease_owner"] = "lease_owner"
            values[":owner"] = str_attr(expect_lease_owner)
            conditions.append("#lease_owner = :owner")
        if expect_wake_at is not None:
            names["#expect_wake"] = "wake_at"
            values[":expect_wake"] = num_attr(expect_wake_at)
            conditions.append("#expect_wake = :expect_wake")
        expression = ""
        if sets:
            expression += "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        kwargs: dict[str, Any] = dict(
            Key=run_key(run_id),
            UpdateExpression=expression.strip(),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
        )
        if values:
            kwargs["ExpressionAttributeValues"] = values
        ok, _ = self._t.conditional("update_item", **kwargs)
        if ending:
            self._kept.drop(run_id)  # no take will come: nothing to keep it for
        return ok

    def _expiry(self, run_id: str, changes: dict[str, Any]) -> Item:
        """What the ending write adds when runs are kept for a retention period: the expiry,
        its key in the expiry index, and a TTL a little later (``RUN_TTL_GRACE_MS``)."""
        ended_at = changes.get("ended_at")
        if not self.retention_ms or ended_at is None:
            return {}
        expires_at = int(ended_at) + self.retention_ms
        return {
            "expires_at": num_attr(expires_at),
            "ttl": num_attr((expires_at + RUN_TTL_GRACE_MS) // 1000),
            **expiry_index_keys(run_id, expires_at),
        }

    def _run_matches(
        self,
        run_id: str,
        expect_status: set[RunStatus] | None,
        expect_lease_owner: str | None,
        expect_wake_at: int | None,
    ) -> bool:
        run = self.get_run(run_id)
        if run is None:
            return False
        if expect_status is not None and run.status not in {RunStatus(s) for s in expect_status}:
            return False
        if expect_wake_at is not None and run.wake_at != expect_wake_at:
            return False
        return expect_lease_owner is None or run.lease_owner == expect_lease_owner

    def stalled_runs(
        self, before_ms: int, now_ms: int, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Run], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if before_ms <= 0:
            return [], None
        shard, after = _sweep_position(cursor)
        high = f"{before_ms - 1:015d}#~"  # every key whose wake_at is below before_ms
        found: list[tuple[int, str]] = []  # (shard, gsi2sk), in reading order
        while shard < SWEEP_SHARDS and len(found) <= limit:
            resp = self._t.call(
                "query",
                IndexName=GSI2,
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": str_attr(f"SWEEP#{shard}"),
                    ":lo": str_attr(after or "0"),
                    ":hi": str_attr(high),
                },
                # One past the page, and one for the row the position names (BETWEEN includes it).
                Limit=limit + 2 - len(found),
            )
            found += [(shard, key) for key in (i["gsi2sk"]["S"] for i in resp.get("Items", [])) if key != after]
            last = resp.get("LastEvaluatedKey")
            if last:
                after = last["gsi2sk"]["S"]
            else:
                shard, after = shard + 1, None
        page = found[:limit]
        next_cursor = encode_cursor(f"{page[-1][0]}|{page[-1][1]}") if len(found) > limit else None
        run_ids = [key.split("#", 1)[1] for _, key in page]
        runs = {run.run_id: run for run in map(run_from_item, self._t.batch_get([run_key(r) for r in run_ids]))}
        # The index lags the table a little on AWS: the run item decides.
        return [
            run
            for run in (runs.get(r) for r in run_ids)
            if run is not None
            and run.status in _LIVE
            and run.wake_at is not None
            and run.wake_at < before_ms
            and (run.lease_until is None or run.lease_until < now_ms)
        ], next_cursor

    def acquire_lease(self, run_id: str, owner: str, until_ms: int, now_ms: int) -> int | None:
        try:
            ok, item = self._take(run_id, owner, until_ms, now_ms)
        except Exception:
            self._kept.drop(run_id)
            raise
        if not ok or item is None:
            self._kept.drop(run_id)  # another holder will write it, or it ended
            return None
        gen = get_int(item, "sgen") or 0
        self._kept.taken(run_id, owner, gen, item)
        return gen

    def _take(self, run_id: str, owner: str, until_ms: int, now_ms: int) -> tuple[bool, Item | None]:
        return self._t.conditional(
            "update_item",
            Key=run_key(run_id),
            # Status goes QUEUED -> RUNNING here; a RUNNING run gets the same value back in
            # the same write, so no extra request is spent on it. ``sgen`` counts takes
            # (stepline.aws.run_cache); the new item comes back with the write, at no cost.
            UpdateExpression=(
                "SET #owner = :owner, #until = :until, #status = :running, #started = if_not_exists(#started, :now) "
                "ADD #gen :one"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND #status IN (:queued, :running) AND "
                "(attribute_not_exists(#owner) OR #until < :now OR #owner = :owner)"
            ),
            ExpressionAttributeNames={
                "#owner": "lease_owner",
                "#until": "lease_until",
                "#status": "status",
                "#started": "started_at",
                "#gen": "sgen",
            },
            ExpressionAttributeValues={
                ":owner": str_attr(owner),
                ":until": num_attr(until_ms),
                ":now": num_attr(now_ms),
                ":queued": str_attr(RunStatus.QUEUED.value),
                ":running": str_attr(RunStatus.RUNNING.value),
                ":one": num_attr(1),
            },
            ReturnValues="ALL_NEW",
        )

    def release_lease(self, run_id: str, owner: str) -> None:
        self._t.conditional(
            "update_item",
            Key=run_key(run_id),
            UpdateExpression="REMOVE #owner, #until",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "lease_owner", "#until": "lease_until"},
            ExpressionAttributeValues={":owner": str_attr(owner)},
        )

    # -- steps -------------------------------------------------------------------------------

    def commit_memo(self, run_id: str, memo: Memo) -> bool:
        value = self._t.offload(json_attr(memo.value), step_prefix(run_id, memo.step_id, "memo"))
        values = {":v": value, ":seq": str_attr(memo.seq), ":name": str_attr(memo.name)}
        update = "SET memo_value = :v, memo_seq = :seq, memo_name = :name"
        if memo.detail:
            # A few small fields (times, op kind, the op's input): kept inline, never offloaded.
            values[":detail"] = json_attr(memo.detail)
            update += ", memo_detail = :detail"
        item = {
            **step_key(run_id, memo.step_id),
            "memo_value": value,
            **({"memo_detail": values[":detail"]} if memo.detail else {}),
        }
        check_size(item, f"memo of step {memo.step_id} in run {run_id}")
        with self._keeping(run_id) as written:
            ok, _ = self._t.conditional(
                "update_item",
                Key=step_key(run_id, memo.step_id),
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(memo_value)",
                ExpressionAttributeValues=values,
            )
            written.append(ok)
        if ok:
            self._kept.memo_written(run_id, memo, item_bytes(item))
        return ok

    def get_pending(self, run_id: str, step_id: str) -> PendingOp | None:
        item = self._t.get(step_key(run_id, step_id))
        return None if item is None else pending_from_item(step_id, item)

    def add_pending(self, run_id: str, op: PendingOp) -> bool:
        detail = self._t.offload(json_attr(op.detail), step_prefix(run_id, op.step_id, "pending"))
        check_size(
            {**step_key(run_id, op.step_id), "pending_detail": detail},
            f"pending op of step {op.step_id} in run {run_id}",
        )
        with self._keeping(run_id) as written:
            ok, _ = self._t.conditional(
                "update_item",
                Key=step_key(run_id, op.step_id),
                UpdateExpression=(
                    "SET pending_op = :op, pending_at = :at, pending_name = :name, pending_detail = :detail"
                ),
                ConditionExpression=("attribute_not_exists(pending_op) AND attribute_not_exists(memo_value)"),
                ExpressionAttributeValues={
                    ":op": str_attr(op.op),
                    ":at": num_attr(op.created_at),
                    ":name": str_attr(op.name),
                    ":detail": detail,
                },
            )
            written.append(ok)
        if ok:
            self._kept.pending_added(run_id, op)
        return ok

    def remove_pending(self, run_id: str, step_id: str) -> None:
        # Only the op's attributes go: a memo on the same step item stays. Gone either way.
        with self._keeping(run_id):
            self._t.conditional(
                "update_item",
                Key=step_key(run_id, step_id),
                UpdateExpression="REMOVE " + ", ".join(_PENDING_ATTRS),
                ConditionExpression="attribute_exists(pending_op)",
            )
        self._kept.pending_removed(run_id, step_id)

    def claim_pending(self, run_id: str, step_id: str, owner: str, until_ms: int, now_ms: int) -> bool:
        ok, _ = self._t.conditional(
            "update_item",
            Key=step_key(run_id, step_id),
            UpdateExpression="SET claim_owner = :owner, claim_until = :until",
            ConditionExpression=(
                "attribute_exists(pending_op) AND (attribute_not_exists(claim_owner) OR "
                "claim_until < :now OR claim_owner = :owner)"
            ),
            ExpressionAttributeValues={
                ":owner": str_attr(owner),
                ":until": num_attr(until_ms),
                ":now": num_attr(now_ms),
            },
        )
        return ok
