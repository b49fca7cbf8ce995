"""Matching an event against waiting runs costs reads in proportion to the waiters it can match,
not to every waiter of its name: waiters whose expression states an equality
(`event.data.order_id == async.data.order_id`) are read through a key the incoming event's own
value gives. The work done inside one request is bounded; the rest goes on in queue messages.

Reads are counted, not timed: at the port (calls, waiters returned) on both backends, and on
DynamoDB as the service reports them (each Query's ScannedCount). SQLite holds 10,000 waiting
runs. moto's Query scans its whole table on every call, so its population is 1,000 and the test
shows the count does not change with it (100 against 1,000)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from stepline.engine import waits as waits_module
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import Run, RunStatus, WaiterKind
from stepline.engine.waits import new_waiter
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.engine.scripted_app import pump

APP_URL = "http://127.0.0.1:9/api/inngest"
PAID = "shop/order.paid"
MATCH = "event.data.order_id == async.data.order_id"
POPULATION = {"sqlite": 10_000, "aws": 1_000}


class WaitingApp:
    """Waits for the order's payment (keyed by order id), then returns the payment."""

    def __init__(self, expression: str = MATCH) -> None:
        self.expression = expression

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        steps = json.loads(body)["steps"]
        if "wait" in steps:
            return HttpResponse(200, json.dumps({"paid": steps["wait"]}).encode(), {"x-inngest-req-version": "2"})
        opts = {"event": PAID, "timeout": "1d", "if": self.expression}
        op = {"op": "WaitForEvent", "id": "wait", "name": PAID, "opts": opts}
        return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})


def make_engine(backend, clock, expression: str = MATCH) -> Engine:
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=WaitingApp(expression))
    fn = {"id": "shop-fulfil", "name": "fulfil", "triggers": [{"event": "shop/order.created"}],
          "steps": {"step": {"id": "step", "name": "step",
                             "runtime": {"type": "http", "url": APP_URL + "?fnId=shop-fulfil&stepId=step"}}}}
    body = {"appname": "shop", "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1", "functions": [fn]}
    engine.registry.register(parse_register(json.dumps(body).encode()))
    return engine


def start_waiting(engine: Engine, backend, clock, order_id: str) -> str:
    """A run started by the engine and parked on its wait: its id."""
    [event_id] = engine.ingest.accept([{"name": "shop/order.created", "data": {"order_id": order_id}}])
    pump(backend, engine, clock)
    [run] = backend.store.runs_for_event(event_id)
    assert "wait" in backend.store.load_run(run.run_id).pending
    return run.run_id


def seed_waiting_runs(backend, clock, count: int, expression: str = MATCH, prefix: str = "seed") -> None:
    """``count`` more runs, each waiting for its own order's payment: what ``start_waiting``
    leaves (the run and its waiter, made by the engine's own ``new_waiter``), written in bulk,
    since one write per row would take minutes. On SQLite one transaction; on moto straight
    into its in-memory table (its API costs milliseconds per item)."""
    now = clock.now_ms()
    runs, waiters = [], []
    for i in range(count):
        event = {"name": "shop/order.created", "id": f"{prefix}-{i}", "data": {"order_id": f"{prefix}-{i}"}, "ts": now,
                 "user": {}}
        run = Run(f"{prefix}-run-{i:05d}", "shop-fulfil", "shop", RunStatus.RUNNING, [event], [f"{prefix}-{i}"], now)
        runs.append(run)
        waiters.append(new_waiter(PAID, run, "wait", WaiterKind.WAIT, expression, now + 86_400_000, now))
    if backend.name == "sqlite":
        from stepline.local.codec import run_columns, waiter_row

        columns = list(run_columns(runs[0]))
        with backend.store._db.write() as conn:
            conn.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                             [tuple(run_columns(r).values()) for r in runs])
            conn.executemany("INSERT INTO waiters (event_name, run_id, step_id, kind, expires_at, created_at, "
                             "expression, trigger_json, match_field, match_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [waiter_row(w) for w in waiters])
            for w in waiters[:1]:
                if w.match_field:
                    conn.execute("INSERT OR IGNORE INTO waiter_fields VALUES (?, ?)", (PAID, w.match_field))
        return
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from stepline.aws.items import run_item, waiter_field_item, waiter_item

    table = backend.names.table_name
    ddb = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for run, waiter in zip(runs, waiters, strict=True):
        ddb.put_item(table, run_item(run))
        ddb.put_item(table, waiter_item(waiter))
    if waiters[0].match_field:
        ddb.put_item(table, waiter_field_item(PAID, waiters[0].match_field))


class Reads:
    """What matching reads: waiter port calls and the waiters they return; on DynamoDB, the
    ScannedCount (items the service read, before any filter) of each Query on a waiter partition."""

    def __init__(self, backend, monkeypatch) -> None:
        self.calls: Counter[str] = Counter()
        self.waiters_returned = 0
        self.scanned: list[int] = []
        self._partition = ""
        store = backend.store
        original_page, original_fields = store.waiters_for_event, store.waiter_fields

        def page(*args, **kwargs):
            self.calls["waiters_for_event"] += 1
            found = original_page(*args, **kwargs)
            self.waiters_returned += len(found.waiters)
            return found

        def fields(*args, **kwargs):
            self.calls["waiter_fields"] += 1
            return original_fields(*args, **kwargs)

        monkeypatch.setattr(store, "waiters_for_event", page)
        monkeypatch.setattr(store, "waiter_fields", fields)
        if backend.name != "sqlite":
            client = backend.clients["dynamodb"]
            client.meta.events.register("provide-client-params.dynamodb.Query", self._query_params)
            client.meta.events.register("after-call.dynamodb.Query", self._query)

    def _query_params(self, params: dict[str, Any], **_: Any) -> None:
        self._partition = params["ExpressionAttributeValues"][":pk"]["S"]

    def _query(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._partition.startswith("WAIT"):
            self.scanned.append(parsed.get("ScannedCount", 0))

    def reset(self) -> None:
        self.calls.clear()
        self.waiters_returned = 0
        self.scanned.clear()


def pay(engine: Engine, order_id: str) -> str:
    [event_id] = engine.ingest.accept([{"name": PAID, "data": {"order_id": order_id, "amount": 12}}])
    return event_id


def test_one_event_among_many_waiting_runs_reads_only_its_own_waiter(backend, clock, monkeypatch):
    engine = make_engine(backend, clock)
    target = start_waiting(engine, backend, clock, "o-42")
    seed_waiting_runs(backend, clock, POPULATION[backend.name] - 1)
    reads = Reads(backend, monkeypatch)

    pay(engine, "o-42")

    # The fields in use (one), the bucket o-42 gives (one waiter), and the unkeyed bucket (empty).
    assert reads.calls == {"waiter_fields": 1, "waiters_for_event": 2}
    assert reads.waiters_returned == 1
    if backend.name != "sqlite":
        # The field item, the one waiter, and nothing in the unkeyed partition.
        assert sorted(reads.scanned) == [0, 1, 1], reads.scanned
    pump(backend, engine, clock)
    run = backend.store.get_run(target)
    assert run.status == RunStatus.COMPLETED, run
    assert run.output["paid"]["data"]["data"] == {"order_id": "o-42", "amount": 12}
    # Every other run still waits, its waiter in place.
    other = Run("seed-run-00007", "", "", RunStatus.RUNNING, [{"data": {"order_id": "seed-7"}}], [], 0)
    bucket = new_waiter(PAID, other, "wait", WaiterKind.WAIT, MATCH, 0, 0).match_key
    assert [w.run_id for w in backend.store.waiters_for_event(PAID, clock.now_ms(), bucket).waiters] == [other.run_id]


def test_the_reads_do_not_grow_with_the_waiting_runs(backend, clock, monkeypatch):
    engine = make_engine(backend, clock)
    start_waiting(engine, backend, clock, "o-1")
    start_waiting(engine, backend, clock, "o-2")
    reads = Reads(backend, monkeypatch)
    counts = []
    for population, order in ((10, "o-1"), (100, "o-2")):
        seed_waiting_runs(backend, clock, population - (len(counts) * 10), prefix=f"seed{population}")
        reads.reset()
        pay(engine, order)
        counts.append((dict(reads.calls), reads.waiters_returned, sorted(reads.scanned)))
    assert counts[0] == counts[1]


def test_the_unkeyed_waiters_of_one_event_are_matched_in_bounded_slices(backend, clock, monkeypatch):
    # `async.data.amount > 0` states no equality: every such waiter is a candidate for every
    # payment. One request reads at most the budget; queue messages do the rest.
    monkeypatch.setattr(waits_module, "MATCH_BUDGET", 4)
    engine = make_engine(backend, clock, expression="async.data.amount > 0")
    runs = [start_waiting(engine, backend, clock, f"o-{i}") for i in range(11)]
    reads = Reads(backend, monkeypatch)

    pay(engine, "o-any")

    assert reads.waiters_returned == 4
    queued = backend.queue.receive(10, 60)
    [message] = [m for m in queued if m.body["kind"] == "match_waiters"]
    assert message.body["buckets"] == [None] and message.body["after"]
    for m in queued:
        backend.queue.retry_later(m.handle, 0)
    # Each message goes on for one more slice, and hands the rest to the next.
    handled = []
    original = engine.waits.go_on

    def go_on(body):
        reads.reset()
        original(body)
        handled.append(reads.waiters_returned)

    monkeypatch.setitem(engine.executor.handlers, "match_waiters", go_on)
    pump(backend, engine, clock)
    assert handled == [4, 3]
    assert all(backend.store.get_run(r).status == RunStatus.COMPLETED for r in runs)


@pytest.mark.parametrize("expression, stated", [
    (MATCH, True),
    ("async.data.order_id == event.data.order_id && async.data.amount > 10", True),
    ("(event.data.order_id == async.data['order_id'])", True),
    ("async.data.order_id == 'o-1'", True),
    ("event.data.order_id == async.data.order_id || async.data.vip == true", False),
    ("!(event.data.order_id == async.data.order_id)", False),
    ("event.data.order_id != async.data.order_id", False),
    ("async.data.amount > 10", False),
    ("async.data.ok ? event.data.order_id == async.data.order_id : true", False),
])
def test_only_an_equality_the_whole_expression_needs_keys_a_waiter(expression, stated):
    from stepline.engine.waiter_index import stated_equality

    assert (stated_equality(expression) is not None) == stated
